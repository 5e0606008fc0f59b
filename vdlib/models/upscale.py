"""Frames as the models see them: uint8 frames to the model's range, clips resized, and the
upsamplers' input upscale, bilinear or a linear filter fitted to the footage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """(X, H, W, 3) uint8 → (3, X, H, W) float in [-1, 1]."""
    array = np.require(frames, requirements=["C", "W"])  # a copy only of read-only memmap views
    return torch.from_numpy(array).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(clip: torch.Tensor) -> np.ndarray:
    """(1, 3, K, H, W) in [-1, 1] → (K, H, W, 3) uint8."""
    return ((clip[0].permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()


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


def fit_upscale(frames: np.ndarray, rows: np.ndarray, shape: Shape) -> Upscale:
    """The least-squares :class:`Upscale` from half of ``shape`` to ``shape`` on the stored ``frames``
    (an (N, H, W, 3) uint8 array, memory-mapped or not) ``rows``
    (their area-downscaled copies as input): normal equations summed over chunks of frames, so memory
    stays small whatever the number of frames. Deterministic for the same frames and machine."""
    taps, low_shape = UPSCALE_TAPS, half(shape)
    gram = torch.zeros(taps * taps + 1, taps * taps + 1, dtype=torch.float64)
    rhs = torch.zeros(taps * taps + 1, 4, dtype=torch.float64)
    for chunk in np.array_split(rows, max(1, len(rows) // 16)):
        clip = to_model_range(frames[chunk])[None]  # (1, 3, N, H, W)
        high = resize_clip(clip, shape).reshape(-1, 1, *shape)
        low = resize_clip(clip, low_shape).reshape(-1, 1, *low_shape)
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
