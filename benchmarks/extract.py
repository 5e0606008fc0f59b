"""Extract throughput: ``vdlib extract`` vs the ffmpeg binary alone doing the same decode + scale + pad.

ffmpeg alone runs the identical filter graph into ``-f null``, so the difference is what vdlib adds:
probing, the raw-RGB pipe, writing the memory-mapped store and its index. Runs are interleaved and the
median of ``--repeats`` is reported. Prints a Markdown table and writes JSON.

    python benchmarks/extract.py                 # demo video + 1080p test source
    python benchmarks/extract.py --quick         # small inputs (the smoke test)
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import bench_main, markdown_table

from vdlib.config import DemoConfig, ExtractConfig
from vdlib.data.demo import render_demo_video
from vdlib.data.extract import extract_frames
from vdlib.data.video import FrameFit, decode_command, ffmpeg_exe

TARGET_RATIO = 1.25  # ffmpeg-alone fps / vdlib fps must stay below this (vdlib >= 0.8x ffmpeg)


def make_testsrc(path: Path, width: int, height: int, seconds: float, rate: int) -> Path:
    """An H.264 ffmpeg ``testsrc2`` clip."""
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size={width}x{height}:rate={rate}:duration={seconds}",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def time_ffmpeg_alone(video: Path, cfg: ExtractConfig) -> float:
    """Seconds for ffmpeg to decode, sample, scale and pad ``video`` into ``-f null``."""
    cmd = decode_command(
        video, FrameFit.square(cfg.resolution), cfg.fps, cfg.pad_color, output="-", output_format="null"
    )
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_vdlib(video: Path, cfg: ExtractConfig, out: Path) -> tuple[float, int]:
    """Seconds for ``extract_frames`` (probe included) and the number of frames it stored."""
    start = time.perf_counter()
    store = extract_frames(video, out, cfg)
    return time.perf_counter() - start, len(store)


def bench(name: str, video: Path, cfg: ExtractConfig, repeats: int, workdir: Path) -> dict:
    """Interleaved runs of both; medians and the frames/s ratio."""
    ours, theirs, frames = [], [], 0
    for i in range(repeats):
        theirs.append(time_ffmpeg_alone(video, cfg))
        out = workdir / f"frames-{len(name)}-{i}"
        seconds, frames = time_vdlib(video, cfg, out)
        ours.append(seconds)
        shutil.rmtree(out)  # outside the timed region
    vdlib_fps = frames / statistics.median(ours)
    ffmpeg_fps = frames / statistics.median(theirs)
    return {
        "input": name,
        "frames": frames,
        "size": cfg.resolution,
        "fps_sampled": cfg.fps,
        "vdlib_frames_per_s": round(vdlib_fps, 1),
        "ffmpeg_frames_per_s": round(ffmpeg_fps, 1),
        "ffmpeg_over_vdlib": round(ffmpeg_fps / vdlib_fps, 3),
        "target_met": ffmpeg_fps / vdlib_fps <= TARGET_RATIO,
    }


def run(quick: bool = False, repeats: int = 5) -> dict:
    """Both inputs; rows and a Markdown table."""
    repeats = 1 if quick else repeats
    rows = []
    with tempfile.TemporaryDirectory(prefix="vdlib-bench-") as tmp:
        work = Path(tmp)
        if quick:
            demo = render_demo_video(DemoConfig(seconds=4, width=96, height=72), work / "demo.mkv")
            hd = make_testsrc(work / "hd.mp4", 640, 360, 2, 30)
            cases = [("demo 96x72 4s", demo, ExtractConfig(resolution=32, fps=10)),
                     ("testsrc2 640x360 2s", hd, ExtractConfig(resolution=64, fps=30))]  # fmt: skip
        else:
            demo = render_demo_video(DemoConfig(), work / "demo.mkv")
            hd = make_testsrc(work / "hd.mp4", 1920, 1080, 10, 30)
            cases = [("demo 192x144 120s", demo, ExtractConfig(resolution=128, fps=10)),
                     ("testsrc2 1920x1080 10s", hd, ExtractConfig(resolution=128, fps=30))]  # fmt: skip
        for name, video, cfg in cases:
            rows.append(bench(name, video, cfg, repeats, work))
    table = markdown_table(
        ["input", "frames", "vdlib frames/s", "ffmpeg alone frames/s", "vdlib/ffmpeg",
         f"target >= {1 / TARGET_RATIO:.2g}"],
        [[r["input"], r["frames"], r["vdlib_frames_per_s"], r["ffmpeg_frames_per_s"],
          round(1 / r["ffmpeg_over_vdlib"], 3), r["target_met"]] for r in rows],
    )  # fmt: skip
    return {"rows": rows, "table": table, "repeats": repeats, "ffmpeg": ffmpeg_exe()}


def main(argv: list[str] | None = None) -> int:
    return bench_main("extract", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
