"""Training batches from the frame store: clips as tensors, resized, with labels and low-res inputs.

Every batch is a pure function of (seed, step, rank) (``Stream.BATCH``), so a resumed run sees
exactly the batches an uninterrupted one would, whatever the number of DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch.utils.data import Dataset

from vdlib.frames import ClipWindows, FrameStore
from vdlib.pose import mirror_keypoints
from vdlib.randomness import Stream, step_generator


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """(X, H, W, 3) uint8 → (3, X, H, W) float in [-1, 1]."""
    array = np.require(frames, requirements=["C", "W"])  # a copy only of read-only memmap views
    return torch.from_numpy(array).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def framewise(clip: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply ``fn``, a map of (N, C, h, w) images to (N, C, h', w'), to every frame of (..., C, F, h, w)
    clips: (..., C, F, h', w')."""
    lead, (c, f, h, w) = clip.shape[:-4], clip.shape[-4:]
    out = fn(clip.reshape(-1, c, f, h, w).transpose(1, 2).reshape(-1, c, h, w))
    c, h, w = out.shape[1:]
    return out.reshape(-1, f, c, h, w).transpose(1, 2).reshape(*lead, c, f, h, w)


Shape = tuple[int, int]  # (height, width) of frames


def resize_clip(clip: torch.Tensor, shape: Shape) -> torch.Tensor:
    """Resize (..., C, F, H, W) frames to ``shape`` (height, width): area when shrinking, bilinear
    when growing."""
    shape = (int(shape[0]), int(shape[1]))
    if tuple(clip.shape[-2:]) == shape:
        return clip
    if shape[0] <= clip.shape[-2] and shape[1] <= clip.shape[-1]:
        return framewise(clip, lambda x: F.interpolate(x, size=shape, mode="area"))
    return framewise(clip, lambda x: F.interpolate(x, size=shape, mode="bilinear", align_corners=False))


def half(shape: Shape) -> Shape:
    """The shape an upsampler of frames ``shape`` reads: half of each side."""
    return shape[0] // 2, shape[1] // 2


UPSCALE_TAPS = 6  # low-res pixels on a side that each output pixel of a fitted upscale reads
_UPSCALE_PAD = (UPSCALE_TAPS // 2, UPSCALE_TAPS - 1 - UPSCALE_TAPS // 2) * 2  # left, right, top, bottom


@dataclass(frozen=True)
class Upscale:
    """How an upsampler brings its low-res input up to its output size, 2x. ``weights``: the linear
    filter that best rebuilds the training frames from their area-downscaled copies (least squares,
    :func:`fit_upscale`): 4 rows, one per output pixel phase, of ``UPSCALE_TAPS``² taps and a bias,
    shared by the colour channels. None: bilinear (:func:`resize_clip`), as models trained before it."""

    weights: tuple[tuple[float, ...], ...] | None = None

    def __call__(self, clip: torch.Tensor, shape: Shape) -> torch.Tensor:
        """(..., C, F, h, w) in [-1, 1] → (..., C, F, height, width) of ``shape``, in [-1, 1]."""
        if self.weights is None:
            return resize_clip(clip, shape)
        c, h, w = clip.shape[-4], clip.shape[-2], clip.shape[-1]
        if tuple(shape) != (2 * h, 2 * w):
            raise ValueError(f"a fitted upscale doubles frames: {h}x{w} to {shape[0]}x{shape[1]}")
        weights = torch.tensor(self.weights, dtype=clip.dtype, device=clip.device)
        taps = UPSCALE_TAPS
        kernel = weights[:, :-1].reshape(4, 1, taps, taps).repeat(c, 1, 1, 1)  # channel-major, 4 phases each

        def upscale(flat: torch.Tensor) -> torch.Tensor:
            padded = F.pad(flat, _UPSCALE_PAD, mode="replicate")
            phases = F.conv2d(padded, kernel, weights[:, -1].repeat(c), groups=c)
            return F.pixel_shuffle(phases, 2).clamp(-1, 1)

        return framewise(clip, upscale)

    @classmethod
    def from_rows(cls, rows: Any) -> Upscale:
        """The fitted upscale of weight ``rows`` (4 sequences of floats: a list, an array, a tensor)."""
        return cls(tuple(tuple(float(v) for v in row) for row in rows))

    @classmethod
    def from_meta(cls, meta: dict) -> Upscale:
        """The upscale a model's ``config.json`` records (bilinear when it records none)."""
        weights = meta.get("upscale")
        return cls() if weights is None else cls.from_rows(weights)


def fit_upscale(store: FrameStore, rows: np.ndarray, shape: Shape) -> Upscale:
    """The least-squares :class:`Upscale` from half of ``shape`` to ``shape`` on the stored frames ``rows``
    (their area-downscaled copies as input): normal equations summed over chunks of frames, so memory
    stays small whatever the number of frames. Deterministic for the same frames and machine."""
    taps, low_shape = UPSCALE_TAPS, half(shape)
    gram = torch.zeros(taps * taps + 1, taps * taps + 1, dtype=torch.float64)
    rhs = torch.zeros(taps * taps + 1, 4, dtype=torch.float64)
    for chunk in np.array_split(rows, max(1, len(rows) // 16)):
        frames = to_model_range(store.frames[chunk])[None]  # (1, 3, N, H, W)
        high = resize_clip(frames, shape).reshape(-1, 1, *shape)
        low = resize_clip(frames, low_shape).reshape(-1, 1, *low_shape)
        cols = (
            F.unfold(F.pad(low, _UPSCALE_PAD, mode="replicate"), taps)
            .transpose(1, 2)
            .reshape(-1, taps * taps)
        )
        x = torch.cat([cols, torch.ones(len(cols), 1)], dim=1).double()
        y = F.pixel_unshuffle(high, 2).flatten(2).transpose(1, 2).reshape(-1, 4).double()  # phase py*2+px
        gram += x.T @ x
        rhs += x.T @ y
    ridge = 1e-6 * gram.diagonal().mean() * torch.eye(len(gram), dtype=torch.float64)
    return Upscale.from_rows(torch.linalg.solve(gram + ridge, rhs).T.float())  # (4, taps² + 1)


@dataclass(frozen=True)
class BatchSpec:
    """What one model trains on."""

    shape: Shape  # output frames (height, width)
    batch: int
    flip: bool
    lowres: bool = False  # upsampler: also give the 2x smaller clip, resized back up
    crop: int = 0  # upsampler: random crops of this size (0: whole frames)
    image_prob: float = 0.0  # chance that a clip is X independent random frames instead of a window
    upscale: Upscale = Upscale()  # upsampler: how the low-res clip is brought back up
    zoom: float = 0.0  # base: each clip cut to a random box up to 1 + zoom times smaller, scaled back
    keypoints: bool = False  # the labels are pose keypoints: flips mirror them, zooms move them


KEEP_BYTES = 512 * 2**20  # a training process keeps its model's frames in memory up to this size


class ModelFrames:
    """The stored frames as one model reads them: resized to its size and, for an upsampler, its
    low-res input (area-shrunk to half size, brought back up by its upscale), in [-1, 1].

    Each frame is made alone, so making the frames a batch asks for, or making the whole store once
    and keeping it (when it takes at most ``keep_bytes``), gives the same numbers. Keeping them saves
    a training step of the demo's base model about 2.4 ms of its ~140 (reading, converting and
    resizing 128 px frames), an upsampler's about 4 ms."""

    def __init__(self, store: FrameStore, spec: BatchSpec, keep_bytes: int = 0) -> None:
        self.store, self.spec = store, spec
        self.kept: dict[str, torch.Tensor] | None = None
        per_frame = 3 * spec.shape[0] * spec.shape[1] * 4 * (2 if spec.lowres else 1)
        count = len(store.frames)
        if keep_bytes and per_frame * count <= keep_bytes:
            self.kept = {}
            for start in range(0, count, 256):  # in chunks: the 128 px float frames of a long video are large
                rows = np.arange(start, min(start + 256, count))
                for key, made in self.make(rows).items():
                    self.kept.setdefault(key, torch.empty(3, count, *made.shape[-2:]))[:, rows] = made

    def make(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """The frames ``rows`` (N,): ``clip`` and maybe ``lowres``, each (3, N, height, width)."""
        frames = to_model_range(self.store.frames[rows])
        shape = self.spec.shape
        out = {"clip": resize_clip(frames, shape)}
        if self.spec.lowres:
            out["lowres"] = self.spec.upscale(resize_clip(frames, half(shape)), shape)
        return out

    def clips(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Clips of the frames ``rows`` (B, X): ``clip`` and maybe ``lowres``, each (B, 3, X, H, W)."""
        flat = rows.reshape(-1)
        made = {key: v[:, flat] for key, v in self.kept.items()} if self.kept is not None else self.make(flat)
        shape = self.spec.shape
        return {
            key: v.reshape(3, *rows.shape, *shape).transpose(0, 1).contiguous() for key, v in made.items()
        }


class ClipBatches(Dataset):
    """Item ``i`` is the batch for training step ``first_step + i`` on ``rank``."""

    def __init__(
        self,
        store_path: str | Path,
        cond: np.ndarray,
        windows: ClipWindows,
        spec: BatchSpec,
        seed: int,
        first_step: int,
        last_step: int,
        rank: int = 0,
    ) -> None:
        self.store_path = Path(store_path)
        self.cond = np.asarray(cond, dtype=np.float32)
        self.windows, self.spec, self.seed, self.rank = windows, spec, seed, rank
        self.first_step, self.last_step = first_step, last_step
        self._frames: ModelFrames | None = None  # made lazily in each worker (memmaps don't pickle well)

    def __len__(self) -> int:
        return max(0, self.last_step - self.first_step)

    @property
    def frames(self) -> ModelFrames:
        if self._frames is None:
            self._frames = ModelFrames(FrameStore.open(self.store_path), self.spec, KEEP_BYTES)
        return self._frames

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        step = self.first_step + i
        gen = step_generator(self.seed, step, self.rank, Stream.BATCH)
        valid = self.windows.train_starts
        starts = valid[torch.randint(0, len(valid), (self.spec.batch,), generator=gen).numpy()]
        rows = self.windows.rows(starts)
        independent = torch.zeros(self.spec.batch, dtype=torch.bool)
        if self.spec.image_prob:  # joint image-video training: some clips are unrelated frames
            independent = torch.rand(self.spec.batch, generator=gen) < self.spec.image_prob
            frames = self.windows.train_frames
            picks = frames[torch.randint(0, len(frames), rows.shape, generator=gen).numpy()]
            rows = np.where(independent.numpy()[:, None], picks, rows)
        return make_batch(self.frames, self.cond, rows, gen, independent)


def make_batch(
    frames: ModelFrames,
    cond: np.ndarray,
    rows: np.ndarray,
    gen: torch.Generator | None = None,
    independent: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Clips of the stored frames ``rows`` (B, X): ``clip`` (B, 3, X, h, w), ``cond`` (B, X, D),
    ``independent`` (B,) (True: the frames are unrelated images, not a clip), maybe ``lowres``;
    cropped and flipped as ``frames.spec`` says, drawing from ``gen``."""
    spec = frames.spec
    labels = torch.from_numpy(cond[rows]) if cond.shape[1] else torch.zeros(*rows.shape, 0)
    if independent is None:
        independent = torch.zeros(len(rows), dtype=torch.bool)
    out = {**frames.clips(rows), "cond": labels, "independent": independent}
    height, width = spec.shape
    if gen is not None and spec.crop and spec.crop < max(height, width):
        ys = torch.randint(0, height - min(spec.crop, height) + 1, (len(rows),), generator=gen).tolist()
        xs = torch.randint(0, width - min(spec.crop, width) + 1, (len(rows),), generator=gen).tolist()
        for key in ("clip", "lowres"):
            if key in out:
                out[key] = torch.stack(
                    [
                        t[..., y : y + spec.crop, x : x + spec.crop]
                        for t, y, x in zip(out[key], ys, xs, strict=True)
                    ]
                )
    if gen is not None and spec.zoom:
        out["clip"], out["cond"] = zoomed(frames, rows, out["cond"], gen)
    if gen is not None and spec.flip:
        flips = torch.rand(len(rows), generator=gen) < 0.5
        for key in ("clip", "lowres"):
            if key in out:
                out[key] = torch.where(flips[:, None, None, None, None], out[key].flip(-1), out[key])
        if spec.keypoints and out["cond"].shape[-1]:
            out["cond"] = torch.where(flips[:, None, None], mirror_keypoints(out["cond"]), out["cond"])
    return out


def zoomed(
    frames: ModelFrames, rows: np.ndarray, cond: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of the stored frames ``rows`` (B, X), each cut to its own random box (1 to 1 + zoom times
    smaller than the frame, anywhere in it, the same for all the clip's frames) and area-shrunk from
    the stored frames to the model's shape, so a zoomed clip is as sharp as any other; pose keypoints
    ``cond`` move with the box (those it cuts off become unseen: zeros). Returns (clip, cond)."""
    spec, (height, width) = frames.spec, frames.store.shape
    scale = 1 + spec.zoom * torch.rand(len(rows), generator=gen)
    corner = torch.rand(len(rows), 2, generator=gen)
    clips, moved = [], cond.clone()
    for b, clip_rows in enumerate(rows):
        h, w = round(height / float(scale[b])), round(width / float(scale[b]))
        y, x = round(float(corner[b, 0]) * (height - h)), round(float(corner[b, 1]) * (width - w))
        box = frames.store.frames[clip_rows][:, y : y + h, x : x + w]
        clips.append(resize_clip(to_model_range(box), spec.shape))
        if spec.keypoints and cond.shape[-1]:
            points = moved[b].reshape(len(clip_rows), -1, 3)
            origin, extent = torch.tensor([x, y]), torch.tensor([w, h])
            xy = (points[..., :2] * torch.tensor([width, height]) - origin) / extent
            seen = (points[..., 2] > 0) & (xy >= 0).all(-1) & (xy <= 1).all(-1)
            points[..., :2] = torch.where(seen[..., None], xy, 0.0)  # unseen keypoints are zeros
            points[..., 2] = torch.where(seen, points[..., 2], 0.0)
    return torch.stack(clips), moved
