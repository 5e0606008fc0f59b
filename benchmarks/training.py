"""Training throughput and memory: vdlib's base U-Net vs video-diffusion-pytorch's ``Unet3D``.

Both at a matched parameter count (within 10%), the same clip shape and batch, each doing its own
full training step: noise a batch, forward, MSE loss, backward, AdamW step (vdlib: its
``training_loss`` with context frames; video-diffusion-pytorch: ``GaussianDiffusion.forward``).
Every measurement runs in a fresh process, so peak RSS is that model's own; runs are interleaved and
the median is reported.

    python benchmarks/training.py            # 8 and 16 frames at 32x32, batch 4
    python benchmarks/training.py --quick    # the smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from common import (
    cpu_peak,
    flops_per_call,
    machine,
    markdown_table,
    median_of,
    peak_rss_mb,
    run_worker,
    write_json,
)

# The demo's base model, and the video-diffusion-pytorch Unet3D of about the same size.
VDLIB_MODEL = {"channels": 32, "mults": [1, 2, 2], "res_blocks": 1, "spatial_attn_levels": [2], "heads": 4}
VDP_MODEL = {"dim": 20, "dim_mults": (1, 2, 2), "attn_heads": 8, "attn_dim_head": 32}  # its default attention
TARGET_SPEEDUP = 1.5


def _vdlib_step(frames: int, size: int, batch: int, model_cfg: dict[str, Any]):
    import torch

    from vdlib.config import section_from_dict
    from vdlib.models.diffusion import Diffusion
    from vdlib.models.unet import UNet3D, UNetConfig
    from vdlib.training.train import training_loss

    model = UNet3D(UNetConfig(**model_cfg))
    cfg = section_from_dict("base", {"resolution": size, "window": frames, "skip": 0})
    diffusion = Diffusion(cfg.diffusion)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    clip = torch.rand(batch, 3, frames, size, size, generator=gen) * 2 - 1
    batch_ = {"clip": clip, "cond": torch.zeros(batch, frames, 0)}

    def step() -> None:
        loss = training_loss(model, diffusion, batch_, cfg, gen, torch.device("cpu"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return model, step


def _vdp_step(frames: int, size: int, batch: int, model_cfg: dict[str, Any]):
    import torch
    from video_diffusion_pytorch import GaussianDiffusion, Unet3D

    unet = Unet3D(**model_cfg)
    diffusion = GaussianDiffusion(unet, image_size=size, num_frames=frames, timesteps=1000, loss_type="l2")
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    videos = torch.rand(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(0))

    def step() -> None:
        loss = diffusion(videos)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return unet, step


def worker(impl: str, frames: int, size: int, batch: int, steps: int, threads: int, model: str) -> dict:
    """Time ``steps`` training steps after two warm-up steps, in this process."""
    import json

    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = json.loads(model)
    net, step = (_vdlib_step if impl == "vdlib" else _vdp_step)(frames, size, batch, cfg)
    flops = flops_per_call(step)  # also the first warm-up step
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {
        "impl": impl,
        "params": sum(p.numel() for p in net.parameters()),
        "clips_per_s": steps * batch / seconds,
        "gflops_per_step": flops / 1e9,
        "peak_rss_mb": peak_rss_mb(),
    }


def compare(frames: int, size: int, batch: int, steps: int, repeats: int, threads: int, peak: dict) -> dict:
    """Interleaved vdlib / video-diffusion-pytorch runs at one clip shape; medians and ratios."""
    import json

    runs: dict[str, list[dict]] = {"vdlib": [], "vdp": []}
    models = {"vdlib": json.dumps(VDLIB_MODEL), "vdp": json.dumps(VDP_MODEL)}
    for _ in range(repeats):
        for impl in runs:
            runs[impl].append(
                run_worker("training.py", impl, frames, size, batch, steps, threads, models[impl])
            )
    ours, theirs = runs["vdlib"], runs["vdp"]
    speedup = median_of(ours, "clips_per_s") / median_of(theirs, "clips_per_s")
    # Model FLOPs utilisation: the FLOPs the steps did per second over what the cores can do in fp32
    # (both networks train in fp32 here).
    gflops_per_s = median_of(ours, "gflops_per_step") * median_of(ours, "clips_per_s") / batch
    return {
        "frames": frames,
        "size": size,
        "batch": batch,
        "vdlib_params": ours[0]["params"],
        "vdp_params": theirs[0]["params"],
        "vdlib_clips_per_s": round(median_of(ours, "clips_per_s"), 3),
        "vdp_clips_per_s": round(median_of(theirs, "clips_per_s"), 3),
        "speedup": round(speedup, 3),
        "vdlib_gflops_per_step": round(median_of(ours, "gflops_per_step"), 3),
        "vdlib_mfu_fp32": round(gflops_per_s / peak["fp32_gflops"], 4) if peak["fp32_gflops"] else None,
        "vdlib_peak_rss_mb": round(median_of(ours, "peak_rss_mb"), 1),
        "vdp_peak_rss_mb": round(median_of(theirs, "peak_rss_mb"), 1),
        "target_met": speedup >= TARGET_SPEEDUP
        and median_of(ours, "peak_rss_mb") <= median_of(theirs, "peak_rss_mb"),
    }


def run(quick: bool = False, threads: int = 0) -> dict:
    """The benchmark: rows per clip shape and a Markdown table."""
    from vdlib.core.cores import available_cores

    threads = threads or available_cores()
    peak = cpu_peak(threads)
    shapes = [(4, 16)] if quick else [(8, 32), (16, 32)]
    steps, repeats = (1, 1) if quick else (6, 3)
    rows = [compare(frames, size, 4, steps, repeats, threads, peak) for frames, size in shapes]
    table = markdown_table(
        ["clip", "params vdlib / vdp", "clips/s vdlib", "clips/s vdp", "speedup", "peak RSS MB vdlib / vdp",
         "GFLOP/step vdlib", f"MFU vdlib (fp32 peak {peak['fp32_gflops']:.0f} GFLOP/s)",
         f"target >= {TARGET_SPEEDUP}x at <= memory"],
        [[f"4 x {r['frames']} x {r['size']}px", f"{r['vdlib_params']:,} / {r['vdp_params']:,}",
          r["vdlib_clips_per_s"], r["vdp_clips_per_s"], r["speedup"],
          f"{r['vdlib_peak_rss_mb']:.0f} / {r['vdp_peak_rss_mb']:.0f}", r["vdlib_gflops_per_step"],
          f"{r['vdlib_mfu_fp32']:.1%}" if r["vdlib_mfu_fp32"] is not None else "n/a", r["target_met"]]
         for r in rows],
    )  # fmt: skip
    table += f"\n\nPeak: {peak['basis']}."
    return {"rows": rows, "table": table, "steps": steps, "repeats": repeats, "threads": threads,
            "peak": peak}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest size, one run (smoke test)")
    parser.add_argument("--out", default="reports/bench/training.json")
    parser.add_argument("--worker", nargs=7, metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        import json

        impl, frames, size, batch, steps, threads, model = args.worker
        print(json.dumps(worker(impl, int(frames), int(size), int(batch), int(steps), int(threads), model)))
        return 0
    result = run(args.quick)
    print(result["table"])
    write_json({"benchmark": "training", "machine": machine(), **result}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
