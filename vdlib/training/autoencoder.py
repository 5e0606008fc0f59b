"""Training the autoencoder (stage train_autoencoder) on a project's stored frames, at the size the
base model makes: random crops of training frames (never the base model's held-out tails), AdamW with
warm-up and cosine decay, every draw from the (seed, step) stream of :mod:`vdlib.core.randomness`, so
a run killed and resumed from its last checkpoint ends with the weights of an uninterrupted one. Then
its latents' per-channel normalisation, measured on training frames, and the held-out scores its
caller measures (the stage: :func:`vdlib.evaluation.evaluate.autoencoder_fidelity`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from vdlib.config import AutoencoderParams, BaseConfig, TrainConfig
from vdlib.core.common import progress
from vdlib.core.randomness import Stream, step_generator
from vdlib.data.frames import ClipWindows, FrameStore, evenly_spaced
from vdlib.device import autocast, resolve_device, resolve_precision
from vdlib.models.autoencoder import (
    AutoencoderConfig,
    FrameAutoencoder,
    reconstruction_loss,
    save_autoencoder,
)
from vdlib.models.upscale import Shape, resize_clip, to_model_range
from vdlib.training.train import RESUME_ROOT, file_digest, load_state, lr_at, save_state, write_no_training

# What the caller measures of the trained model: (model, store, held-out frames, frame shape) → scores.
Scores = Callable[[FrameAutoencoder, FrameStore, np.ndarray, Shape], dict[str, float]]
NORMALISATION_FRAMES = 256  # evenly spaced training frames its latents' mean and spread come from


@dataclass(frozen=True)
class AutoencoderJob:
    """The autoencoder to train, from which frames, to where."""

    params: AutoencoderParams
    base: BaseConfig  # its frames' size and the held-out split are the base model's
    train: TrainConfig
    frames: Path
    model_out: Path
    report_dir: Path
    resume_root: Path = RESUME_ROOT


def frames_at(store: FrameStore, rows: np.ndarray, shape: Shape) -> torch.Tensor:
    """The stored frames ``rows`` as the base model reads them: (N, 3, H, W) of ``shape`` in [-1, 1]."""
    return resize_clip(to_model_range(store.frames[rows]), shape).transpose(0, 1)


def training_crops(
    store: FrameStore, train_rows: np.ndarray, shape: Shape, params: AutoencoderParams, gen: torch.Generator
) -> torch.Tensor:
    """One step's batch: random training frames at ``shape``, each a random crop (on the latent grid)
    flipped left-right half the time, every draw from ``gen``."""
    rows = train_rows[torch.randint(0, len(train_rows), (params.batch,), generator=gen).numpy()]
    height, width = shape
    crop_h, crop_w = (min(params.crop, height), min(params.crop, width)) if params.crop else shape
    factor = params.factor
    tops = torch.randint(0, (height - crop_h) // factor + 1, (params.batch,), generator=gen) * factor
    lefts = torch.randint(0, (width - crop_w) // factor + 1, (params.batch,), generator=gen) * factor
    flips = torch.rand(params.batch, generator=gen) < 0.5
    boxes = list(zip(rows.tolist(), tops.tolist(), lefts.tolist(), strict=True))
    if tuple(store.shape) == tuple(shape):  # frames at their stored size: convert the crops alone
        crops = np.stack([store.frames[r, t : t + crop_h, left : left + crop_w] for r, t, left in boxes])
        batch = to_model_range(crops).transpose(0, 1)
    else:
        frames = frames_at(store, rows, shape)
        batch = torch.stack(
            [
                f[:, t : t + crop_h, left : left + crop_w]
                for f, (_, t, left) in zip(frames, boxes, strict=True)
            ]
        )
    return torch.where(flips[:, None, None, None], batch.flip(-1), batch)


@torch.no_grad()
def encode_store(
    model: FrameAutoencoder, store: FrameStore, rows: np.ndarray, shape: Shape, chunk: int = 32
) -> torch.Tensor:
    """Normalised latents (len(rows), C, h, w) of the stored frames ``rows`` at ``shape``."""
    device = next(model.parameters()).device
    parts = [
        model.encode(frames_at(store, rows[i : i + chunk], shape).to(device)).float().cpu()
        for i in range(0, len(rows), chunk)
    ]
    return torch.cat(parts)


def optimiser_step(
    model: FrameAutoencoder, opt: torch.optim.Optimizer, batch: torch.Tensor, device: torch.device,
    precision: torch.dtype | None,
) -> float:  # fmt: skip
    """One training step on ``batch`` (N, 3, h, w) (the learning rate already set); returns its loss."""
    with autocast(device, precision):
        loss = reconstruction_loss(model, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
    opt.step()
    return loss.item()


def new_training(
    params: AutoencoderParams, device: torch.device
) -> tuple[FrameAutoencoder, torch.optim.Optimizer]:
    """A fresh autoencoder of ``params`` (its weights: the caller's seeded global generator) and its AdamW."""
    model = FrameAutoencoder(AutoencoderConfig(params.channels, params.latent_channels, params.downsamplings))
    model = model.to(device)
    return model, torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=0.0, foreach=True)


def resume_dir(job: AutoencoderJob) -> Path:
    """``.vdlib/resume/autoencoder-<hash>``: the hash covers the params and the frames."""
    h = hashlib.sha256()
    keys = {"params": asdict(job.params), "base": [job.base.resolution, job.base.window, job.base.skip],
            "train": asdict(job.train)}  # fmt: skip
    h.update(json.dumps(keys, sort_keys=True).encode())
    h.update(file_digest(job.frames / "index.parquet").encode())
    h.update(str((job.frames / "frames.npy").stat().st_size).encode())
    return job.resume_root / f"autoencoder-{h.hexdigest()[:16]}"


def train_autoencoder(job: AutoencoderJob, score: Scores | None = None) -> dict[str, float]:
    """Train the autoencoder, or with ``autoencoder.steps: 0`` write the folder that says there is
    none; returns the final metrics (also in ``report_dir/metrics.json``): the steps and what
    ``score`` (model, store, held-out frames, frame shape) says of the trained model."""
    from dvclive import Live

    params, train = job.params, job.train
    if not params.enabled:
        reason = "autoencoder.steps is 0: the base model diffuses pixels"
        return write_no_training(job.model_out, job.report_dir, reason)
    device = resolve_device(train.device, "train.device", None, train.threads)
    precision = resolve_precision(train.precision, device, "train.precision")
    store = FrameStore.open(job.frames)
    shape = store.shape_at(job.base.resolution, "autoencoder")
    windows = ClipWindows.for_store(store, job.base.window, job.base.skip, train.val_fraction)
    windows.check(str(job.frames), "base")
    torch.manual_seed(train.seed)  # the initial weights: the one draw from torch's global generator
    model, opt = new_training(params, device)
    state_dir, step, history = resume_dir(job), 0, []
    if (state_dir / "state" / "state.json").is_file():
        step, history = load_state(state_dir, model, None, opt)
        print(f"autoencoder: resuming from step {step} ({state_dir})", flush=True)
    live = Live(dir=str(job.report_dir), dvcyaml=False, save_dvc_exp=False, report=None)
    for entry in history:
        live.step = entry["step"]
        live.log_metric("train/loss", entry["loss"])
    losses: list[float] = []
    bar = progress(total=params.steps, initial=step, desc="train autoencoder", unit="step")
    while step < params.steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, params)
        gen = step_generator(train.seed, step, 0, Stream.BATCH)
        batch = training_crops(store, windows.train_frames, shape, params, gen).to(device)
        losses.append(optimiser_step(model, opt, batch, device, precision))
        step += 1
        bar.update(1)
        if step % train.log_every == 0 or step == params.steps:
            history.append({"step": step, "loss": float(np.mean(losses))})
            live.step = step
            live.log_metric("train/loss", history[-1]["loss"])
            bar.set_postfix_str(f"loss {history[-1]['loss']:.4f}")
            losses.clear()
        if step % train.ckpt_every == 0 and step < params.steps:
            save_state(state_dir, model, None, opt, step, history)
    bar.close()
    model.eval()
    sample = evenly_spaced(windows.train_frames, NORMALISATION_FRAMES)
    latents = encode_store(model, store, sample, shape)
    model = model.with_normalisation(latents.mean(dim=(0, 2, 3)), latents.std(dim=(0, 2, 3)).clamp(min=1e-3))
    scores = score(model, store, windows.val_frames, shape) if score is not None else {}
    for key, value in scores.items():
        live.log_metric(f"heldout/{key}", value, plot=False)
    live.log_metric("params", sum(p.numel() for p in model.parameters()), plot=False)
    save_autoencoder(model.eval(), job.model_out)
    live.make_summary()
    live.end()
    shutil.rmtree(state_dir, ignore_errors=True)
    return {"steps": float(step), **scores}


def autoencoder_job_from_params(
    frames: str | Path, model_out: str | Path, report_dir: str | Path, params_file: str | Path = "params.yaml"
) -> AutoencoderJob:
    """The :class:`AutoencoderJob` of params.yaml's ``autoencoder``, ``base`` and ``train`` sections."""
    from vdlib.config import load_section

    return AutoencoderJob(
        load_section("autoencoder", params_file), load_section("base", params_file),
        load_section("train", params_file), Path(frames), Path(model_out), Path(report_dir),
    )  # fmt: skip
