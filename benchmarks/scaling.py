"""Scaling: how a training step of vdlib's base U-Net grows with frame size and clip length.

clips/s and peak RSS at 32, 64 and 128 px x 8, 16 and 32 frames (batch 1, the demo's model), each in
a fresh process; a Markdown table, JSON and a PNG plot.

    python benchmarks/scaling.py
    python benchmarks/scaling.py --quick    # 16 px x 4 and 8 frames (smoke test)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import bench_main, markdown_table, run_worker
from training import VDLIB_MODEL


def run(quick: bool = False, threads: int = 0, plot: str | Path | None = None) -> dict:
    """Measure every (size, frames) pair; optionally write the plot."""
    from vdlib.core.cores import available_cores

    threads = threads or available_cores()
    sizes, lengths = ([16], [4, 8]) if quick else ([32, 64, 128], [8, 16, 32])
    steps = 1 if quick else 2
    model = json.dumps(VDLIB_MODEL)
    rows = []
    for size in sizes:
        for frames in lengths:
            r = run_worker("training.py", "vdlib", frames, size, 1, steps, threads, model)
            rows.append({"size": size, "frames": frames, "clips_per_s": round(r["clips_per_s"], 4),
                         "frames_per_s": round(r["clips_per_s"] * frames, 2),
                         "peak_rss_mb": round(r["peak_rss_mb"], 1)})  # fmt: skip
    table = markdown_table(
        ["size", "frames", "clips/s", "frames/s", "peak RSS MB"],
        [
            [f"{r['size']}px", r["frames"], r["clips_per_s"], r["frames_per_s"], r["peak_rss_mb"]]
            for r in rows
        ],
    )
    if plot:
        _plot(rows, Path(plot))
    return {"rows": rows, "table": table, "batch": 1, "steps": steps, "threads": threads}


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for size in sorted({r["size"] for r in rows}):
        sub = [r for r in rows if r["size"] == size]
        ax1.plot([r["frames"] for r in sub], [r["clips_per_s"] for r in sub], "o-", label=f"{size}px")
        ax2.plot([r["frames"] for r in sub], [r["peak_rss_mb"] for r in sub], "o-", label=f"{size}px")
    ax1.set(xscale="log", yscale="log", xlabel="frames per clip", ylabel="clips/s (training step, batch 1)")
    ax2.set(xscale="log", xlabel="frames per clip", ylabel="peak RSS (MB)")
    for ax in (ax1, ax2):
        ax.set_xticks(
            sorted({r["frames"] for r in rows}), [str(f) for f in sorted({r["frames"] for r in rows})]
        )
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("vdlib base U-Net: cost of a training step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    return bench_main("scaling", __doc__, lambda quick: run(quick, plot="reports/bench/scaling.png"), argv)


if __name__ == "__main__":
    sys.exit(main())
