"""The built-in demo: a procedural clip of one coloured shape moving over a textured background.

The shape (circle / square / triangle) and its colour (red / green / blue) change every few seconds
on a seeded schedule, which is also written as a timestamp table with the groups ``shape`` and
``colour``. The schedule is prefix-stable: a shorter clip with the same seed shows the first part of
the same schedule.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdlib.config import DemoConfig
from vdlib.core.common import atomic_output
from vdlib.data.video import write_video

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (225, 35, 35), "green": (35, 195, 55), "blue": (40, 75, 235)}
MIN_SEGMENT_S = 3.0
MAX_SEGMENT_S = 6.0


@dataclass(frozen=True)
class Segment:
    """One stretch of the schedule, [start, end) in seconds."""

    start: float
    end: float
    shape: str
    colour: str


def demo_schedule(cfg: DemoConfig) -> list[Segment]:
    """The seeded schedule covering ``cfg.seconds``; every shape x colour pair appears in each cycle."""
    rng = np.random.default_rng(cfg.seed)
    pairs = [(s, c) for s in SHAPES for c in COLOURS]
    segments: list[Segment] = []
    t = 0.0
    previous = None
    while t < cfg.seconds:
        order = rng.permutation(len(pairs))
        if previous is not None and pairs[order[0]] == previous:
            order = np.roll(order, -1)
        for idx in order:
            if t >= cfg.seconds:
                break
            # Whole tenths of a second keep the table exact and readable.
            length = round(float(rng.uniform(MIN_SEGMENT_S, MAX_SEGMENT_S)), 1)
            end = round(min(t + length, cfg.seconds), 3)
            shape, colour = pairs[idx]
            segments.append(Segment(round(t, 3), end, shape, colour))
            previous = pairs[idx]
            t = end
    return segments


def write_ranges(rows: Iterable[tuple[float, float, str, str]], path: str | Path) -> None:
    """Write (start, end, label, group) rows as a timestamp table ``start,end,label,group``, atomically."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["start", "end", "label", "group"])
        writer.writerows([f"{start:g}", f"{end:g}", label, group] for start, end, label, group in rows)


def write_schedule_csv(segments: list[Segment], path: str | Path) -> None:
    """Write the schedule as a timestamp table: ``start,end,label,group`` in seconds."""
    write_ranges(
        ((seg.start, seg.end, label, group) for seg in segments
         for label, group in ((seg.shape, "shape"), (seg.colour, "colour"))),
        path,
    )  # fmt: skip


def _background(cfg: DemoConfig) -> np.ndarray:
    """A muted, seeded texture: smooth value noise plus soft diagonal stripes (float32 RGB in 0..255)."""
    rng = np.random.default_rng(cfg.seed + 1)
    h, w = cfg.height, cfg.width
    grid = rng.random((h // 24 + 2, w // 24 + 2)).astype(np.float32)
    ys = np.linspace(0, grid.shape[0] - 1.001, h)
    xs = np.linspace(0, grid.shape[1] - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    noise = (
        grid[y0][:, x0] * (1 - fy) * (1 - fx)
        + grid[y0 + 1][:, x0] * fy * (1 - fx)
        + grid[y0][:, x0 + 1] * (1 - fy) * fx
        + grid[y0 + 1][:, x0 + 1] * fy * fx
    )
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin((xx + yy) * (2 * np.pi / 40))
    grey = 95 + 45 * noise + 18 * stripes
    tint = np.array([1.0, 0.97, 0.9], dtype=np.float32)  # a warm grey, far from the shape colours
    return grey[..., None] * tint


def _shape_mask(shape: str, cx: float, cy: float, r: float, h: int, w: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a shape of 'radius' r centred at (cx, cy)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx + 0.5 - cx, yy + 0.5 - cy
    if shape == "circle":
        dist = np.sqrt(dx * dx + dy * dy) - r
    elif shape == "square":  # circumscribes the circle, so its corners tell it apart even at 32 px
        dist = np.maximum(np.abs(dx), np.abs(dy)) - r
    else:  # triangle pointing up, inscribed in a circle of radius 1.15 r
        rr = r * 1.15
        edges = [
            dy - rr * 0.5,  # bottom edge
            -0.8660254 * dx - 0.5 * dy - rr * 0.5,  # upper-left edge (outward normal)
            0.8660254 * dx - 0.5 * dy - rr * 0.5,  # upper-right edge
        ]
        dist = np.maximum.reduce(edges)
    return np.clip(0.5 - dist, 0.0, 1.0)


def render_demo_frames(cfg: DemoConfig, segments: list[Segment] | None = None):
    """Yield the demo's frames in order as (H, W, 3) uint8 arrays."""
    segments = segments if segments is not None else demo_schedule(cfg)
    background = _background(cfg)
    h, w = cfg.height, cfg.width
    radius = 0.3 * h
    n_frames = round(cfg.seconds * cfg.fps)
    seg_idx = 0
    for i in range(n_frames):
        t = i / cfg.fps
        while seg_idx + 1 < len(segments) and t >= segments[seg_idx].end:
            seg_idx += 1
        seg = segments[seg_idx]
        # A smooth Lissajous path that keeps the whole shape inside the frame.
        cx = w / 2 + (w / 2 - 1.3 * radius) * np.sin(2 * np.pi * t / 9.1)
        cy = h / 2 + (h / 2 - 1.3 * radius) * np.sin(2 * np.pi * t / 6.7 + 0.8)
        mask = _shape_mask(seg.shape, cx, cy, radius, h, w)[..., None]
        colour = np.array(COLOURS[seg.colour], dtype=np.float32)
        frame = background * (1 - mask) + colour * mask
        yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def render_demo_video(cfg: DemoConfig, out: str | Path, table: str | Path | None = None) -> Path:
    """Render the demo clip to ``out`` (and its timestamp table to ``table``, if given)."""
    segments = demo_schedule(cfg)
    total = round(cfg.seconds * cfg.fps)
    frames = render_demo_frames(cfg, segments)
    write_video(frames, out, cfg.width, cfg.height, cfg.fps, total=total, desc="demo video")
    if table is not None:
        write_schedule_csv(segments, table)
    return Path(out)
