"""Sampling: vdlib's default (DPM-Solver++, 20 steps) vs the original project's setting (DDIM,
stride 10 over 1000 steps = 100 steps) on the same trained base model: seconds and network
evaluations per 16-frame clip, and the evaluate stage's label accuracy of the clips each makes.

Needs the demo's base model and data (``make demo`` first). One clip per label combination (every
shape x colour on the demo), interleaved between the two samplers; guidance scale and context as in
``params.yaml``'s ``render.base``, every step guided (``guidance_share`` 1) in both.

    python benchmarks/sampling.py
    python benchmarks/sampling.py --quick   # a tiny untrained model on a short demo (smoke test)
"""

from __future__ import annotations

import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import bench_main, markdown_table, quick_demo_data

SAMPLERS = {"dpmsolver++ 20 (vdlib)": ("dpmsolver++", 20), "ddim 100 (original)": ("ddim", 100)}
TARGET_SPEEDUP = 4.0
ACCURACY_TOLERANCE = 0.02


def _quick_inputs(work: Path) -> tuple[Path, Path, Path]:
    """A short demo store, its labels, and a tiny untrained base model saved like a trained one."""
    from vdlib.labels import read_labels
    from vdlib.models.card import ModelCard, save_model
    from vdlib.models.schedule import DiffusionConfig
    from vdlib.models.unet import UNet3D, UNetConfig

    frames, labels_path = quick_demo_data(work)
    labels = read_labels(labels_path)
    model = UNet3D(
        UNetConfig(channels=8, mults=(1, 2), spatial_attn_levels=(1,), heads=2, cond_dim=labels.dim)
    )
    card = ModelCard(unet=model.cfg, kind="base", size=16, diffusion=DiffusionConfig(), frames=8, window=16,
                     skip=1, val_fraction=0.05, seed=0, fps=5.0, label_kind=labels.kind,
                     label_names=tuple(labels.names))  # fmt: skip
    save_model(model, card, work / "base")
    return frames, labels_path, work / "base"


def run(quick: bool = False, frames_dir: str = "data/frames", labels_path: str = "data/labels.parquet",
        model_dir: str = "models/base") -> dict:  # fmt: skip
    """Generate one 16-frame clip per label combination with each sampler; time and score them."""

    from vdlib.config import EvaluateConfig, RenderConfig, load_section
    from vdlib.data.frames import ClipWindows, FrameStore
    from vdlib.device import resolve_device
    from vdlib.evaluation.classifier import label_accuracy, train_classifier
    from vdlib.generation.cascade import open_model, run_model
    from vdlib.generation.conditions import parse_labels
    from vdlib.labels import read_labels
    from vdlib.models.upscale import to_uint8

    with tempfile.TemporaryDirectory(prefix="vdlib-bench-") as tmp:
        if quick:
            frames_dir, labels_path, model_dir = _quick_inputs(Path(tmp))
        if not Path(model_dir, "model.safetensors").is_file():
            raise SystemExit(f"{model_dir}: no trained base model; run `make demo` first")
        render = load_section("render") if Path("params.yaml").is_file() else RenderConfig()
        device = resolve_device("cpu", "benchmark")
        store, labels = FrameStore.open(frames_dir), read_labels(labels_path)
        every_step = replace(render.base, guidance_share=1.0)  # the samplers alone, as the original guided
        steps_cfg = {name: replace(every_step, sampler=s, steps=n) for name, (s, n) in SAMPLERS.items()}
        if quick:
            steps_cfg = {
                name: replace(c, steps=max(1, c.steps // 10), context=2) for name, c in steps_cfg.items()
            }
        models = {name: open_model(model_dir, cfg, "render.base", device) for name, cfg in steps_cfg.items()}
        base = next(iter(models.values()))
        groups = {}
        for name in labels.names:
            group, _, label = name.partition("=")
            groups.setdefault(group, []).append(f"{group}={label}")
        combos = [",".join(c) for c in itertools.product(*groups.values())][: 2 if quick else None]
        n_frames = 16
        made: dict[str, list[np.ndarray]] = {name: [] for name in models}
        seconds: dict[str, list[float]] = {name: [] for name in models}
        evaluations: dict[str, list[int]] = {name: [] for name in models}
        conds = []
        for i, combo in enumerate(combos):
            cond = np.tile(parse_labels(combo, base.labels), (n_frames, 1))
            conds.append(cond)
            for name, model in models.items():
                start = time.perf_counter()
                out = run_model(model, 0, cond[None], n_frames, [i], device)
                seconds[name].append(time.perf_counter() - start)
                evaluations[name].append(out.evaluations)
                made[name].append(to_uint8(out.clip))
        train_cfg = load_section("train") if Path("params.yaml").is_file() else None
        train_rows = ClipWindows.for_store(
            store,
            base.card.window,
            base.card.skip,
            train_cfg.val_fraction if train_cfg else 0.05,
        ).train_frames
        cfg = EvaluateConfig(classifier_steps=50 if quick else 1200)
        classifier = train_classifier(store.frames[train_rows], labels.cond[train_rows], labels.names, cfg)
        rows = []
        for name in models:
            acc = label_accuracy(classifier, np.concatenate(made[name]), np.concatenate(conds), labels.names,
                                 cfg.classifier_size)  # fmt: skip
            rows.append({
                "sampler": name,
                "seconds_per_clip": round(statistics.median(seconds[name]), 3),
                "evaluations_per_clip": float(np.mean(evaluations[name])),
                "label_accuracy": {g: round(v, 4) for g, v in acc.items()},
                "clips": len(combos),
            })  # fmt: skip
        ours, seed = rows
        speedup = seed["seconds_per_clip"] / ours["seconds_per_clip"]
        worst_gap = max(seed["label_accuracy"][g] - ours["label_accuracy"][g] for g in ours["label_accuracy"])
        summary = {
            "speedup": round(speedup, 3),
            "accuracy_gap": round(worst_gap, 4),
            "target_met": speedup >= TARGET_SPEEDUP and worst_gap <= ACCURACY_TOLERANCE,
            "guidance": base.sampling.guidance,
            "context": base.sampling.context,
        }
        table = markdown_table(
            ["sampler", "s / 16-frame clip", "network evaluations", "label accuracy", "speedup",
             f"target >= {TARGET_SPEEDUP:g}x, accuracy within {ACCURACY_TOLERANCE}"],
            [[r["sampler"], r["seconds_per_clip"], r["evaluations_per_clip"],
              ", ".join(f"{g} {v:.2f}" for g, v in r["label_accuracy"].items()),
              summary["speedup"] if r is ours else 1.0, summary["target_met"] if r is ours else ""]
             for r in rows],
        )  # fmt: skip
        return {
            "rows": rows,
            "summary": summary,
            "table": table,
            "model": str(model_dir),
            "device": str(device),
        }


def main(argv: list[str] | None = None) -> int:
    return bench_main("sampling", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
