"""Motion measures of videos against real footage: how much frames change, and how they change.

``temporal.ratio`` (mean generated frame difference over the real one) says whether videos change as
much as real footage; it cannot tell an object drifting smoothly from one that boils in place or
jumps around, which change a frame by about as much. The *motion distance* compares the whole
distribution of per-pixel frame-to-frame changes instead: smooth motion changes few pixels (the
moving edges) and most not at all, boiling changes most pixels a little, jumps change whole objects'
areas a lot. It is the 1-D Wasserstein distance between the two distributions, in grey levels
(0-255): 0 when generated videos change exactly as real ones do.
"""

from __future__ import annotations

import numpy as np

QUANTILES = np.linspace(0.0, 1.0, 201)


def frame_differences(frames: np.ndarray) -> np.ndarray:
    """Mean absolute difference (0-255) of each consecutive pair of (K, H, W, 3) uint8 frames."""
    f = frames.astype(np.float32)
    return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))


def mean_difference(first: np.ndarray, second: np.ndarray) -> float:
    """Mean absolute difference (0-255) between paired (N, H, W, 3) uint8 frames."""
    return float(np.abs(first.astype(np.float32) - second.astype(np.float32)).mean())


def pixel_changes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The quantiles (:data:`QUANTILES`) of per-pixel absolute grey-level change between paired
    (N, H, W, 3) uint8 frames: the distribution the motion distance compares."""
    grey = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    change = [
        np.abs(first[i : i + 256].astype(np.float32) @ grey - second[i : i + 256].astype(np.float32) @ grey)
        for i in range(0, len(first), 256)
    ]
    return np.quantile(np.concatenate(change).ravel(), QUANTILES)


def motion_distance(generated: np.ndarray, real: np.ndarray) -> float:
    """Wasserstein-1 distance (grey levels) between two :func:`pixel_changes` quantile vectors."""
    return float(np.abs(np.asarray(generated) - np.asarray(real)).mean())


def video_pixel_changes(videos: list[np.ndarray]) -> np.ndarray:
    """:func:`pixel_changes` over every consecutive pair of each of ``videos`` ((K, H, W, 3) each)."""
    firsts = np.concatenate([v[:-1] for v in videos if len(v) > 1])
    seconds = np.concatenate([v[1:] for v in videos if len(v) > 1])
    return pixel_changes(firsts, seconds)
