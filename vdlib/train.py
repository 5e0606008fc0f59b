"""The training loop for the base model and the upsamplers: AdamW with warm-up, gradient clipping,
EMA weights, DDP under ``torchrun``, DVCLive logs, atomic resumable checkpoints.

All randomness of a step (its clips, noise levels, noise, label dropout, context frames) is drawn
from generators seeded by (seed, step, rank), so a run killed and resumed from its last checkpoint
ends with exactly the weights of an uninterrupted run.

The resumable state (weights, EMA, optimizer, step, metric history) lives outside DVC's outputs in
``.vdlib/resume/<name>-<hash of params and inputs>/`` and is removed when training completes; the
stage's outputs are the EMA weights in ``models/<name>/`` and the logs in ``reports/<stage>/``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from vdlib.atomic import atomic_output
from vdlib.clips import BatchSpec, ClipBatches, make_batch, step_generator
from vdlib.config import ModelTrainConfig, TrainConfig, UpsamplerConfig
from vdlib.device import autocast, available_cores, resolve_device, resolve_precision
from vdlib.diffusion import Diffusion, sample
from vdlib.errors import VdlibError
from vdlib.frames import ClipWindows, FrameStore
from vdlib.labels import Labels, read_labels
from vdlib.progress import progress
from vdlib.unet import UNet3D, UNetConfig, save_model
from vdlib.video import write_gif

RESUME_ROOT = Path(".vdlib/resume")
VAL_CLIPS = 8
VAL_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)  # fractions of T: fixed noise levels for validation


@dataclass(frozen=True)
class TrainJob:
    """One model to train: what, from which data, to where."""

    name: str  # "base", "upsampler_64", ...
    cfg: ModelTrainConfig  # BaseConfig or UpsamplerConfig
    train: TrainConfig
    size: int  # output frame size
    frames: Path
    labels: Path
    model_out: Path
    report_dir: Path
    resume_root: Path = RESUME_ROOT

    @property
    def is_upsampler(self) -> bool:
        return isinstance(self.cfg, UpsamplerConfig)

    @property
    def prefix(self) -> str:
        """The params.yaml section, for error messages."""
        return "upsampler" if self.is_upsampler else "base"


# --------------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------------


def unet_config(cfg: ModelTrainConfig, cond_dim: int) -> UNetConfig:
    """The network's config from the params and the label size."""
    m = cfg.model
    extra = (
        {"lowres": True, "mapping_channels": cfg.mapping_channels} if isinstance(cfg, UpsamplerConfig) else {}
    )
    return UNetConfig(
        channels=m.channels,
        mults=tuple(m.mults),
        res_blocks=m.res_blocks,
        spatial_attn_levels=tuple(m.spatial_attn_levels),
        heads=m.heads,
        dropout=m.dropout,
        cond_dim=cond_dim,
        **extra,
    )


def lr_at(step: int, cfg: ModelTrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth of ``cfg.lr`` at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress_ = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress_))))


class EMA:
    """Exponential moving average of the weights, with a warm-up: decay = min(d, (1+s)/(10+s))."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model: torch.nn.Module) -> torch.nn.Module:
        model.load_state_dict(self.shadow)
        return model


def _unwrap(model: torch.nn.Module) -> UNet3D:
    model = getattr(model, "module", model)  # DDP
    return getattr(model, "_orig_mod", model)  # torch.compile


def diffused_clip(batch: dict[str, torch.Tensor], residual_scale: float = 0.0) -> torch.Tensor:
    """What the model diffuses: the clip, or for a residual upsampler (``residual_scale`` > 0) the clip
    minus its (clean, resized) low-res input times the scale, so an untrained upsampler already gives
    the bilinear upscale and the noise levels span the detail it adds."""
    if residual_scale:
        return (batch["clip"] - batch["lowres"]) * residual_scale
    return batch["clip"]


def measure_residual_scale(
    store: FrameStore, cond: np.ndarray, windows: ClipWindows, spec: BatchSpec, target_std: float
) -> float:
    """The scale that gives the high-res minus bilinear-upscaled residual of training clips the
    standard deviation ``target_std`` (0: no residual). Deterministic: evenly spaced clips."""
    if not target_std:
        return 0.0
    valid = windows.train_starts
    starts = valid[np.unique(np.linspace(0, len(valid) - 1, num=32).round().astype(int))]
    batch = make_batch(store, cond, replace(spec, crop=0), windows.rows(starts))
    std = float((batch["clip"] - batch["lowres"]).std())
    return round(target_std / max(std, 1e-3), 4)


def training_loss(
    model: torch.nn.Module,
    diffusion: Diffusion,
    batch: dict[str, torch.Tensor],
    cfg: ModelTrainConfig,
    gen: torch.Generator,
    device: torch.device,
    residual_scale: float = 0.0,
    precision: torch.dtype | None = None,
) -> torch.Tensor:
    """Noise a batch of clips at uniform levels and score the network's prediction (MSE); the forward
    pass runs under autocast to ``precision`` when one is given."""
    clip = diffused_clip(batch, residual_scale)
    b, _, frames = clip.shape[:3]
    t = diffusion.sample_timesteps(b, gen)
    noise = torch.randn(clip.shape, generator=gen)
    keep_labels = torch.rand(b, generator=gen) >= cfg.label_dropout
    given = torch.zeros(b, frames, dtype=torch.bool)
    with_context = torch.rand(b, generator=gen) < cfg.context_prob
    counts = torch.randint(1, frames, (b,), generator=gen)
    independent = batch.get("independent", torch.zeros(b, dtype=torch.bool))
    with_context &= ~independent  # unrelated frames continue nothing
    given[with_context] = torch.arange(frames)[None, :] < counts[with_context, None]
    kwargs: dict[str, Any] = {}
    if isinstance(cfg, UpsamplerConfig):
        level = torch.rand(b, generator=gen) * cfg.noise_aug
        aug_noise = torch.randn(clip.shape, generator=gen)
        level_t = (level * (diffusion.cfg.timesteps - 1)).long()
        kwargs["lowres"] = diffusion.add_noise(batch["lowres"], aug_noise, level_t).to(device)
        kwargs["aug_level"] = level.to(device)
    x_t = diffusion.add_noise(clip, noise, t)
    target = diffusion.target(clip, noise, t).to(device)
    cond = batch["cond"].to(device) if batch["cond"].shape[-1] else None
    with autocast(device, precision):
        out = model(
            x_t.to(device),
            t.to(device),
            cond=cond,
            cond_mask=keep_labels.to(device),
            context=clip.to(device),
            context_mask=given.to(device),
            independent=independent.to(device),
            **kwargs,
        )
    scored = (~given).float()[:, None, :, None, None]  # (B, 1, F, 1, 1): context frames are not scored
    weight = (scored * diffusion.loss_weight(t).view(-1, 1, 1, 1, 1)).to(device)
    return ((out.float() - target) ** 2 * weight).sum() / scored.expand_as(target).sum().clamp(min=1)


def _center_crop(batch: dict[str, torch.Tensor], crop: int) -> dict[str, torch.Tensor]:
    if not crop or crop >= batch["clip"].shape[-1]:
        return batch
    off = (batch["clip"].shape[-1] - crop) // 2
    return {k: v[..., off : off + crop, off : off + crop] if v.ndim == 5 else v for k, v in batch.items()}


@torch.no_grad()
def validation_loss(
    model: UNet3D,
    diffusion: Diffusion,
    store: FrameStore,
    cond: np.ndarray,
    windows: ClipWindows,
    spec: BatchSpec,
    cfg: ModelTrainConfig,
    seed: int,
    device: torch.device,
    residual_scale: float = 0.0,
) -> float:
    """Loss on held-out clips at fixed noise levels with fixed noise: comparable across runs."""
    model.eval()
    batch = _center_crop(
        make_batch(store, cond, spec, windows.rows(windows.val_starts(VAL_CLIPS))), spec.crop
    )
    clip = diffused_clip(batch, residual_scale)
    gen = step_generator(seed, 0, 0, stream=3)
    total = 0.0
    for frac in VAL_LEVELS:
        t = torch.full((clip.shape[0],), round(frac * (diffusion.cfg.timesteps - 1)), dtype=torch.long)
        noise = torch.randn(clip.shape, generator=gen)
        kwargs: dict[str, Any] = {}
        if isinstance(cfg, UpsamplerConfig):
            level = torch.full((clip.shape[0],), cfg.sample_aug)
            level_t = (level * (diffusion.cfg.timesteps - 1)).long()
            kwargs["lowres"] = diffusion.add_noise(
                batch["lowres"], torch.randn(clip.shape, generator=gen), level_t
            )
            kwargs["lowres"] = kwargs["lowres"].to(device)
            kwargs["aug_level"] = level.to(device)
        cond_t = batch["cond"].to(device) if batch["cond"].shape[-1] else None
        out = model(diffusion.add_noise(clip, noise, t).to(device), t.to(device), cond=cond_t, **kwargs)
        total += F.mse_loss(out.float(), diffusion.target(clip, noise, t).to(device)).item()
    model.train()
    return total / len(VAL_LEVELS)


# --------------------------------------------------------------------------------------------------
# Resumable state
# --------------------------------------------------------------------------------------------------


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resume_dir(job: TrainJob) -> Path:
    """``.vdlib/resume/<name>-<hash>``: the hash covers the params and the inputs' contents."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"cfg": asdict(job.cfg), "train": asdict(job.train), "size": job.size}, sort_keys=True
        ).encode()
    )
    h.update(_file_digest(job.frames / "index.parquet").encode())
    h.update(str((job.frames / "frames.npy").stat().st_size).encode())
    h.update(_file_digest(job.labels).encode())
    return job.resume_root / f"{job.name}-{h.hexdigest()[:16]}"


def save_state(
    folder: Path, model: UNet3D, ema: EMA, opt: torch.optim.Optimizer, step: int, history: list
) -> None:
    """Write the resumable state atomically: a kill mid-write leaves the previous state intact."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.cpu().contiguous() for k, v in ema.shadow.items()})
    opt_state = opt.state_dict()
    for idx, state in opt_state["state"].items():
        for key, value in state.items():
            tensors[f"opt.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    meta = {"step": step, "history": history, "param_groups": opt_state["param_groups"]}
    with atomic_output(folder / "state") as tmp:
        tmp.mkdir(parents=True)
        save_file(tensors, tmp / "state.safetensors")
        (tmp / "state.json").write_text(json.dumps(meta))


def load_state(folder: Path, model: UNet3D, ema: EMA, opt: torch.optim.Optimizer) -> tuple[int, list]:
    """Restore what :func:`save_state` wrote; returns (step, metric history)."""
    tensors = load_file(folder / "state" / "state.safetensors")
    meta = json.loads((folder / "state" / "state.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.shadow = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    opt_state: dict[str, Any] = {"state": {}, "param_groups": meta["param_groups"]}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            opt_state["state"].setdefault(int(idx), {})[name] = value
    opt.load_state_dict(opt_state)
    return int(meta["step"]), list(meta["history"])


# --------------------------------------------------------------------------------------------------
# Devices and processes
# --------------------------------------------------------------------------------------------------


def _setup(train: TrainConfig) -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group when started by ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    threads = train.threads or max(1, available_cores() // world)
    device = resolve_device(train.device, "train.device", local if world > 1 else None, threads)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def _weights_checksum(model: UNet3D) -> float:
    return float(sum(p.detach().double().sum().item() * (i + 1) for i, p in enumerate(model.parameters())))


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


@dataclass
class JobData:
    """What a job trains and validates on: the store, its labels, the clip windows, the batch shape."""

    store: FrameStore
    labels: Labels
    windows: ClipWindows
    spec: BatchSpec
    residual_scale: float = 0.0  # upsamplers: see :func:`measure_residual_scale`

    @classmethod
    def open(cls, job: TrainJob) -> JobData:
        """Open and check the job's frame store and labels against its params."""
        cfg = job.cfg
        store = FrameStore.open(job.frames)
        labels = read_labels(job.labels)
        if len(labels) != len(store):
            raise VdlibError(
                f"{job.labels}: {len(labels)} rows for the {len(store)} frames of {job.frames}; re-run labels"
            )
        if job.size > store.size:
            raise VdlibError(
                f"{job.prefix}: size {job.size} is larger than the stored frames ({store.size}); "
                "raise extract.size"
            )
        windows = ClipWindows.for_store(store, cfg.window, cfg.skip, job.train.val_fraction)
        windows.check(str(job.frames), job.prefix)
        spec = BatchSpec(
            size=job.size,
            batch=cfg.batch,
            flip=cfg.flip,
            lowres=job.is_upsampler,
            crop=cfg.crop if isinstance(cfg, UpsamplerConfig) else 0,
            image_prob=cfg.image_prob,
        )
        scale = 0.0
        if isinstance(cfg, UpsamplerConfig):
            scale = measure_residual_scale(store, labels.cond, windows, spec, cfg.residual_std)
        return cls(store, labels, windows, spec, scale)

    def val_loss(self, job: TrainJob, model: UNet3D, device: torch.device) -> float:
        """:func:`validation_loss` of ``model`` on this data's held-out clips."""
        return validation_loss(
            model, Diffusion(job.cfg.diffusion), self.store, self.labels.cond, self.windows, self.spec,
            job.cfg, job.train.seed, device, self.residual_scale,
        )  # fmt: skip


def train_model(job: TrainJob) -> dict[str, float]:
    """Train one model; returns its final metrics. Resumes from ``.vdlib/resume`` when it can."""
    rank, world, device = _setup(job.train)
    cfg, tcfg = job.cfg, job.train
    precision = resolve_precision(tcfg.precision, device, "train.precision")
    data = JobData.open(job)
    labels, windows, spec = data.labels, data.windows, data.spec
    diffusion = Diffusion(cfg.diffusion)
    torch.manual_seed(tcfg.seed)  # the initial weights
    model = UNet3D(unet_config(cfg, labels.dim)).to(device)
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    state_dir = resume_dir(job)
    step, history = 0, []
    if (state_dir / "state" / "state.json").is_file():
        step, history = load_state(state_dir, model, ema, opt)
        if rank == 0:
            print(f"{job.name}: resuming from step {step} ({state_dir})", flush=True)
    net: torch.nn.Module = model
    if tcfg.compile and device.type == "cuda":
        net = torch.compile(net)
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )

    live = None
    if rank == 0:
        from dvclive import Live

        live = Live(dir=str(job.report_dir), dvcyaml=False, save_dvc_exp=False, report=None)
        for entry in history:  # replay what was logged before a kill
            live.step = entry["step"]
            for key, value in entry["metrics"].items():
                live.log_metric(key, value)
        (job.report_dir / "samples").mkdir(parents=True, exist_ok=True)

    loader = DataLoader(
        ClipBatches(job.frames, labels.cond, windows, spec, tcfg.seed, step, cfg.steps, rank),
        batch_size=None,
        num_workers=tcfg.workers,
        persistent_workers=False,
    )
    n_params = sum(p.numel() for p in model.parameters())
    bar = progress(total=cfg.steps, initial=step, desc=f"train {job.name}", unit="step", disable=rank != 0)
    bar.set_postfix_str(f"{n_params / 1e6:.2f}M params, {windows.frames} frames/clip")
    net.train()
    losses: list[float] = []
    tick = time.perf_counter()
    ticked_step = step
    val = float("nan")
    for batch in loader:
        dropout_seed = torch.randint(2**62, (1,), generator=step_generator(tcfg.seed, step, rank, 4))
        torch.manual_seed(int(dropout_seed))
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss = training_loss(
            net, diffusion, batch, cfg, step_generator(tcfg.seed, step, rank, 1), device,
            data.residual_scale, precision,
        )  # fmt: skip
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        ema.update(model, step)
        losses.append(loss.item())
        step += 1
        bar.update(1)
        if step % tcfg.log_every == 0 or step == cfg.steps:
            elapsed = time.perf_counter() - tick
            clips_per_s = (step - ticked_step) * cfg.batch * world / max(elapsed, 1e-9)
            metrics = {
                "train/loss": float(np.mean(losses)),
                "lr": lr_at(step - 1, cfg),
                "clips_per_s": clips_per_s,
            }
            losses.clear()
            tick, ticked_step = time.perf_counter(), step
            if step % tcfg.ckpt_every == 0 or step == cfg.steps:
                val = data.val_loss(job, ema.copy_to(_ema_model(model, device)), device)
                metrics["val/loss"] = val
            postfix = {
                "loss": f"{metrics['train/loss']:.4f}",
                "val": f"{val:.4f}",
                "clips_s": f"{clips_per_s:.1f}",
            }
            bar.set_postfix(postfix, refresh=False)  # redraw on tqdm's own schedule
            if live is not None:
                live.step = step
                for key, value in metrics.items():
                    live.log_metric(key, value)
                history.append({"step": step, "metrics": metrics})
        if rank == 0 and step % tcfg.ckpt_every == 0 and step < cfg.steps:
            save_state(state_dir, model, ema, opt, step, history)
            if live is not None:
                live.make_summary()
        if rank == 0 and tcfg.sample_every and step % tcfg.sample_every == 0 and step < cfg.steps:
            _write_sample(job, data, ema.copy_to(_ema_model(model, device)), diffusion, step, device)
        if world > 1 and step % tcfg.ckpt_every == 0:
            dist.barrier()
    bar.close()

    final = ema.copy_to(_ema_model(model, device))
    if world > 1:
        sums = [None] * world
        dist.all_gather_object(sums, _weights_checksum(final))
        if rank == 0:
            if len(set(sums)) != 1:
                raise RuntimeError(f"DDP ranks ended with different weights: {sums}")
            print(f"{job.name}: {world} ranks, weights identical (checksum {sums[0]:.6f})", flush=True)
    result = {"val_loss": val, "params": float(n_params), "steps": float(step)}
    if rank == 0:
        _write_sample(job, data, final, diffusion, step, device)
        save_model(final, job.model_out, extra=_model_meta(job, data))
        live.log_metric("params", n_params, plot=False)
        live.make_summary()
        live.end()
        shutil.rmtree(state_dir, ignore_errors=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def _ema_model(model: UNet3D, device: torch.device) -> UNet3D:
    """A fresh network of the same config, to hold the EMA weights."""
    return UNet3D(model.cfg).to(device).eval()


def _model_meta(job: TrainJob, data: JobData) -> dict[str, Any]:
    """What rendering needs besides the weights: diffusion settings, clip shape, label names."""
    store, labels, windows = data.store, data.labels, data.windows
    meta: dict[str, Any] = {
        "kind": "upsampler" if job.is_upsampler else "base",
        "size": job.size,
        "diffusion": asdict(job.cfg.diffusion),
        "frames": windows.frames,
        "window": job.cfg.window,
        "skip": job.cfg.skip,
        "val_fraction": job.train.val_fraction,
        "fps": store.fps / (job.cfg.skip + 1),
        "labels": {"kind": labels.kind, "names": labels.names},
    }
    if isinstance(job.cfg, UpsamplerConfig):
        meta["sample_aug"] = job.cfg.sample_aug
        meta["residual_scale"] = data.residual_scale
    return meta


@torch.no_grad()
def _write_sample(
    job: TrainJob, data: JobData, model: UNet3D, diffusion: Diffusion, step: int, device: torch.device
) -> None:
    """A sample clip (labels and low-res input from the first held-out clip) as a GIF."""
    store, windows, spec = data.store, data.windows, data.spec
    batch = make_batch(store, data.labels.cond, spec, windows.rows(windows.val_starts(1)))
    has_labels = batch["cond"].shape[-1] > 0
    kwargs: dict[str, Any] = {}
    if spec.lowres:
        kwargs = {"lowres": batch["lowres"].to(device), "aug_level": torch.zeros(1, device=device)}

    def denoise(x, t, use_labels):
        cond_t = batch["cond"].to(device) if has_labels and use_labels else None
        return model(x, t, cond=cond_t, **kwargs)

    scale = data.residual_scale
    result = sample(
        denoise, tuple(batch["clip"].shape), diffusion, "dpmsolver++", 20, 1.0, has_labels,
        step_generator(job.train.seed, step, 0, 2), device, bound=2.0 * scale if scale else 1.0,
    )  # fmt: skip
    made = result.clip.cpu()
    if scale:
        made = (made / scale + batch["lowres"]).clamp(-1, 1)
    clip = torch.cat([batch["clip"], made], dim=-1)  # real | generated, side by side
    frames = ((clip[0].permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    write_gif(
        frames,
        job.report_dir / "samples" / f"step_{step:06d}.gif",
        fps=max(1.0, store.fps / (job.cfg.skip + 1)),
    )


def train_job_from_params(
    kind: str,
    frames: str | Path,
    labels: str | Path,
    model_out: str | Path,
    report_dir: str | Path,
    size: str | int | None = None,
    params_file: str | Path = "params.yaml",
) -> TrainJob:
    """The :class:`TrainJob` for ``base`` or ``upsampler`` (with its output ``size``) from params.yaml."""
    from vdlib.config import load_section

    paths = {
        "frames": Path(frames),
        "labels": Path(labels),
        "model_out": Path(model_out),
        "report_dir": Path(report_dir),
    }
    train = load_section("train", params_file)
    if kind == "base":
        cfg = load_section("base", params_file)
        return TrainJob("base", cfg, train, cfg.size, **paths)
    if kind != "upsampler":
        raise VdlibError(f"train: expected 'base' or 'upsampler', got {kind!r}")
    try:
        out_size = int(size) if size is not None else 0
    except ValueError:
        out_size = 0
    if out_size < 16 or out_size % 2:
        raise VdlibError(f"train upsampler: size: expected an even output size like 64 or 128, got {size!r}")
    return TrainJob(f"upsampler_{out_size}", load_section("upsampler", params_file), train, out_size, **paths)
