"""The cascade: base model → upsampler 64 → upsampler 128 (any prefix), K frames window by window.

Each model makes its frames in windows of the length it was trained on. The first window is sampled
from noise alone; each later one is given the last ``context`` frames made so far as clean context
frames and makes the rest, so there is no jump at window borders (the last window is moved back to
end exactly at K, taking more context instead of making frames nobody asked for). Every window
draws fresh noise from a generator seeded by (seed, model, window). Each upsampler is conditioned
on the previous model's output, resized to its size and noise-augmented at the level it was trained
to expect, and on the same per-frame labels.

Outputs per video: GIF and/or MP4, a contact-sheet PNG, and for the evaluate stage
``generated.npz`` (the frames and requested labels) with ``videos.json`` (what was asked, window
borders, seconds and network evaluations).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vdlib.atomic import atomic_output
from vdlib.clips import resize_clip, step_generator
from vdlib.conditions import ModelLabels, Request
from vdlib.config import CASCADE, DiffusionConfig, PoseConfig, RenderConfig, SamplingConfig
from vdlib.diffusion import Diffusion, sample
from vdlib.errors import VdlibError
from vdlib.progress import progress
from vdlib.unet import UNet3D, load_model

RENDER_STREAM = 5  # generator stream id (training uses 0-4)
VARIANT_SEED_STRIDE = 1_000  # request variant v samples with seed + 1000 v
MANIFEST = "videos.json"
ARRAYS = "generated.npz"


@dataclass
class CascadeModel:
    """One loaded model of the cascade and how it samples."""

    folder: Path
    model: UNet3D
    meta: dict[str, Any]
    diffusion: Diffusion
    sampling: SamplingConfig
    key: str  # the params key of its sampling settings, for messages: render.base, ...

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    @property
    def window(self) -> int:
        """Frames the model makes at once (X, its training clip length)."""
        return int(self.meta["frames"])

    @property
    def is_upsampler(self) -> bool:
        return self.meta["kind"] == "upsampler"

    @property
    def labels(self) -> ModelLabels:
        labels = self.meta.get("labels", {})
        return ModelLabels(labels.get("kind", "none"), list(labels.get("names", [])), str(self.folder))


def open_model(folder: str | Path, sampling: SamplingConfig, key: str, device: torch.device) -> CascadeModel:
    """Load one model with its sampling settings (``key`` names those settings in messages)."""
    model, meta = load_model(folder, device)
    for field_ in ("kind", "size", "frames", "diffusion", "fps"):
        if field_ not in meta:
            raise VdlibError(f"{folder}/config.json: missing {field_!r} (retrain with this vdlib)")
    step = CascadeModel(
        Path(folder), model, meta, Diffusion(DiffusionConfig(**meta["diffusion"])), sampling, key
    )
    if sampling.context >= step.window:
        raise VdlibError(
            f"{key}.context: expected 0 to {step.window - 1} for {folder} "
            f"({step.window} frames per window), got {sampling.context}"
        )
    return step


def load_cascade(
    folders: list[str | Path], sampling: list[SamplingConfig], keys: list[str], device: torch.device
) -> list[CascadeModel]:
    """Load the models in cascade order and check that they fit together."""
    if not folders:
        raise VdlibError("no models given (expected a base model, then optional upsamplers)")
    if len(sampling) != len(folders):
        raise VdlibError(f"{len(folders)} models but {len(sampling)} sampling settings")
    cascade: list[CascadeModel] = []
    for folder, settings, key in zip(folders, sampling, keys, strict=True):
        step = open_model(folder, settings, key, device)
        if not cascade and step.is_upsampler:
            raise VdlibError(f"{folder}: the first model must be a base model, this is an upsampler")
        if cascade:
            prev = cascade[-1]
            if not step.is_upsampler:
                raise VdlibError(f"{folder}: expected an upsampler after {prev.folder}, got a base model")
            if step.size != 2 * prev.size:
                raise VdlibError(
                    f"{folder}: makes {step.size} px frames from {step.size // 2} px, but "
                    f"{prev.folder} makes {prev.size} px; order the cascade by size"
                )
            first = cascade[0].labels
            if step.labels.conditioned and first.conditioned and step.labels.names != first.names:
                raise VdlibError(
                    f"{folder}: trained on other labels than {cascade[0].folder} "
                    f"({step.labels.valid()} vs {first.valid()})"
                )
        cascade.append(step)
    return cascade


def window_plan(total: int, window: int, context: int) -> list[tuple[int, int]]:
    """(first frame, frames given as context) of each window covering ``total`` frames.

    Windows hold ``min(window, total)`` frames; each after the first starts ``context`` frames before
    the end of what is made, and the last is moved back so it ends exactly at ``total``.
    """
    length = min(window, total)
    plan = [(0, 0)]
    done = length
    while done < total:
        start = min(done - context, total - length)
        plan.append((start, done - start))
        done = start + length
    return plan


@dataclass
class StageOutput:
    """One model's frames for one video, in [-1, 1], and what they cost."""

    clip: torch.Tensor  # (1, 3, K, S, S)
    borders: list[int]  # first new frame of each window after the first
    evaluations: int
    seconds: float


@torch.no_grad()
def run_model(
    step: CascadeModel,
    index: int,
    cond: np.ndarray | None,
    frames: int,
    seed: int,
    device: torch.device,
    lowres: torch.Tensor | None = None,
) -> StageOutput:
    """Make ``frames`` frames with one model, window by window (``lowres``: the previous model's clip)."""
    tick = time.perf_counter()
    settings = step.sampling
    size = step.size
    plan = window_plan(frames, step.window, settings.context)
    length = min(step.window, frames)
    has_labels = cond is not None and step.labels.conditioned
    cond_t = torch.from_numpy(np.asarray(cond, dtype=np.float32)).to(device) if has_labels else None
    out = torch.zeros(1, 3, frames, size, size)
    evaluations = 0
    for w, (start, given) in enumerate(plan):
        span = slice(start, start + length)
        gen = step_generator(seed, w, index, RENDER_STREAM)
        kwargs: dict[str, Any] = {}
        # The model makes (frames - offset) * scale: the frames, or a residual upsampler's scaled detail.
        offset, scale, bound = torch.zeros(1, 3, length, size, size), 1.0, 1.0
        if step.is_upsampler:
            assert lowres is not None
            up = resize_clip(lowres[:, :, span], size)
            if step.meta.get("residual_scale"):
                offset, scale = up, float(step.meta["residual_scale"])
                bound = 2.0 * scale  # frames and upscale both lie in [-1, 1]
            level = float(step.meta.get("sample_aug", 0.0))
            level_t = torch.tensor([round(level * (step.diffusion.cfg.timesteps - 1))])
            up = step.diffusion.add_noise(up, torch.randn(up.shape, generator=gen), level_t)
            kwargs = {"lowres": up.to(device), "aug_level": torch.tensor([level], device=device)}
        context = ((out[:, :, span] - offset) * scale).to(device)
        context_mask = (torch.arange(length) < given)[None].to(device)
        window_cond = cond_t[None, span] if cond_t is not None else None

        def denoise(
            x, t, use_labels, window_cond=window_cond, context=context, mask=context_mask, kwargs=kwargs
        ):
            return step.model(
                x,
                t,
                cond=window_cond if use_labels else None,
                context=context,
                context_mask=mask,
                **kwargs,
            )

        result = sample(
            denoise, (1, 3, length, size, size), step.diffusion, settings.sampler, settings.steps,
            settings.guidance, has_labels, gen, device, bound,
        )  # fmt: skip
        made = (result.clip.float().cpu() / scale + offset).clamp(-1, 1)
        out[:, :, start + given : start + length] = made[:, :, given:]
        evaluations += result.evaluations
    borders = [start + given for start, given in plan[1:]]
    return StageOutput(out, borders, evaluations, time.perf_counter() - tick)


def to_uint8(clip: torch.Tensor) -> np.ndarray:
    """(1, 3, K, S, S) in [-1, 1] → (K, S, S, 3) uint8."""
    return ((clip[0].permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()


@dataclass
class Video:
    """One generated video: final frames, what was asked, and what it cost per model."""

    name: str
    seed: int
    request: Request
    frames: np.ndarray  # (K, S, S, 3) uint8, the last model's output
    stages: list[StageOutput]

    @property
    def stem(self) -> str:
        return f"{self.name}_seed{self.seed}"


def generate(
    cascade: list[CascadeModel], request: Request, frames: int, seed: int, device: torch.device
) -> Video:
    """Run the cascade for one request and seed."""
    if frames < 1:
        raise VdlibError(f"frames: expected an integer >= 1, got {frames}")
    stages: list[StageOutput] = []
    clip = None
    noise_seed = seed + VARIANT_SEED_STRIDE * request.variant  # requests with the same labels differ
    for index, step in enumerate(cascade):
        result = run_model(step, index, request.cond, frames, noise_seed, device, lowres=clip)
        stages.append(result)
        clip = result.clip
    return Video(request.name, seed, request, to_uint8(clip), stages)


def write_video_files(video: Video, out_dir: Path, formats: list[str], fps: float) -> list[Path]:
    """The video as GIF and/or MP4, plus its contact sheet; returns the paths written."""
    from vdlib.preview import write_contact_sheet
    from vdlib.video import write_gif, write_mp4

    written = []
    if "gif" in formats:
        written.append(write_gif(video.frames, out_dir / f"{video.stem}.gif", fps))
    if "mp4" in formats:
        written.append(write_mp4(video.frames, out_dir / f"{video.stem}.mp4", fps))
    poses = None
    if video.request.kind == "pose" and video.request.cond is not None:
        poses = video.request.cond.reshape(len(video.frames), -1, 3)
    written.append(
        write_contact_sheet(
            video.frames, out_dir / f"{video.stem}_sheet.png", f"{video.stem} ({fps:g} fps)", poses=poses
        )
    )
    return written


def render(
    cascade: list[CascadeModel],
    requests: list[Request],
    seeds: list[int],
    frames: int,
    out_dir: str | Path,
    formats: list[str],
    fps: float = 0.0,
    device: torch.device | str = "cpu",
) -> list[Video]:
    """Generate every request for every seed; write the files, ``generated.npz`` and ``videos.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    fps = fps or float(cascade[0].meta["fps"])
    videos = []
    manifest: dict[str, Any] = {
        "frames": frames,
        "fps": fps,
        "models": [
            {"folder": str(m.folder), "size": m.size, "window": m.window, **asdict(m.sampling)}
            for m in cascade
        ],
        "videos": [],
    }
    jobs = [(request, seed) for seed in seeds for request in requests]
    with progress(total=len(jobs), desc="render", unit="video") as bar:
        for request, seed in jobs:
            video = generate(cascade, request, frames, seed, device)
            files = write_video_files(video, out_dir, formats, fps)
            videos.append(video)
            manifest["videos"].append(
                {
                    "name": video.stem,
                    "request": request.kind,
                    "seed": seed,
                    "files": [p.name for p in files],
                    "borders": sorted({b for s in video.stages for b in s.borders}),
                    "seconds": [round(s.seconds, 3) for s in video.stages],
                    "evaluations": [s.evaluations for s in video.stages],
                }
            )
            bar.set_postfix_str(f"{video.stem}: {sum(s.seconds for s in video.stages):.1f}s")
            bar.update(1)
    arrays = {f"frames/{v.stem}": v.frames for v in videos}
    arrays.update({f"cond/{v.stem}": v.request.cond for v in videos if v.request.cond is not None})
    with atomic_output(out_dir / ARRAYS) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    manifest["labels"] = {"kind": cascade[0].labels.kind, "names": cascade[0].labels.names}
    with atomic_output(out_dir / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return videos


@dataclass
class Rendered:
    """What the render stage wrote, read back for evaluation."""

    manifest: dict[str, Any]
    frames: dict[str, np.ndarray]  # stem → (K, S, S, 3) uint8
    cond: dict[str, np.ndarray]  # stem → (K, D), conditioned videos only

    @classmethod
    def open(cls, folder: str | Path) -> Rendered:
        folder = Path(folder)
        for name in (MANIFEST, ARRAYS):
            if not (folder / name).is_file():
                raise VdlibError(f"{folder}: no {name} here (run the render stage or `vdlib generate`)")
        manifest = json.loads((folder / MANIFEST).read_text())
        with np.load(folder / ARRAYS) as data:
            frames = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("frames/")}
            cond = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("cond/")}
        return cls(manifest, frames, cond)


def render_videos(
    cfg: RenderConfig,
    models: list[str | Path],
    out_dir: str | Path,
    pose: PoseConfig | None = None,
    frames: str | Path | None = None,
    labels: str | Path | None = None,
    keys: dict[str, str] | None = None,
) -> list[Video]:
    """Render what ``cfg`` asks for with the first ``cfg.cascade`` of ``models`` (base first).

    ``frames`` and ``labels`` (the frame store and labels file the models were trained on) are
    where ``auto`` requests come from: label combinations and held-out poses. ``keys`` name the
    request lists in messages (default: their params, ``render.labels``...).
    """
    from vdlib.conditions import PARAM_KEYS, build_requests, open_held_out
    from vdlib.device import resolve_device

    device = resolve_device(cfg.device, "render.device")
    models = list(models)[: cfg.cascade]
    settings_keys = [f"render.{name}" for name in CASCADE[: len(models)]]
    cascade = load_cascade(models, cfg.sampling()[: len(models)], settings_keys, device)
    fps = cfg.fps or float(cascade[0].meta["fps"])
    held_out = None
    if frames is not None and labels is not None and Path(frames).is_dir() and Path(labels).is_file():
        held_out = open_held_out(frames, labels, cascade[0].meta)
    requests = build_requests(
        cfg, cascade[0].labels, fps, pose or PoseConfig(), size=cascade[-1].size, held_out=held_out,
        keys=keys or PARAM_KEYS,
    )  # fmt: skip
    return render(cascade, requests, cfg.seeds, cfg.frames, out_dir, cfg.formats, fps, device)
