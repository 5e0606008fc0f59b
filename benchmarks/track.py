"""Object motion of rendered videos against real clips: the track of one foreground object's centroid.

The evaluate stage's temporal ratio and motion distance compare how much pixels change, not where an
object goes, so a video whose object slows down or stops can score as well as one that moves like the
real clips. On footage with one clear foreground object (the demo's saturated shapes, the digits'
bright strokes on a dark background), this follows the object's centroid frame by frame and reports
its speed (pixels per frame: mean, median and 90th percentile) and its jerk (the mean change of that
velocity from frame to frame): real clips drift smoothly (jerk near 0), boiling or teleporting
objects show a high jerk and 90th percentile, a frozen one a low median speed.

    python benchmarks/track.py --render reports/gifs --render old=/tmp/other/render --foreground saturated
    python benchmarks/track.py --quick     # real held-out clips against the same clips shuffled

``--render`` names folders holding a render's ``generated.npz`` (``NAME=FOLDER`` or just ``FOLDER``);
the real clips are every 16-frame clip of the held-out tails of ``--frames`` (as the params in
``--params`` split them) at the base model's rate, resized to the rendered size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from common import machine, markdown_table, quick_demo_data, write_json

FOREGROUNDS = ("saturated", "bright")
MIN_PIXELS = 8  # fewer foreground pixels than this: no object in that frame


def foreground_mask(frames: np.ndarray, kind: str) -> np.ndarray:
    """(K, S, S, 3) uint8 → (K, S, S) bool: pixels of a saturated colour (max - min channel > 80) or
    bright ones (max channel > 110)."""
    f = frames.astype(np.int16)
    if kind == "bright":
        return f.max(-1) > 110
    return (f.max(-1) - f.min(-1)) > 80


def centroids(frames: np.ndarray, kind: str) -> np.ndarray:
    """(K, 2) centroid (x, y) of each frame's foreground, NaN where a frame has none."""
    mask = foreground_mask(frames, kind)
    ys, xs = np.mgrid[: mask.shape[1], : mask.shape[2]]
    count = mask.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        x = (mask * xs).sum(axis=(1, 2)) / count
        y = (mask * ys).sum(axis=(1, 2)) / count
    out = np.stack([x, y], axis=1)
    out[count < MIN_PIXELS] = np.nan
    return out


def track_stats(videos: list[np.ndarray], kind: str) -> dict[str, Any]:
    """Speed (mean, median, 90th percentile) and jerk of the foreground centroid over ``videos``."""
    if not videos:
        raise SystemExit("no videos to track (real held-out tails shorter than one 16-frame clip?)")
    speeds, jerks = [], []
    for video in videos:
        c = centroids(video, kind)
        speeds.append(np.linalg.norm(np.diff(c, axis=0), axis=1))
        jerks.append(np.linalg.norm(np.diff(c, 2, axis=0), axis=1))
    speed, jerk = np.concatenate(speeds), np.concatenate(jerks)
    speed, jerk = speed[~np.isnan(speed)], jerk[~np.isnan(jerk)]
    if not len(jerk):
        raise SystemExit("no foreground object found in consecutive frames: try the other --foreground")
    return {
        "videos": len(videos),
        "speed_mean": round(float(speed.mean()), 3),
        "speed_median": round(float(np.median(speed)), 3),
        "speed_p90": round(float(np.percentile(speed, 90)), 3),
        "jerk": round(float(jerk.mean()), 3),
    }


def real_clips(frames: Path, params: Path, size: int, length: int = 16) -> list[np.ndarray]:
    """Clips of ``length`` frames at the base model's rate from every held-out tail, at ``size`` px."""
    from vdlib.config import load_section
    from vdlib.data.frames import ClipWindows, FrameStore
    from vdlib.evaluation.evaluate import resize_frames

    base, train = load_section("base", params), load_section("train", params)
    store = FrameStore.open(frames)
    windows = ClipWindows.for_store(store, base.window, base.skip, train.val_fraction)
    stride, span = base.skip + 1, length * (base.skip + 1)
    clips = []
    for part in windows.held_out_parts:
        for start in range(0, len(part) - span + 1, stride):  # every start at the generated rate
            clips.append(
                resize_frames(store.frames[part[start : start + span : stride]], store.shape_at(size))
            )
    return clips


def rendered_videos(folder: Path) -> list[np.ndarray]:
    """The frames of every video in ``folder/generated.npz``."""
    with np.load(folder / "generated.npz") as data:
        return [data[k] for k in data.files if k.startswith("frames/")]


HEADERS = ["videos", "count", "speed mean", "speed median", "speed p90", "jerk"]


def run(
    renders: list[tuple[str, Path]], frames: Path, params: Path, kind: str, shuffle: bool
) -> dict[str, Any]:
    """The table: real held-out clips first, then each render (and with ``shuffle``, the real clips
    with their frames in random order: what a boiling, teleporting object scores)."""
    generated = {name: rendered_videos(folder) for name, folder in renders}
    size = min(next(iter(generated.values()))[0].shape[1:3]) if generated else 32
    real = real_clips(frames, params, size)
    results = {"real held-out": track_stats(real, kind)}
    if shuffle:
        rng = np.random.default_rng(0)
        results["real held-out, shuffled"] = track_stats([c[rng.permutation(len(c))] for c in real], kind)
    for name, videos in generated.items():
        results[name] = track_stats(videos, kind)
    rows = [{"name": name, **stats} for name, stats in results.items()]
    keys = ["name", "videos", "speed_mean", "speed_median", "speed_p90", "jerk"]
    table = markdown_table(HEADERS, [[r[k] for k in keys] for r in rows])
    title = f"foreground centroid ({kind}): speed and jerk in px per frame at {size} px"
    return {"foreground": kind, "size": size, "rows": rows, "table": f"{title}\n\n{table}"}


def parse_render(text: str) -> tuple[str, Path]:
    """``NAME=FOLDER`` or ``FOLDER`` (named by itself)."""
    name, sep, folder = text.partition("=")
    return (name, Path(folder)) if sep else (text, Path(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="append", default=[], help="[NAME=]FOLDER with generated.npz")
    parser.add_argument("--frames", type=Path, default=Path("data/frames"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--foreground", choices=FOREGROUNDS, default="saturated")
    parser.add_argument("--quick", action="store_true", help="a short demo clip's real and shuffled clips")
    parser.add_argument("--out", type=Path, default=Path("reports/bench/track.json"))
    args = parser.parse_args(argv)
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            frames, _ = quick_demo_data(Path(tmp), seconds=120)
            result = run([], frames, args.params, args.foreground, shuffle=True)
    else:
        result = run([parse_render(r) for r in args.render], args.frames, args.params, args.foreground, False)
    print(result["table"])
    write_json({"benchmark": "track", "machine": machine(), **result}, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
