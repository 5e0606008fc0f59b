"""Pictures for people: a preview GIF of a frame store with its labels drawn on (label names or pose
skeletons), and contact sheets of generated frames.

The preview lets a user check at a glance that a timestamp table lines up with the video, or that
the pose model found the person; a sheet lets them compare generated frames side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vdlib.data.frames import FrameStore, evenly_spaced
from vdlib.data.video import write_gif
from vdlib.labels import Labels
from vdlib.labels.pose import SKELETON


def label_caption(labels: Labels, i: int) -> str:
    """The active ``group=label`` names of frame ``i`` (cond > 0.5), or a pose summary."""
    if labels.kind == "pose":
        return "person" if labels.person is not None and labels.person[i] else "no person"
    active = [name for name, v in zip(labels.names, labels.cond[i], strict=True) if v > 0.5]
    return " ".join(name.partition("=")[2] for name in active) or "-"


def draw_skeleton(
    draw: ImageDraw.ImageDraw, keypoints: np.ndarray, size: tuple[int, int], min_conf: float = 0.3
) -> None:
    """Draw one person's (17, 3) keypoints, normalised per axis, onto an image of ``size`` (width,
    height)."""
    xy = keypoints[:, :2] * np.asarray(size, dtype=np.float32)
    ok = keypoints[:, 2] >= min_conf
    side = min(size)
    width = max(1, side // 96)
    for a, b in SKELETON:
        if ok[a] and ok[b]:
            draw.line([tuple(xy[a]), tuple(xy[b])], fill=(0, 255, 120), width=width)
    r = max(1.5, side / 100)
    for (x, y), good in zip(xy, ok, strict=True):
        if good:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 60, 60))


def write_preview(
    store: FrameStore, labels: Labels, path: str | Path, max_frames: int = 150, scale: int = 2
) -> Path:
    """Write an animated GIF of up to ``max_frames`` evenly spaced frames with their labels drawn."""
    picks = evenly_spaced(np.arange(len(store)), max_frames)
    width, height = store.shape[1] * scale, store.shape[0] * scale
    images = []
    for i in picks:
        image = Image.fromarray(np.asarray(store.frames[i])).resize((width, height), Image.NEAREST)
        draw = ImageDraw.Draw(image)
        if labels.kind == "pose" and labels.person is not None and labels.person[i]:
            draw_skeleton(draw, labels.cond[i].reshape(-1, 3), (width, height))
        text = f"{store.times[i]:7.1f}s {label_caption(labels, i)}"
        draw.rectangle([0, height - 14, width, height], fill=(0, 0, 0))
        draw.text((3, height - 13), text, fill=(255, 255, 255))
        images.append(np.asarray(image))
    step_s = (picks[1] - picks[0]) / store.fps if len(picks) > 1 and store.fps else 0.1
    return write_gif(np.stack(images), path, fps=1.0 / min(max(step_s, 0.02), 0.5))


def write_contact_sheet(
    frames: np.ndarray,
    path: str | Path,
    caption: str = "",
    columns: int = 8,
    min_size: int = 96,
    poses: np.ndarray | None = None,
) -> Path:
    """Write (F, H, W, 3) uint8 frames as a PNG grid (frame numbers under each, ``caption`` on top).

    Small frames are enlarged (nearest neighbour) until their shorter side is at least ``min_size``;
    ``poses`` (F, 17, 3), if given, are drawn over their frames.
    """
    from vdlib.core.common import atomic_output

    n, (h, w) = len(frames), frames.shape[1:3]
    scale = max(1, -(-min_size // min(h, w)))
    (tile_h, tile_w), gap, top = (h * scale, w * scale), 2, 16
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    size = (columns * (tile_w + gap) + gap, top + rows * (tile_h + gap + 12))
    sheet = Image.new("RGB", size, (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    draw.text((gap + 2, 2), caption, fill=(255, 255, 255))
    for i, frame in enumerate(frames):
        image = Image.fromarray(np.asarray(frame)).resize((tile_w, tile_h), Image.NEAREST)
        if poses is not None:
            draw_skeleton(ImageDraw.Draw(image), poses[i], (tile_w, tile_h))
        x = gap + (i % columns) * (tile_w + gap)
        y = top + (i // columns) * (tile_h + gap + 12)
        sheet.paste(image, (x, y))
        draw.text((x + 2, y + tile_h), str(i), fill=(200, 200, 200))
    path = Path(path)
    with atomic_output(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
