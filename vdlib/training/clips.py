"""Training batches from the frame store: clips as tensors, resized, with labels and low-res inputs.

Every batch is a pure function of (seed, step, rank) (``Stream.BATCH``), so a resumed run sees
exactly the batches an uninterrupted one would, whatever the number of DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vdlib.core.randomness import Stream, step_generator
from vdlib.data.frames import ClipWindows, FrameStore
from vdlib.labels.pose import mirror_keypoints
from vdlib.models.autoencoder import FrameAutoencoder
from vdlib.models.upscale import Shape, Upscale, half, resize_clip, to_model_range

BILINEAR = Upscale()


@dataclass(frozen=True)
class BatchSpec:
    """What one model trains on."""

    shape: Shape  # output frames (height, width)
    batch: int
    flip: bool
    lowres: bool = False  # upsampler: also give the 2x smaller clip, resized back up
    crop: int = 0  # upsampler: random crops of this size (0: whole frames)
    image_prob: float = 0.0  # chance that a clip is X independent random frames instead of a window
    upscale: Upscale = BILINEAR  # upsampler: how the low-res clip is brought back up
    zoom: float = 0.0  # base: each clip cut to a random box up to 1 + zoom times smaller, scaled back
    keypoints: bool = False  # the labels are pose keypoints: flips mirror them, zooms move them
    autoencoder: FrameAutoencoder | None = None  # a latent base model: clips are its latents of the frames


KEEP_BYTES = 512 * 2**20  # a training process keeps its model's frames in memory up to this size


class ModelFrames:
    """The stored frames as one model reads them: resized to its size and, for an upsampler, its
    low-res input (area-shrunk to half size, brought back up by its upscale), in [-1, 1]; for a latent
    base model, the autoencoder's latents of the resized frames.

    Each frame is made alone, so making the frames a batch asks for, or making the whole store once
    and keeping it (when it takes at most ``keep_bytes``), gives the same numbers. Keeping them saves
    a training step of the demo's base model about 2.4 ms of its ~140 (reading, converting and
    resizing 128 px frames), an upsampler's about 4 ms."""

    def __init__(self, store: FrameStore, spec: BatchSpec, keep_bytes: int = 0) -> None:
        self.store, self.spec = store, spec
        self.kept: dict[str, torch.Tensor] | None = None
        channels, factor = 3, 1
        if spec.autoencoder is not None:
            channels, factor = spec.autoencoder.cfg.latent_channels, spec.autoencoder.cfg.factor
        per_frame = channels * spec.shape[0] * spec.shape[1] // factor**2 * 4 * (2 if spec.lowres else 1)
        count = len(store.frames)
        if keep_bytes and per_frame * count <= keep_bytes:
            self.kept = {}
            for start in range(0, count, 256):  # in chunks: the 128 px float frames of a long video are large
                rows = np.arange(start, min(start + 256, count))
                for key, made in self.make(rows).items():
                    kept = self.kept.setdefault(key, torch.empty(made.shape[0], count, *made.shape[-2:]))
                    kept[:, rows] = made

    def make(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """The frames ``rows`` (N,): ``clip`` and maybe ``lowres``, each (C, N, height, width): 3
        channels of pixels, or a latent base model's latent channels at its latents' size."""
        frames = to_model_range(self.store.frames[rows])
        shape = self.spec.shape
        out = {"clip": resize_clip(frames, shape)}
        if self.spec.autoencoder is not None:
            with torch.no_grad():
                out["clip"] = self.spec.autoencoder.encode(out["clip"].transpose(0, 1)).transpose(0, 1)
        if self.spec.lowres:
            out["lowres"] = self.spec.upscale(resize_clip(frames, half(shape)), shape)
        return out

    def clips(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Clips of the frames ``rows`` (B, X): ``clip`` and maybe ``lowres``, each (B, C, X, H, W)."""
        flat = rows.reshape(-1)
        made = {key: v[:, flat] for key, v in self.kept.items()} if self.kept is not None else self.make(flat)
        return {
            key: v.reshape(v.shape[0], *rows.shape, *v.shape[-2:]).transpose(0, 1).contiguous()
            for key, v in made.items()
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
