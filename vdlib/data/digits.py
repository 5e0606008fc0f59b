"""A second built-in dataset, real and fine-grained: handwritten digits drifting over a dark background.

The digits are the 1,797 real 8x8 handwriting scans that scikit-learn ships (``load_digits``: ten
classes, written by 43 people). The clip shows one scan at a time, about two fifths of the frame's
height, drifting on a smooth path; every few seconds a new scan of another digit takes its place,
and the timestamp table (group ``digit``, labels ``0`` to ``9``) says which digit shows. No two
segments show the same scan, so the frames held out at the clip's end show handwriting no model or
classifier saw in training. Unlike the demo's shapes and colours, the classes differ only by the
strokes' shape: at the base model's 32 px a digit is about 10 px tall, close to its scan's own size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vdlib.config import DemoConfig
from vdlib.core.common import VdlibError
from vdlib.data.demo import write_ranges
from vdlib.data.video import write_video

MIN_SEGMENT_S = 2.0
MAX_SEGMENT_S = 4.0
INK = np.array([240, 232, 210], dtype=np.float32)  # warm white strokes


@dataclass(frozen=True)
class DigitsConfig(DemoConfig):
    """The digits clip: length, rate, frame size and seed (the demo's, four minutes long)."""

    seconds: float = 240.0

    def validate(self, where: str) -> None:
        """Raise ``VdlibError`` naming the first value that cannot make a clip."""
        checks = (
            ("seconds", self.seconds > 0, "a positive number of seconds"),
            ("fps", self.fps >= 1, "an integer >= 1"),
            ("width", self.width >= 32, "at least 32 pixels"),
            ("height", self.height >= 32, "at least 32 pixels"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise VdlibError(f"{where}: {name}: expected {expected}, got {getattr(self, name)}")


@dataclass(frozen=True)
class DigitSegment:
    """One stretch of the clip, [start, end) in seconds, showing scan ``scan`` of digit ``digit``."""

    start: float
    end: float
    digit: int
    scan: int


def load_scans() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digit scans as (N, 8, 8) float32 ink in [0, 1] and their (N,) digits."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise VdlibError(
            "the digits clip needs scikit-learn, which ships the scans: pip install 'vdlib[digits]'"
        ) from err
    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


def digits_schedule(cfg: DigitsConfig, digits: np.ndarray) -> list[DigitSegment]:
    """Seeded segments covering ``cfg.seconds``: the ten digits in a fresh order each cycle (never the
    same digit twice in a row), each segment a scan not used before (``digits``: each scan's digit)."""
    rng = np.random.default_rng(cfg.seed)
    unused = {d: list(rng.permutation(np.flatnonzero(digits == d))) for d in range(10)}
    segments: list[DigitSegment] = []
    t, previous = 0.0, -1
    while t < cfg.seconds:
        order = rng.permutation(10)
        if order[0] == previous:
            order = np.roll(order, -1)
        for digit in order:
            if t >= cfg.seconds:
                break
            if not unused[int(digit)]:
                raise VdlibError(f"digits clip: {cfg.seconds:g} s needs more scans of {digit} than exist")
            end = round(min(t + round(float(rng.uniform(MIN_SEGMENT_S, MAX_SEGMENT_S)), 1), cfg.seconds), 3)
            segments.append(DigitSegment(round(t, 3), end, int(digit), int(unused[int(digit)].pop())))
            previous, t = int(digit), end
    return segments


def write_digits_table(segments: list[DigitSegment], path: str | Path) -> None:
    """The schedule as a timestamp table: ``start,end,label,group`` with group ``digit``."""
    write_ranges(((seg.start, seg.end, str(seg.digit), "digit") for seg in segments), path)


def _background(cfg: DigitsConfig) -> np.ndarray:
    """A dark, smooth, seeded backdrop (float32 RGB in 0..255)."""
    rng = np.random.default_rng(cfg.seed + 1)
    coarse = rng.random((cfg.height // 32 + 2, cfg.width // 32 + 2)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(coarse).resize((cfg.width, cfg.height), Image.BICUBIC))
    grey = 18 + 22 * np.clip(smooth, 0, 1)
    return grey[..., None] * np.array([0.9, 0.95, 1.1], dtype=np.float32)  # a cool dark blue-grey


def _digit_image(scan: np.ndarray, side: int) -> np.ndarray:
    """An 8x8 scan enlarged to ``side`` pixels, smoothly (bicubic), as ink coverage in [0, 1]."""
    big = Image.fromarray(scan.astype(np.float32)).resize((side, side), Image.BICUBIC)
    return np.clip(np.asarray(big), 0.0, 1.0)


def render_digits_frames(cfg: DigitsConfig, segments: list[DigitSegment], scans: np.ndarray):
    """Yield the clip's frames in order as (H, W, 3) uint8 arrays."""
    background = _background(cfg)
    h, w = cfg.height, cfg.width
    side = round(0.4 * h)
    margin = side / 2 + 2
    seg_idx = 0
    for i in range(round(cfg.seconds * cfg.fps)):
        t = i / cfg.fps
        while seg_idx + 1 < len(segments) and t >= segments[seg_idx].end:
            seg_idx += 1
        ink = _digit_image(scans[segments[seg_idx].scan], side)
        # A slow smooth path, sub-pixel positions by shifting the enlarged digit (bilinear).
        cx = w / 2 + (w / 2 - margin) * np.sin(2 * np.pi * t / 11.3)
        cy = h / 2 + (h / 2 - margin) * np.sin(2 * np.pi * t / 7.9 + 0.6)
        x0, y0 = cx - side / 2, cy - side / 2
        ix, iy = int(np.floor(x0)), int(np.floor(y0))
        fx, fy = x0 - ix, y0 - iy
        padded = np.pad(ink, 1)
        shifted = (
            padded[1:, 1:] * (1 - fx) * (1 - fy) + padded[1:, :-1] * fx * (1 - fy)
            + padded[:-1, 1:] * (1 - fx) * fy + padded[:-1, :-1] * fx * fy
        )  # fmt: skip
        coverage = np.zeros((h, w), np.float32)
        coverage[iy : iy + side + 1, ix : ix + side + 1] = shifted[: h - iy, : w - ix]
        frame = background * (1 - coverage[..., None]) + INK * coverage[..., None]
        yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def render_digits_video(cfg: DigitsConfig, out: str | Path, table: str | Path | None = None) -> Path:
    """Render the digits clip to ``out`` (and its timestamp table to ``table``, if given)."""
    cfg.validate("digits clip")
    scans, digits = load_scans()
    segments = digits_schedule(cfg, digits)
    total = round(cfg.seconds * cfg.fps)
    frames = render_digits_frames(cfg, segments, scans)
    write_video(frames, out, cfg.width, cfg.height, cfg.fps, total=total, desc="digits video")
    if table is not None:
        write_digits_table(segments, table)
    return Path(out)
