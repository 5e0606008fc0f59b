"""GPU check and benchmark: every CUDA path of vdlib run once, and what each costs, in one go.

Made for one GPU of the H100/H200 class, where it takes about 6-8 minutes (``--budget`` seconds: the
sections left when it runs out are skipped and say so). It writes ``reports/bench/gpu.json`` after
every section, so a run cut short keeps what it measured, and prints the tables at the end:

- training throughput of the base model and an upsampler at the demo's size and at ``make
  quality``'s, fp32 (TF32 matmuls) against bf16 autocast, and ``torch.compile`` on the base models
  (compile time apart); FLOPs per step from ``torch.utils.flop_counter`` and the model FLOPs
  utilisation against the GPU's dense bf16 peak (looked up by name, or ``--peak-tflops``); peak
  memory per step (``torch.cuda.max_memory_allocated``);
- the largest base batch that fits at the quality preset;
- a tiny ``dvc repro`` of the demo with ``train.device: cuda``, ``train.nproc: auto`` and
  ``render.device: cuda`` through evaluate, so every stage's CUDA path runs once;
- sampling: seconds per 16-frame 128 px video through the cascade it trained, in batches of 1, 8, 32;
- pose labelling frames/s, PyTorch on CUDA against ONNX Runtime on CPU;
- a training batch that cannot fit, stopping with the one line that names the param to lower.

    python benchmarks/gpu.py                      # make bench-gpu
    python benchmarks/gpu.py --peak-tflops 989    # the GPU's dense bf16 TFLOP/s, where the table has none
    python benchmarks/gpu.py --self-check         # no GPU needed: the FLOP counting on a tiny model

Without CUDA it stops at once with one line (exit status 1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BENCH_DIR, flops_per_call, machine, markdown_table, write_json

REPO = BENCH_DIR.parent
# Dense bf16 TFLOP/s by device name (the first that the name contains), from the vendors' data sheets.
PEAK_BF16_TFLOPS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
                    ("GH200", 989.0), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0)]  # fmt: skip
# `make quality`'s model settings (the Makefile's QUALITY), as the training stages read them.
QUALITY = {
    "base": {"window": 64, "skip": 0, "batch": 16, "model": {"channels": 128, "mults": [1, 2, 4],
             "res_blocks": 2, "spatial_attn_levels": [1, 2], "heads": 8}},
    "upsampler": {"window": 16, "skip": 0, "batch": 8, "crop": 64, "mapping_channels": 64,
                  "model": {"channels": 64, "mults": [1, 2, 4], "res_blocks": 2}},
}  # fmt: skip
LABELS = 6  # the demo's label vector: 3 shapes + 3 colours


def peak_tflops(name: str, given: float | None) -> float | None:
    """The dense bf16 peak of the GPU called ``name``: ``given``, else the table's."""
    return given or next((tflops for key, tflops in PEAK_BF16_TFLOPS if key in name), None)


# --------------------------------------------------------------------------------------------------
# Training steps
# --------------------------------------------------------------------------------------------------


def training_step(section: str, overrides: dict, resolution: int, device: Any, precision: Any, batch: int):
    """vdlib's training step (loss, gradient clipping, AdamW, EMA) for ``section``'s model with
    ``overrides`` on random clips at ``resolution`` px; returns (step function, network, parameters)."""
    from vdlib.config import section_from_dict
    from vdlib.training.train import random_training

    cfg = section_from_dict(section, {**overrides, "batch": batch})
    trainee, data = random_training(cfg, (resolution, resolution), LABELS, "timestamps", device, precision)
    steps = iter(range(10**9))

    def step() -> None:
        trainee.step(data, 0, next(steps), 0)

    return step, trainee.model, sum(p.numel() for p in trainee.model.parameters())


def time_steps(step: Any, steps: int) -> float:
    import torch

    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


TRAIN_CASES = [  # (name, section, overrides, output size, batch)
    ("base, demo (32 px, 8 frames)", "base", {}, 32, 2),
    ("upsampler_64, demo (32 px crops)", "upsampler", {}, 64, 2),
    ("base, quality (32 px, 64 frames)", "base", QUALITY["base"], 32, 16),
    ("upsampler_128, quality (64 px crops)", "upsampler", QUALITY["upsampler"], 128, 8),
]


def training(device: Any, peak: float | None) -> list[dict]:
    """Steps/s, clips/s, FLOPs, MFU and peak memory of each case in fp32 and bf16, and compiled."""
    import torch

    rows = []
    for name, section, overrides, size, batch in TRAIN_CASES:
        step, model, params = training_step(section, overrides, size, device, None, batch)
        flops = flops_per_call(step)
        del step, model
        variants = [("fp32", None, False), ("bf16", torch.bfloat16, False)]
        if section == "base":
            variants.append(("bf16", torch.bfloat16, True))
        for label, dtype, compiled in variants:
            step, model, params = training_step(section, overrides, size, device, dtype, batch)
            compile_s = None
            if compiled:
                model.compile()
                start = time.perf_counter()
                step()
                torch.cuda.synchronize()
                compile_s = time.perf_counter() - start
            step()
            torch.cuda.reset_peak_memory_stats()
            seconds = time_steps(step, 20 if batch <= 2 else 10)
            rows.append({
                "case": name, "precision": label, "compile": compiled, "batch": batch, "params": params,
                "steps_per_s": round(1 / seconds, 2), "clips_per_s": round(batch / seconds, 1),
                "gflops_per_step": round(flops / 1e9, 2),
                "mfu_bf16_peak": round(flops / seconds / (peak * 1e12), 4) if peak else None,
                "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                "compile_s": round(compile_s, 1) if compile_s is not None else None,
            })  # fmt: skip
            print(rows[-1], flush=True)
            del step, model
            torch.cuda.empty_cache()
    return rows


def largest_batch(device: Any) -> dict:
    """The largest power-of-two base batch (bf16) that trains at the quality preset."""
    import torch

    fits, batch = None, 16
    while batch <= 4096:
        step = model = None
        try:
            step, model, _ = training_step("base", QUALITY["base"], 32, device, torch.bfloat16, batch)
            step()
            torch.cuda.synchronize()
            fits = {"batch": batch, "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            del step, model
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        batch *= 2
    return {"largest_base_batch_quality_bf16": fits, "first_that_did_not_fit": batch}


# --------------------------------------------------------------------------------------------------
# The pipeline on CUDA
# --------------------------------------------------------------------------------------------------


def tiny_project(folder: Path) -> Path:
    """The project's pipeline in ``folder`` with a 20 s demo and tiny trainings, every stage on CUDA."""
    import yaml

    for name in ("stages", "vdlib", "labels"):
        shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(REPO / name, folder / name)
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["demo"].update({"seconds": 20, "width": 96, "height": 72})
    params["train"].update({"device": "cuda", "nproc": "auto", "ckpt_every": 20})
    params["base"]["steps"] = 60
    params["upsampler"].update({"steps": 30, "fitted_steps": 20})
    params["render"].update({"device": "cuda", "count": 2})
    params["evaluate"].update({"classifier_steps": 50, "fidelity_clips": 1})
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def dvc(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("dvc")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.run([str(exe), *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def pipeline(project: Path) -> dict:
    """``dvc repro`` of the tiny demo on CUDA through evaluate."""
    tiny_project(project)
    dvc(project, "init", "--no-scm", "-q")
    start = time.perf_counter()
    done = dvc(project, "repro", timeout=360)
    result = {"ok": done.returncode == 0, "seconds": round(time.perf_counter() - start, 1)}
    if done.returncode:
        result["error"] = (done.stdout + done.stderr)[-2000:]
    else:
        import json

        metrics = json.loads((project / "reports/eval/metrics.json").read_text())
        result["seconds_per_video_in_render"] = metrics["sampling"]["seconds_per_video"]
    return result


def sampling(project: Path, device: Any) -> list[dict]:
    """Seconds per 16-frame 128 px video through the tiny run's cascade, ``batch`` videos together."""
    import numpy as np
    import torch

    from vdlib.config import CASCADE, RenderConfig
    from vdlib.generation.cascade import load_cascade
    from vdlib.generation.conditions import Request
    from vdlib.generation.render import generate

    cfg = RenderConfig()
    folders = [project / "models" / name for name in CASCADE]
    cascade = load_cascade(folders, cfg.sampling(), [f"render.{n}" for n in CASCADE], device)
    labels = len(cascade[0].card.label_names)
    rows = []
    for batch in (1, 1, 8, 32):  # the first batch of 1 warms up
        requests = [Request(f"v{i}", np.zeros((16, labels), np.float32), "labels", i) for i in range(batch)]
        torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            generate(cascade, requests, 16, 0, device)
        except torch.cuda.OutOfMemoryError:
            rows.append({"batch": batch, "seconds_per_video": None, "note": "out of memory"})
            torch.cuda.empty_cache()
            continue
        torch.cuda.synchronize()
        rows.append({"batch": batch, "seconds_per_video": round((time.perf_counter() - start) / batch, 3)})
    return rows[1:]


def out_of_memory(project: Path) -> dict:
    """A base batch that cannot fit: the training stage must stop with one line naming base.batch."""
    import yaml

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["base"]["batch"] = 20000
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    args = ["base", "data/frames", "data/labels.parquet", "models/oom", "reports/oom"]
    done = subprocess.run([sys.executable, "stages/train.py", *args], cwd=project, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return {"exit_status": done.returncode, "last_line": last, "names_the_param": "base.batch" in last}


def pose() -> dict:
    """Pose labelling frames/s: PyTorch on CUDA against ONNX Runtime on CPU, the same frames."""
    from pose import _frames

    from vdlib.config import PoseConfig
    from vdlib.data.frames import FrameStore
    from vdlib.labels.pose import pose_labels

    rates = {}
    with tempfile.TemporaryDirectory(prefix="vdlib-gpu-") as tmp:
        store = FrameStore.open(_frames(Path(tmp), 9.6))
        for name, cfg in (("torch_cuda", PoseConfig(runtime="torch", device="cuda")),
                          ("onnx_cpu", PoseConfig(runtime="onnx", device="cpu"))):  # fmt: skip
            pose_labels(store, cfg)  # export, load and first-call set-up
            start = time.perf_counter()
            pose_labels(store, cfg)
            rates[name] = round(len(store) / (time.perf_counter() - start), 1)
    return {"frames": len(store), "frames_per_s": rates}


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def self_check() -> int:
    """What runs without a GPU: the FLOP count of a tiny model's training step, which must double with
    the batch."""
    import torch

    cpu = torch.device("cpu")
    tiny = {"model": {"channels": 8, "mults": [1, 2], "spatial_attn_levels": [], "heads": 2}, "window": 4,
            "skip": 0}  # fmt: skip
    one, two = (flops_per_call(training_step("base", tiny, 16, cpu, None, b)[0]) for b in (1, 2))
    ratio = two / one
    print(f"self-check: a tiny model's training step counts {one / 1e6:.1f} MFLOP at batch 1, "
          f"{two / 1e6:.1f} at batch 2 ({ratio:.2f}x)")  # fmt: skip
    return 0 if 1.9 <= ratio <= 2.1 else 1


def tables(result: dict) -> str:
    out = []
    if isinstance(result.get("training"), list):
        out.append(markdown_table(
            ["case", "precision", "compile", "batch", "steps/s", "clips/s", "GFLOP/step", "MFU (bf16 peak)",
             "peak memory GB", "compile s"],
            [[r["case"], r["precision"], r["compile"], r["batch"], r["steps_per_s"], r["clips_per_s"],
              r["gflops_per_step"], f"{r['mfu_bf16_peak']:.1%}" if r["mfu_bf16_peak"] is not None else "n/a",
              r["peak_memory_gb"], r["compile_s"] or ""] for r in result["training"]],
        ))  # fmt: skip
    if isinstance(result.get("sampling"), list):
        out.append(markdown_table(
            ["render.batch", "s per 16-frame 128 px video"],
            [[r["batch"], r["seconds_per_video"] or r.get("note")] for r in result["sampling"]],
        ))  # fmt: skip
    for key in ("largest_batch", "pipeline", "pose", "out_of_memory"):
        if key in result:
            out.append(f"{key}: {result[key]}")
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/gpu.json"))
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 TFLOP/s (default: by name)")
    parser.add_argument("--budget", type=float, default=480, help="seconds; later sections are skipped")
    parser.add_argument("--self-check", action="store_true", help="the FLOP counting on a tiny model, on CPU")
    args = parser.parse_args(argv)
    if args.self_check:
        return self_check()
    import torch

    if not torch.cuda.is_available():
        print(f"gpu.py: no CUDA device here (torch {torch.__version__}): nothing to measure; run "
              "`make bench-gpu` on a machine with a GPU")  # fmt: skip
        return 1
    from vdlib.device import resolve_device

    device = resolve_device("cuda", "gpu.py")
    name = torch.cuda.get_device_name(0)
    peak = peak_tflops(name, args.peak_tflops)
    result: dict[str, Any] = {"benchmark": "gpu", "machine": machine(), "peak_bf16_tflops": peak}
    deadline = time.perf_counter() + args.budget
    with tempfile.TemporaryDirectory(prefix="vdlib-gpu-project-") as tmp:
        project = Path(tmp)
        sections = [
            ("pipeline", lambda: pipeline(project)),
            ("training", lambda: training(device, peak)),
            ("sampling", lambda: sampling(project, device)),
            ("largest_batch", lambda: largest_batch(device)),
            ("pose", pose),
            ("out_of_memory", lambda: out_of_memory(project)),
        ]
        for key, section in sections:
            if time.perf_counter() > deadline:
                result[key] = {"skipped": f"--budget {args.budget:g} s spent"}
                continue
            start = time.perf_counter()
            try:
                result[key] = section()
            except Exception as exc:  # one section's failure is a finding, not the end of the check
                result[key] = {"error": f"{type(exc).__name__}: {str(exc)[:1500]}"}
            print(f"gpu.py: {key} in {time.perf_counter() - start:.0f} s", flush=True)
            write_json(result, args.out)
    print(tables(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
