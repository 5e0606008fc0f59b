"""Realism and memorisation: how far generated frames lie from the footage, against real frames.

For every generated frame, the distance to its nearest *training* frame; for every real held-out
frame (never trained on), the same distance. Their ratio (median over median) reads:

- about 1: the generated frames lie as close to the footage as new footage of the same scenes does;
- far below 1: the model copies its training frames (a 20 s clip invites that);
- far above 1: the frames look unlike the footage (noise, wrong colours, scrambled layout).

The space is weight-free (no downloaded network can be had here): each frame area-shrunk until its
shorter side is :data:`THUMB_SIDE` pixels, in grey levels 0-255, and the distance is the
root-mean-square difference per value. At that size a frame keeps its layout and colours, what
says which scene and which pose it shows, while the fine texture the upsamplers add and a shift of a
pixel or two at 128 px (which two real frames a tenth of a second apart differ by) barely count.
"""

from __future__ import annotations

import numpy as np
import torch

from vdlib.models.upscale import resize_clip, to_model_range

THUMB_SIDE = 16  # pixels on the shorter side of the frames compared
CHUNK = 1024  # frames shrunk (and distances computed) at a time


def thumbnails(frames: np.ndarray, rows: np.ndarray | None = None, side: int = THUMB_SIDE) -> torch.Tensor:
    """(N, H, W, 3) uint8 frames (those of ``rows`` when given: a memory-mapped store is read a chunk
    at a time) → (n, 3 * h * w) float32 grey levels, area-shrunk to a shorter side of ``side`` pixels
    (the aspect kept, rounded to whole pixels)."""
    height, width = frames.shape[1:3]
    short = min(height, width)
    shape = (max(1, round(height * side / short)), max(1, round(width * side / short)))
    rows = np.arange(len(frames)) if rows is None else np.asarray(rows)
    out = []
    for start in range(0, len(rows), CHUNK):
        chunk = np.asarray(frames[rows[start : start + CHUNK]])
        clip = resize_clip(to_model_range(chunk)[None], shape)[0]
        out.append(((clip + 1) * 127.5).transpose(0, 1).reshape(clip.shape[1], -1))
    return torch.cat(out) if out else torch.zeros(0, 3 * shape[0] * shape[1])


def nearest_distances(queries: torch.Tensor, references: torch.Tensor) -> np.ndarray:
    """For each row of ``queries`` (Q, D), the RMS difference per value to its nearest row of
    ``references`` (R, D), in chunks of references so memory stays small."""
    best = torch.full((len(queries),), float("inf"), dtype=torch.float64)
    q = queries.double()
    for start in range(0, len(references), CHUNK):
        squared = torch.cdist(q, references[start : start + CHUNK].double()).pow(2)
        best = torch.minimum(best, squared.min(dim=1).values)
    return (best.clamp(min=0) / queries.shape[1]).sqrt().numpy()


def realism(
    generated: dict[str, np.ndarray], frames: np.ndarray, training: np.ndarray, held_out: np.ndarray
) -> dict[str, object]:
    """The nearest-training-frame distances of the ``generated`` videos (name → (K, h, w, 3) uint8)
    and of the real ``frames`` numbered ``held_out``, against those numbered ``training`` (the
    generated frames at the stored frames' aspect, any size): ``ratio`` (the generated frames' median
    over the held-out frames' median), the two medians (grey levels, RMS at :data:`THUMB_SIDE` px)
    and each video's own ratio."""
    reference = thumbnails(frames, training)
    real = float(np.median(nearest_distances(thumbnails(frames, held_out), reference)))
    per_video = {name: nearest_distances(thumbnails(v), reference) for name, v in generated.items()}
    made = float(np.median(np.concatenate(list(per_video.values()))))
    scale = max(real, 1e-6)
    return {
        "ratio": made / scale,
        "generated_distance": made,
        "real_heldout_distance": real,
        "per_video": {name: float(np.median(d)) / scale for name, d in per_video.items()},
    }
