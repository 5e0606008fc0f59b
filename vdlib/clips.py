"""Training batches from the frame store: clips as tensors, resized, with labels and low-res inputs.

Every batch is a pure function of (seed, step, rank) (``Stream.BATCH``), so a resumed run sees
exactly the batches an uninterrupted one would, whatever the number of DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch.utils.data import Dataset

from vdlib.frames import ClipWindows, FrameStore
from vdlib.randomness import Stream, step_generator


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """(X, S, S, 3) uint8 → (3, X, S, S) float in [-1, 1]."""
    array = np.require(frames, requirements=["C", "W"])  # a copy only of read-only memmap views
    return torch.from_numpy(array).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def resize_clip(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (..., C, F, H, W) frames to ``size`` (area when shrinking, bilinear when growing)."""
    if clip.shape[-1] == size:
        return clip
    lead, (c, f, h, w) = clip.shape[:-4], clip.shape[-4:]
    flat = clip.reshape(-1, c, f, h, w).transpose(1, 2).reshape(-1, c, h, w)
    if size < w:
        out = F.interpolate(flat, size=(size, size), mode="area")
    else:
        out = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
    return out.reshape(-1, f, c, size, size).transpose(1, 2).reshape(*lead, c, f, size, size)


@dataclass(frozen=True)
class BatchSpec:
    """What one model trains on."""

    size: int  # output frame size
    batch: int
    flip: bool
    lowres: bool = False  # upsampler: also give the 2x smaller clip, resized back up
    crop: int = 0  # upsampler: random crops of this size (0: whole frames)
    image_prob: float = 0.0  # chance that a clip is X independent random frames instead of a window


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
        self._store: FrameStore | None = None  # opened lazily in each worker (memmaps don't pickle well)

    def __len__(self) -> int:
        return max(0, self.last_step - self.first_step)

    @property
    def store(self) -> FrameStore:
        if self._store is None:
            self._store = FrameStore.open(self.store_path)
        return self._store

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
        return make_batch(self.store, self.cond, self.spec, rows, gen, independent)


def make_batch(
    store: FrameStore,
    cond: np.ndarray,
    spec: BatchSpec,
    rows: np.ndarray,
    gen: torch.Generator | None = None,
    independent: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Clips of the stored frames ``rows`` (B, X): ``clip`` (B, 3, X, s, s), ``cond`` (B, X, D),
    ``independent`` (B,) (True: the frames are unrelated images, not a clip), maybe ``lowres``."""
    clips = torch.stack([to_model_range(store.frames[row]) for row in rows])  # (B, 3, X, S, S)
    labels = torch.from_numpy(cond[rows]) if cond.shape[1] else torch.zeros(*rows.shape, 0)
    clip = resize_clip(clips, spec.size)
    if independent is None:
        independent = torch.zeros(len(rows), dtype=torch.bool)
    out = {"clip": clip, "cond": labels, "independent": independent}
    if spec.lowres:
        out["lowres"] = resize_clip(resize_clip(clips, spec.size // 2), spec.size)
    if gen is not None and spec.crop and spec.crop < spec.size:
        ys = torch.randint(0, spec.size - spec.crop + 1, (len(rows),), generator=gen).tolist()
        xs = torch.randint(0, spec.size - spec.crop + 1, (len(rows),), generator=gen).tolist()
        for key in ("clip", "lowres"):
            if key in out:
                out[key] = torch.stack(
                    [
                        t[..., y : y + spec.crop, x : x + spec.crop]
                        for t, y, x in zip(out[key], ys, xs, strict=True)
                    ]
                )
    if gen is not None and spec.flip:
        flips = torch.rand(len(rows), generator=gen) < 0.5
        for key in ("clip", "lowres"):
            if key in out:
                out[key] = torch.where(flips[:, None, None, None, None], out[key].flip(-1), out[key])
    return out
