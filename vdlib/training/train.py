"""The training loop for the base model and the upsamplers: AdamW with warm-up, gradient clipping,
EMA weights, DDP under ``torchrun``, DVCLive logs, atomic resumable checkpoints.

Every random draw of a step (its clips, noise levels, noise, label dropout, context frames, dropout
masks) comes from the named streams of :mod:`vdlib.core.randomness`, seeded by (seed, step, rank), so a
run killed and resumed from its last checkpoint ends with exactly the weights of an uninterrupted
run.

The resumable state (weights, EMA, optimizer, step, metric history) lives outside DVC's outputs in
``.vdlib/resume/<name>-<hash of params and inputs>/`` and is removed when training completes; the
stage's outputs are the EMA weights in ``models/<name>/`` and the logs in ``reports/<stage>/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from vdlib.config import AutoencoderParams, ModelTrainConfig, TrainConfig
from vdlib.core.common import VdlibError, atomic_output, progress, write_json, write_not_trained
from vdlib.core.cores import share_cores
from vdlib.core.randomness import Stream, device_generator, step_generator
from vdlib.data.frames import ClipWindows, FrameStore, evenly_spaced
from vdlib.data.video import write_gif
from vdlib.device import autocast, ddp_backend, out_of_memory_hint, resolve_device, resolve_precision
from vdlib.generation.cascade import CascadeModel, run_model
from vdlib.labels import Labels, read_labels
from vdlib.models.autoencoder import WEIGHTS_FILE as AUTOENCODER_WEIGHTS
from vdlib.models.autoencoder import FrameAutoencoder, load_autoencoder
from vdlib.models.card import ModelCard, save_model
from vdlib.models.diffusion import Diffusion
from vdlib.models.lowres import Residual, lowres_inputs
from vdlib.models.schedule import SamplingConfig
from vdlib.models.unet import UNet3D, UNetConfig
from vdlib.models.upscale import Upscale, half, resize_clip, to_model_range, to_uint8
from vdlib.training.clips import BatchSpec, ClipBatches, ModelFrames, make_batch
from vdlib.training.kinds import ModelKind, kind_of

RESUME_ROOT = Path(".vdlib/resume")
VAL_CLIPS = 8
VAL_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)  # fractions of T: fixed noise levels for validation
# Training samples go through the render path with these settings (one window, no context).
SAMPLE_SETTINGS = SamplingConfig(sampler="dpmsolver++", steps=20, guidance=1.0, context=0)


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
    autoencoder_dir: Path | None = None  # base model: the train_autoencoder stage's folder

    @cached_property
    def autoencoder(self) -> FrameAutoencoder | None:
        """The autoencoder whose latents a base model diffuses; None: it diffuses pixels."""
        return load_autoencoder(self.autoencoder_dir) if self.autoencoder_dir is not None else None

    @property
    def kind(self) -> ModelKind:
        """What this model trains differently from the other kind."""
        return kind_of(self.cfg, self.size, self.autoencoder)

    @property
    def prefix(self) -> str:
        """The params.yaml section, for error messages."""
        return self.kind.section


# --------------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------------


def lr_at(step: int, cfg: ModelTrainConfig | AutoencoderParams) -> float:
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
        shadows, values = [], []
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                shadows.append(self.shadow[k])
                values.append(v.detach().float())
            else:
                self.shadow[k].copy_(v)
        torch._foreach_mul_(shadows, d)  # one kernel launch per op for all tensors, not one per tensor
        torch._foreach_add_(shadows, values, alpha=1 - d)

    def model(self, like: UNet3D, device: torch.device) -> UNet3D:
        """A fresh network of ``like``'s config holding the averaged weights, in eval mode."""
        model = UNet3D(like.cfg).to(device).eval()
        model.load_state_dict(self.shadow)
        return model


# --------------------------------------------------------------------------------------------------
# Data and losses
# --------------------------------------------------------------------------------------------------


def _center_crop(batch: dict[str, torch.Tensor], crop: int) -> dict[str, torch.Tensor]:
    height, width = batch["clip"].shape[-2:]
    if not crop or crop >= max(height, width):
        return batch
    top, left = (height - min(crop, height)) // 2, (width - min(crop, width)) // 2
    return {k: v[..., top : top + crop, left : left + crop] if v.ndim == 5 else v for k, v in batch.items()}


def training_loss(
    model: torch.nn.Module,
    diffusion: Diffusion,
    batch: dict[str, torch.Tensor],
    cfg: ModelTrainConfig,
    gen: torch.Generator,
    device: torch.device,
    residual: Residual | None = None,
    precision: torch.dtype | None = None,
) -> torch.Tensor:
    """Noise a batch of clips at uniform levels and score the network's prediction (MSE); the forward
    pass runs under autocast to ``precision`` when one is given. Every draw comes from ``gen``."""
    upscaled = batch.get("lowres")
    clip = (residual or Residual()).target(batch["clip"], upscaled)
    b, _, frames = clip.shape[:3]
    t = diffusion.sample_timesteps(b, gen)
    independent = batch.get("independent", torch.zeros(b, dtype=torch.bool))
    noise = diffusion.noise(clip.shape, gen, independent)
    keep_labels = torch.rand(b, generator=gen) >= cfg.label_dropout
    given = torch.zeros(b, frames, dtype=torch.bool)
    with_context = torch.rand(b, generator=gen) < cfg.context_prob
    counts = torch.randint(1, frames, (b,), generator=gen)
    with_context &= ~independent  # unrelated frames continue nothing
    given[with_context] = torch.arange(frames)[None, :] < counts[with_context, None]
    inputs: dict[str, torch.Tensor] = {}
    noise_aug = kind_of(cfg, 0).noise_aug
    if noise_aug is not None:
        inputs = lowres_inputs(diffusion, upscaled, torch.rand(b, generator=gen) * noise_aug, gen)
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
            **{k: v.to(device) for k, v in inputs.items()},
        )
    scored = (~given).float()[:, None, :, None, None]  # (B, 1, F, 1, 1): context frames are not scored
    weight = (scored * diffusion.loss_weight(t).view(-1, 1, 1, 1, 1)).to(device)
    return ((out.float() - target) ** 2 * weight).sum() / scored.expand_as(target).sum().clamp(min=1)


@dataclass
class ValidationSet:
    """Held-out clips, noised at fixed levels with fixed noise: a loss comparable across steps, runs
    and the evaluate stage."""

    batch: dict[str, torch.Tensor]
    diffusion: Diffusion
    residual: Residual
    sample_aug: float | None  # upsamplers: the augmentation level of their low-res input
    seed: int

    @torch.no_grad()
    def loss(self, model: UNet3D, device: torch.device, labels: bool = True) -> float:
        """Mean MSE of ``model``'s predictions over :data:`VAL_LEVELS`; with ``labels`` False, every
        label dropped (the learned null embedding, as in label dropout)."""
        was_training = model.training
        model.eval()
        upscaled = self.batch.get("lowres")
        clip = self.residual.target(self.batch["clip"], upscaled)
        n, timesteps = clip.shape[0], self.diffusion.cfg.timesteps
        cond = self.batch["cond"].to(device) if labels and self.batch["cond"].shape[-1] else None
        gen = step_generator(self.seed, 0, 0, Stream.VALIDATION)
        total = 0.0
        for frac in VAL_LEVELS:
            t = torch.full((n,), round(frac * (timesteps - 1)), dtype=torch.long)
            noise = self.diffusion.noise(clip.shape, gen)
            inputs: dict[str, torch.Tensor] = {}
            if self.sample_aug is not None:
                inputs = lowres_inputs(self.diffusion, upscaled, torch.full((n,), self.sample_aug), gen)
            x_t = self.diffusion.add_noise(clip, noise, t)
            out = model(
                x_t.to(device), t.to(device), cond=cond, **{k: v.to(device) for k, v in inputs.items()}
            )
            total += F.mse_loss(out.float(), self.diffusion.target(clip, noise, t).to(device)).item()
        model.train(was_training)
        return total / len(VAL_LEVELS)

    def label_gain(self, model: UNet3D, device: torch.device, loss: float | None = None) -> float | None:
        """The share of the held-out loss the labels take away: 1 - loss / loss with every label
        dropped (``loss``: the labelled loss, when already known). Near 0, the model ignores its labels,
        however well it denoises. None for a model trained without labels."""
        if not model.cfg.cond_dim:
            return None
        loss = self.loss(model, device) if loss is None else loss
        dropped = self.loss(model, device, labels=False)
        return 1.0 - loss / dropped if dropped > 0 else 0.0


def _open_inputs(frames: Path, labels_path: Path) -> tuple[FrameStore, Labels]:
    store = FrameStore.open(frames)
    labels = read_labels(labels_path)
    if len(labels) != len(store):
        raise VdlibError(
            f"{labels_path}: {len(labels)} rows for the {len(store)} frames of {frames}; re-run labels"
        )
    return store, labels


@dataclass
class JobData:
    """What a model trains and validates on: the store, its labels, the clip windows, the batch shape."""

    store: FrameStore
    labels: Labels
    windows: ClipWindows
    spec: BatchSpec
    residual: Residual = field(default_factory=Residual)  # upsamplers: ModelKind.residual

    @classmethod
    def open(cls, job: TrainJob) -> JobData:
        """Open and check the job's frame store and labels against its params."""
        cfg = job.cfg
        store, labels = _open_inputs(job.frames, job.labels)
        if job.size > store.size:
            raise VdlibError(
                f"{job.prefix}: size {job.size} is larger than the stored frames ({store.size}); "
                "raise extract.resolution"
            )
        shape = store.shape_at(job.size, job.name)
        factor = job.autoencoder.cfg.factor if job.autoencoder is not None else 1
        step = cfg.model.size_multiple * factor
        if shape[0] % step or shape[1] % step:
            latents = (
                f", {factor} times the network's ({cfg.model.size_multiple}) for latents"
                if factor > 1
                else ""
            )
            raise VdlibError(
                f"{job.prefix}.model.mults: {job.name} frames of {shape[0]}x{shape[1]} (height x width, at "
                f"the stored frames' aspect) must be multiples of {step} (2 ^ levels-1{latents}); use fewer "
                "levels, or a size that is a multiple of 8 times that"
            )
        windows = ClipWindows.for_store(store, cfg.window, cfg.skip, job.train.val_fraction)
        windows.check(str(job.frames), job.prefix)
        kind = job.kind
        spec = kind.batch_spec(shape, labels.kind, kind.upscale(store, windows, shape))
        residual = kind.residual(store, labels.cond, windows, spec)
        return cls(store, labels, windows, spec, residual)

    @classmethod
    def for_model(cls, frames: Path, labels_path: Path, model: CascadeModel) -> JobData:
        """The data a trained model saw, split as its training split it (from its ``config.json``)."""
        store, labels = _open_inputs(frames, labels_path)
        windows = model.windows(store)
        windows.check(str(frames), str(model.folder))
        if store.shape_at(model.size) != model.shape:
            raise VdlibError(
                f"{model.folder}: trained on {model.shape[0]}x{model.shape[1]} frames, but {frames} holds "
                f"frames of another aspect ({store.shape[0]}x{store.shape[1]}); retrain it on these frames"
            )
        lowres, crop = model.card.unet.lowres, model.card.crop
        spec = BatchSpec(model.shape, VAL_CLIPS, False, lowres=lowres, crop=crop, upscale=model.upscale,
                         autoencoder=model.autoencoder)  # fmt: skip
        return cls(store, labels, windows, spec, model.residual)

    def validation(
        self, diffusion: Diffusion, sample_aug: float | None, seed: int, held_out: bool = True
    ) -> ValidationSet:
        """The :class:`ValidationSet` of this data's held-out clips (centre crops when training crops);
        with ``held_out`` False, of as many evenly spaced training clips, scored the same way (a
        held-out loss far above it says the model memorises its training clips)."""
        starts = self.windows.val_starts(VAL_CLIPS)
        if not held_out:
            starts = evenly_spaced(self.windows.train_starts, VAL_CLIPS)
        rows = self.windows.rows(starts)
        batch = make_batch(ModelFrames(self.store, self.spec), self.labels.cond, rows)
        batch = _center_crop(batch, self.spec.crop)
        return ValidationSet(batch, diffusion, self.residual, sample_aug, seed)


# --------------------------------------------------------------------------------------------------
# Resumable state
# --------------------------------------------------------------------------------------------------


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes."""
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
    h.update(file_digest(job.frames / "index.parquet").encode())
    h.update(str((job.frames / "frames.npy").stat().st_size).encode())
    h.update(file_digest(job.labels).encode())
    if job.autoencoder is not None:  # latents of another autoencoder are other training data
        h.update(file_digest(job.autoencoder_dir / AUTOENCODER_WEIGHTS).encode())
    return job.resume_root / f"{job.name}-{h.hexdigest()[:16]}"


def save_state(
    folder: Path,
    model: torch.nn.Module,
    ema: EMA | None,
    opt: torch.optim.Optimizer,
    step: int,
    history: list,
) -> None:
    """Write the resumable state atomically: a kill mid-write leaves the previous state intact."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
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


def load_state(
    folder: Path, model: torch.nn.Module, ema: EMA | None, opt: torch.optim.Optimizer
) -> tuple[int, list]:
    """Restore what :func:`save_state` wrote; returns (step, metric history)."""
    tensors = load_file(folder / "state" / "state.safetensors")
    meta = json.loads((folder / "state" / "state.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
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
    device = resolve_device(train.device, "train.device", local if world > 1 else None, train.threads)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(ddp_backend(device.type))
    return rank, world, device


def _weights_checksum(model: UNet3D) -> float:
    return float(sum(p.detach().double().sum().item() * (i + 1) for i, p in enumerate(model.parameters())))


def _check_ranks_agree(model: UNet3D, name: str, rank: int, world: int) -> None:
    """Every DDP rank must end with the same weights."""
    sums = [None] * world
    dist.all_gather_object(sums, _weights_checksum(model))
    if rank == 0:
        if len(set(sums)) != 1:
            raise RuntimeError(f"DDP ranks ended with different weights: {sums}")
        print(f"{name}: {world} ranks, weights identical (checksum {sums[0]:.6f})", flush=True)


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


@dataclass
class Trainee:
    """The network being trained with its EMA and optimiser, and one training step of them: the same
    in a training run and in ``vdlib init``'s speed probe."""

    cfg: ModelTrainConfig
    model: UNet3D  # the weights being trained
    ema: EMA
    opt: torch.optim.Optimizer
    diffusion: Diffusion
    residual: Residual
    device: torch.device
    precision: torch.dtype | None
    net: torch.nn.Module | None = None  # the model as it runs: compiled and/or wrapped in DDP

    def __post_init__(self) -> None:
        self.net = self.net or self.model

    @classmethod
    def new(
        cls, cfg: ModelTrainConfig, unet: UNetConfig, residual: Residual, device: torch.device,
        precision: torch.dtype | None,
    ) -> Trainee:  # fmt: skip
        """A fresh network (its initial weights: the one draw from torch's global generator, seeded
        by the caller), its EMA and its AdamW."""
        model = UNet3D(unet).to(device)
        opt = torch.optim.AdamW(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99), foreach=True
        )
        return cls(cfg, model, EMA(model, cfg.ema_decay), opt, Diffusion(cfg.diffusion), residual, device,
                   precision)  # fmt: skip

    def step(self, batch: dict[str, torch.Tensor], seed: int, step: int, rank: int) -> float:
        """Optimiser step ``step`` on ``batch`` (its draws from (seed, step, rank)); returns its loss."""
        cfg = self.cfg
        for group in self.opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        dropout = (
            device_generator(seed, step, rank, Stream.DROPOUT, self.device) if cfg.model.dropout else None
        )
        noise = step_generator(seed, step, rank, Stream.NOISE)
        with self.model.dropout_generator(dropout):
            loss = training_loss(
                self.net, self.diffusion, batch, cfg, noise, self.device, self.residual, self.precision
            )
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip, foreach=True)
        self.opt.step()
        self.ema.update(self.model, step)
        return loss.item()


def random_training(
    cfg: ModelTrainConfig, shape: tuple[int, int], cond_dim: int, label_kind: str, device: torch.device,
    precision: torch.dtype | None, channels: int = 3,
) -> tuple[Trainee, dict[str, torch.Tensor]]:  # fmt: skip
    """A fresh network of ``cfg``'s kind making frames of ``shape`` with ``channels`` channels (a latent
    base model: its latents' shape and channels), and one batch of random clips as its training
    batches are shaped (crops, low-res input): what ``vdlib init``'s speed probe and the GPU benchmark
    time ``Trainee.step`` on."""
    torch.manual_seed(0)
    kind = kind_of(cfg, min(shape))
    spec = kind.batch_spec(shape, label_kind, Upscale())
    unet = dataclasses.replace(kind.unet_config(cond_dim, label_kind), image_channels=channels)
    trainee = Trainee.new(cfg, unet, Residual(), device, precision)
    if spec.crop:
        shape = (min(spec.crop, shape[0]), min(spec.crop, shape[1]))
    clip = (
        torch.rand(cfg.batch, channels, cfg.frames, *shape, generator=torch.Generator().manual_seed(0)) * 2
        - 1
    )
    batch = {"clip": clip, "cond": torch.zeros(cfg.batch, cfg.frames, cond_dim)}
    if spec.lowres:
        batch["lowres"] = clip.clone()
    return trainee, batch


@dataclass
class Run:
    """One rank's training run: the job, its data, the network being trained, and where it stands."""

    job: TrainJob
    rank: int
    world: int
    data: JobData
    trainee: Trainee
    validation: ValidationSet
    state_dir: Path
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # logged metrics, replayed on resume

    @property
    def device(self) -> torch.device:
        return self.trainee.device

    @property
    def last_step(self) -> int:
        return self.job.cfg.steps

    @property
    def param_count(self) -> int:
        """Trainable parameters of the network."""
        return sum(p.numel() for p in self.trainee.model.parameters())

    def ema_model(self) -> UNet3D:
        return self.trainee.ema.model(self.trainee.model, self.device)

    def batches(self) -> DataLoader:
        """The remaining steps' batches, each a pure function of (seed, step, rank)."""
        job = self.job
        dataset = ClipBatches(
            job.frames, self.data.labels.cond, self.data.windows, self.data.spec, job.train.seed,
            self.step, self.last_step, self.rank,
        )  # fmt: skip
        return DataLoader(dataset, batch_size=None, num_workers=job.train.workers, persistent_workers=False)


def start_run(job: TrainJob) -> Run:
    """Set up one rank: data, network, EMA, optimiser; restore the resumable state if there is one."""
    rank, world, device = _setup(job.train)
    data = JobData.open(job)
    torch.manual_seed(job.train.seed)  # the initial weights: the one draw from torch's global generator
    precision = resolve_precision(job.train.precision, device, "train.precision")
    unet = job.kind.unet_config(data.labels.dim, data.labels.kind)
    trainee = Trainee.new(job.cfg, unet, data.residual, device, precision)
    validation = data.validation(trainee.diffusion, job.kind.sample_aug, job.train.seed)
    run = Run(job, rank, world, data, trainee, validation, resume_dir(job))
    if (run.state_dir / "state" / "state.json").is_file():
        run.step, run.history = load_state(run.state_dir, trainee.model, trainee.ema, trainee.opt)
        if rank == 0:
            print(f"{job.name}: resuming from step {run.step} ({run.state_dir})", flush=True)
    if job.train.compile and device.type == "cuda":
        trainee.net = torch.compile(trainee.net)
    if world > 1:
        trainee.net = torch.nn.parallel.DistributedDataParallel(
            trainee.net, device_ids=[device.index] if device.type == "cuda" else None
        )
    return run


def train_step(run: Run, batch: dict[str, torch.Tensor]) -> float:
    """The run's next optimiser step on ``batch``; returns its loss."""
    loss = run.trainee.step(batch, run.job.train.seed, run.step, run.rank)
    run.step += 1
    return loss


class TrainLog:
    """Rank 0's DVCLive log of one run, with the metrics logged before a kill replayed."""

    def __init__(self, run: Run) -> None:
        from dvclive import Live

        self.run = run
        self.live = Live(dir=str(run.job.report_dir), dvcyaml=False, save_dvc_exp=False, report=None)
        for entry in run.history:
            self._log(entry["step"], entry["metrics"])
        (run.job.report_dir / "samples").mkdir(parents=True, exist_ok=True)
        self._losses: list[float] = []
        self._tick, self._ticked_step = time.perf_counter(), run.step

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        self.live.step = step
        for key, value in metrics.items():
            self.live.log_metric(key, value)

    def add(self, loss: float) -> None:
        self._losses.append(loss)

    def metrics(self) -> dict[str, float]:
        """Mean training loss, learning rate and speed since the last call; starts a new interval."""
        run, now = self.run, time.perf_counter()
        clips = (run.step - self._ticked_step) * run.job.cfg.batch * run.world
        metrics = {
            "train/loss": float(np.mean(self._losses)),
            "lr": lr_at(run.step - 1, run.job.cfg),
            "clips_per_s": clips / max(now - self._tick, 1e-9),
        }
        self._losses.clear()
        self._tick, self._ticked_step = now, run.step
        return metrics

    def log(self, metrics: dict[str, float]) -> None:
        """Log ``metrics`` at the run's step and keep them for a resume."""
        self._log(self.run.step, metrics)
        self.run.history.append({"step": self.run.step, "metrics": metrics})

    def end(self) -> None:
        self.live.log_metric("params", self.run.param_count, plot=False)
        self.live.make_summary()
        self.live.end()


def _between_steps(run: Run, log: TrainLog | None) -> None:
    """Resumable state and sample GIFs on schedule (rank 0), and the ranks' checkpoint barrier."""
    step, tcfg = run.step, run.job.train
    if log is not None and step < run.last_step:
        if step % tcfg.ckpt_every == 0:
            save_state(run.state_dir, run.trainee.model, run.trainee.ema, run.trainee.opt, step, run.history)
            log.live.make_summary()
        if tcfg.sample_every and step % tcfg.sample_every == 0:
            write_sample(run.job, run.data, run.ema_model(), step, run.device)
    if run.device.type == "cpu":
        # Workers that started or finished change this one's share; and a sample, made as rendering
        # makes videos, may have set rendering's thread count: the next step runs on training's.
        share_cores(tcfg.threads)
    if run.world > 1 and step % tcfg.ckpt_every == 0:
        dist.barrier()


def finish_run(run: Run, log: TrainLog | None, val_loss: float) -> dict[str, float]:
    """Check the ranks agree, write the model (EMA weights), the last sample and the logs, and remove
    the resumable state; returns the final metrics."""
    final = run.ema_model()
    if run.world > 1:
        _check_ranks_agree(final, run.job.name, run.rank, run.world)
    if log is not None:
        write_sample(run.job, run.data, final, run.step, run.device)
        save_model(
            final, model_card(run.job, run.data, final.cfg), run.job.model_out, run.data.spec.autoencoder
        )
        log.end()
        shutil.rmtree(run.state_dir, ignore_errors=True)
    if run.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return {"val_loss": val_loss, "params": float(run.param_count), "steps": float(run.step)}


def write_no_training(model_out: Path, report_dir: Path, reason: str, *image_dirs: str) -> dict[str, float]:
    """What a training stage writes when it trains nothing (``reason``): a model folder saying so,
    metrics of 0 steps and the plots dvc.yaml declares, empty (a loss table of no steps)."""
    write_not_trained(model_out, reason)
    loss = report_dir / "plots" / "metrics" / "train" / "loss.tsv"
    loss.parent.mkdir(parents=True, exist_ok=True)
    loss.write_text("step\tloss\n")
    for folder in image_dirs:
        (report_dir / folder).mkdir(parents=True, exist_ok=True)
    write_json({"steps": 0}, report_dir / "metrics.json")
    return {"steps": 0.0}


def train_model(job: TrainJob) -> dict[str, float]:
    """Train one model; returns its final metrics. Resumes from ``.vdlib/resume`` when it can. A GPU
    that runs out of memory stops it with one line naming the params to lower."""
    if not job.cfg.steps:  # upsampler.steps: 0 (a base model that already makes the frames)
        return write_no_training(job.model_out, job.report_dir, f"{job.prefix}.steps is 0", "samples")
    kept = "the last checkpoint is kept, and a re-run with the same params resumes from it"
    with out_of_memory_hint(f"train {job.name}", job.kind.memory_hint, kept):
        return _train(job)


def _train(job: TrainJob) -> dict[str, float]:
    run = start_run(job)
    log = TrainLog(run) if run.rank == 0 else None
    tcfg, val = job.train, float("nan")
    bar = progress(
        total=run.last_step, initial=run.step, desc=f"train {job.name}", unit="step", disable=run.rank != 0
    )
    bar.set_postfix_str(f"{run.param_count / 1e6:.2f}M params, {run.data.windows.frames} frames/clip")
    run.trainee.net.train()
    for batch in run.batches():
        loss = train_step(run, batch)
        bar.update(1)
        if log is not None:
            log.add(loss)
        last = run.step == run.last_step
        validate = run.step % tcfg.val_every == 0 or last
        if log is not None and (run.step % tcfg.log_every == 0 or validate):
            metrics = log.metrics()
            if validate:
                ema = run.ema_model()
                val = metrics["val/loss"] = run.validation.loss(ema, run.device)
                gain = run.validation.label_gain(ema, run.device, val)
                if gain is not None:
                    metrics["val/label_gain"] = gain
            log.log(metrics)
            postfix = {
                "loss": f"{metrics['train/loss']:.4f}",
                "val": f"{val:.4f}",
                "clips_s": f"{metrics['clips_per_s']:.1f}",
            }
            bar.set_postfix(postfix, refresh=False)  # redraw on tqdm's own schedule
        _between_steps(run, log)
    bar.close()
    return finish_run(run, log, val)


# --------------------------------------------------------------------------------------------------
# What the model folder records, and training samples
# --------------------------------------------------------------------------------------------------


def model_card(job: TrainJob, data: JobData, unet: UNetConfig) -> ModelCard:
    """What rendering and evaluation need besides the weights: the network, diffusion settings, clip
    shape and split, label names, low-res settings."""
    store, labels, windows, cfg = data.store, data.labels, data.windows, job.cfg
    return ModelCard(
        unet=unet,
        kind=job.kind.section,
        size=job.size,
        diffusion=cfg.diffusion,
        frames=windows.frames,
        window=cfg.window,
        skip=cfg.skip,
        val_fraction=job.train.val_fraction,
        seed=job.train.seed,
        fps=store.fps / (cfg.skip + 1),
        shape=data.spec.shape,
        crop=data.spec.crop,
        label_kind=labels.kind,
        label_names=tuple(labels.names),
        autoencoder=data.spec.autoencoder.cfg if data.spec.autoencoder is not None else None,
        **job.kind.card_fields(data.residual, data.spec.upscale),
    )


def sample_clip(
    job: TrainJob, data: JobData, model: UNet3D, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first held-out clip (1, 3, X, H, W) and ``model``'s version of it, made as rendering makes
    videos (:func:`vdlib.generation.cascade.run_model`) from its labels and, for an upsampler, its low-res
    frames (the stored frames brought down to half the size)."""
    row = data.windows.rows(data.windows.val_starts(1))[0]
    stored = to_model_range(data.store.frames[row])[None]
    real = resize_clip(stored, data.spec.shape)
    lowres = resize_clip(stored, half(data.spec.shape)) if data.spec.lowres else None
    cond = data.labels.cond[row][None] if data.labels.dim else None
    as_rendered = CascadeModel(job.model_out, model, model_card(job, data, model.cfg), SAMPLE_SETTINGS,
                               "training samples", data.spec.autoencoder)  # fmt: skip
    made = run_model(as_rendered, 0, cond, len(row), [job.train.seed], device, lowres)
    return real, made.clip


def write_sample(job: TrainJob, data: JobData, model: UNet3D, step: int, device: torch.device) -> Path:
    """The :func:`sample_clip` of ``step`` as a GIF, real and generated side by side."""
    real, made = sample_clip(job, data, model, device)
    path = job.report_dir / "samples" / f"step_{step:06d}.gif"
    return write_gif(
        to_uint8(torch.cat([real, made], dim=-1)), path, fps=max(1.0, data.store.fps / (job.cfg.skip + 1))
    )


def train_job_from_params(
    kind: str,
    frames: str | Path,
    labels: str | Path,
    model_out: str | Path,
    report_dir: str | Path,
    size: str | int | None = None,
    params_file: str | Path = "params.yaml",
    autoencoder: str | Path | None = None,
) -> TrainJob:
    """The :class:`TrainJob` for ``base`` (diffusing the latents of the ``autoencoder`` folder's model,
    when it holds one) or ``upsampler`` (with its output ``size``) from params.yaml."""
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
        coder = Path(autoencoder) if autoencoder is not None else None
        return TrainJob("base", cfg, train, cfg.resolution, **paths, autoencoder_dir=coder)
    if kind != "upsampler":
        raise VdlibError(f"train: expected 'base' or 'upsampler', got {kind!r}")
    try:
        out_size = int(size) if size is not None else 0
    except ValueError:
        out_size = 0
    if out_size < 16 or out_size % 2:
        raise VdlibError(f"train upsampler: size: expected an even output size like 64 or 128, got {size!r}")
    cfg = load_section("upsampler", params_file).for_size(out_size)
    return TrainJob(f"upsampler_{out_size}", cfg, train, out_size, **paths)
