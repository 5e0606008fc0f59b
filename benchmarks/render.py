"""Rendering: seconds per video through the cascade when videos are sampled one at a time vs in
batches of 2 and 10 (``render.batch``), per model, with the params' render settings and requests
(the demo's ten videos after ``make demo``), on the params' render device, and how far the batched
frames are from the one-at-a-time ones (float rounding only: each video draws the noise it would
draw alone).

    python benchmarks/render.py
    python benchmarks/render.py --quick   # a tiny untrained base model on a short demo (smoke test)
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import bench_main, markdown_table
from sampling import _quick_inputs


def run(quick: bool = False, frames_dir: str = "data/frames", labels_path: str = "data/labels.parquet",
        models_dir: str = "models") -> dict:  # fmt: skip
    """Render the params' requests one at a time and in batches; time and compare them."""
    from vdlib.config import CASCADE, RenderConfig, load_section
    from vdlib.generation.render import render_videos

    cfg = load_section("render") if Path("params.yaml").is_file() else RenderConfig()
    models = [Path(models_dir) / name for name in CASCADE[: cfg.cascade]]
    with tempfile.TemporaryDirectory(prefix="vdlib-bench-") as tmp:
        if quick:
            frames_dir, labels_path, base = _quick_inputs(Path(tmp))
            models = [base]
            cfg = replace(cfg, cascade=1, frames=8, labels="auto", timelines="auto", count=4,
                          base=replace(cfg.base, steps=3, context=2))  # fmt: skip
        if not all(Path(m, "model.safetensors").is_file() for m in models):
            raise SystemExit(f"{models_dir}: no trained cascade; run `make demo` first")
        cfg = replace(cfg, formats=["gif"], seeds=cfg.seeds[:1])
        alone: dict[str, np.ndarray] = {}
        rows = []
        for batch in (1, 4) if quick else (1, 2, 10):
            videos = render_videos(replace(cfg, batch=batch), models, Path(tmp) / f"batch{batch}",
                                   frames=frames_dir, labels=labels_path)  # fmt: skip
            frames = {v.stem: v.frames.astype(np.int16) for v in videos}
            alone = alone or frames
            diff = np.concatenate([np.abs(frames[k] - alone[k]).ravel() for k in alone])
            per_model = [sum(v.stages[i].seconds for v in videos) / len(videos) for i in range(len(models))]
            rows.append({
                "batch": batch,
                "videos": len(videos),
                "seconds_per_video": round(sum(per_model), 3),
                "per_model": {Path(m).name: round(s, 3) for m, s in zip(models, per_model, strict=True)},
                "speedup": round(rows[0]["seconds_per_video"] / sum(per_model), 3) if rows else 1.0,
                "mean_abs_difference": round(float(diff.mean()), 4),
                "max_abs_difference": int(diff.max()),
            })  # fmt: skip
        names = [Path(m).name for m in models]
        table = markdown_table(
            ["batch", "videos", "s / video", *[f"{n} s" for n in names], "speedup",
             "frames vs batch 1: mean / max abs difference (0-255)"],
            [[r["batch"], r["videos"], r["seconds_per_video"], *r["per_model"].values(), r["speedup"],
              f"{r['mean_abs_difference']} / {r['max_abs_difference']}"] for r in rows],
        )  # fmt: skip
        return {"rows": rows, "table": table, "frames": cfg.frames, "models": [str(m) for m in models]}


def main(argv: list[str] | None = None) -> int:
    return bench_main("render", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
