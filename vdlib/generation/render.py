"""Rendering: every requested video through the cascade (base model → upsampler 64 → upsampler
128, any prefix; see :mod:`vdlib.generation.cascade` for how each model makes its frames), written as files.

Outputs per video: GIF and/or MP4, a contact-sheet PNG, and for the evaluate stage
``generated.npz`` (the frames and requested labels) with ``videos.json`` (what was asked, window
borders, seconds and network evaluations).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vdlib.config import CASCADE, PoseConfig, RenderConfig
from vdlib.core.common import VdlibError, atomic_output, progress
from vdlib.generation.cascade import CascadeModel, StageOutput, load_cascade, run_model
from vdlib.generation.conditions import Request
from vdlib.models.upscale import to_uint8

VARIANT_SEED_STRIDE = 1_000  # request variant v samples with seed + 1000 v
MANIFEST = "videos.json"
ARRAYS = "generated.npz"


@dataclass
class Video:
    """One generated video: final frames, what was asked, and what it cost per model."""

    name: str
    seed: int
    request: Request
    frames: np.ndarray  # (K, H, W, 3) uint8, the last model's output
    stages: list[StageOutput]

    @property
    def stem(self) -> str:
        return f"{self.name}_seed{self.seed}"


def generate(
    cascade: list[CascadeModel], requests: list[Request], frames: int, seed: int, device: torch.device
) -> list[Video]:
    """Run the cascade for a batch of requests (all with labels, or all without) and one seed; each
    video gets the noise it would get alone."""
    if frames < 1:
        raise VdlibError(f"frames: expected an integer >= 1, got {frames}")
    labelled = {r.cond is not None for r in requests}
    if len(labelled) != 1:
        raise VdlibError("a batch of requests must all have labels or all have none")
    cond = np.stack([r.cond for r in requests]) if labelled == {True} else None
    noise_seeds = [seed + VARIANT_SEED_STRIDE * r.variant for r in requests]  # same labels, other noise
    stages: list[StageOutput] = []
    clip = None
    for index, model in enumerate(cascade):
        result = run_model(model, index, cond, frames, noise_seeds, device, lowres=clip)
        stages.append(result)
        clip = result.clip
    assert clip is not None
    return [
        Video(r.name, seed, r, to_uint8(clip[i : i + 1]), [s.video(i) for s in stages])
        for i, r in enumerate(requests)
    ]


def batches(requests: list[Request], size: int) -> list[list[Request]]:
    """The requests in batches of at most ``size``, in order, labelled and unlabelled ones apart."""
    out: list[list[Request]] = []
    for request in requests:
        if out and len(out[-1]) < size and (out[-1][0].cond is None) == (request.cond is None):
            out[-1].append(request)
        else:
            out.append([request])
    return out


def write_video_files(
    video: Video, out_dir: Path, formats: list[str], fps: float, sheets_dir: Path | None = None
) -> list[Path]:
    """The video as GIF and/or MP4 in ``out_dir``, plus its contact sheet (in ``sheets_dir``, default
    ``out_dir``); returns the paths written."""
    from vdlib.data.video import write_gif, write_mp4
    from vdlib.labels.preview import write_contact_sheet

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
            video.frames,
            (sheets_dir or out_dir) / f"{video.stem}_sheet.png",
            f"{video.stem} ({fps:g} fps)",
            poses=poses,
        )
    )
    return written


def _manifest_entry(video: Video, files: list[Path]) -> dict[str, Any]:
    """What ``videos.json`` records of one video: what was asked, its files, borders and cost."""
    return {
        "name": video.stem,
        "request": video.request.kind,
        "seed": video.seed,
        "files": [p.name for p in files],
        "borders": sorted({b for s in video.stages for b in s.borders}),
        "seconds": [round(s.seconds, 3) for s in video.stages],
        "evaluations": [s.evaluations for s in video.stages],
    }


def render(
    cascade: list[CascadeModel],
    requests: list[Request],
    seeds: list[int],
    frames: int,
    out_dir: str | Path,
    formats: list[str],
    fps: float,
    device: torch.device | str = "cpu",
    sheets_dir: str | Path | None = None,
    batch: int = 1,
) -> list[Video]:
    """Generate every request for every seed, ``batch`` videos at a time, played at ``fps``; write the files,
    ``generated.npz`` and ``videos.json`` to ``out_dir`` and the contact sheets to ``sheets_dir``
    (default ``out_dir``)."""
    out_dir = Path(out_dir)
    sheets = Path(sheets_dir) if sheets_dir else out_dir
    for folder in (out_dir, sheets):
        folder.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    videos = []
    manifest: dict[str, Any] = {
        "frames": frames,
        "fps": fps,
        "batch": batch,
        "models": [
            {
                "folder": str(m.folder),
                "size": m.size,
                "shape": list(m.shape),
                "window": m.window,
                **asdict(m.sampling),
            }
            for m in cascade
        ],
        "videos": [],
    }
    jobs = [(group, seed) for seed in seeds for group in batches(requests, batch)]
    with progress(total=len(requests) * len(seeds), desc="render", unit="video") as bar:
        for group, seed in jobs:
            made = generate(cascade, group, frames, seed, device)
            for video in made:
                files = write_video_files(video, out_dir, formats, fps, sheets)
                videos.append(video)
                manifest["videos"].append(_manifest_entry(video, files))
            bar.set_postfix_str(f"{sum(s.seconds for s in made[0].stages):.1f} s/video")
            bar.update(len(made))
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
    frames: dict[str, np.ndarray]  # stem → (K, H, W, 3) uint8
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
    sheets_dir: str | Path | None = None,
) -> list[Video]:
    """Render what ``cfg`` asks for with the first ``cfg.cascade`` of ``models`` (base first), the
    contact sheets to ``sheets_dir`` (default ``out_dir``).

    ``frames`` and ``labels`` (the frame store and labels file the models were trained on) are
    where ``auto`` requests come from: label combinations and held-out poses. ``keys`` name the
    request lists in messages (default: their params, ``render.labels``...).
    """
    from vdlib.device import out_of_memory_hint, resolve_device
    from vdlib.generation.conditions import PARAM_KEYS, build_requests, open_held_out

    device = resolve_device(cfg.device, "render.device")
    models = list(models)[: cfg.cascade]
    settings_keys = [f"render.{name}" for name in CASCADE[: len(models)]]
    cascade = load_cascade(models, cfg.sampling()[: len(models)], settings_keys, device)
    fps = cfg.fps or cascade[0].card.fps
    held_out = None
    if frames is not None and labels is not None and Path(frames).is_dir() and Path(labels).is_file():
        held_out = open_held_out(frames, labels, cascade[0])
    requests = build_requests(
        cfg, cascade[0].labels, fps, pose or PoseConfig(), shape=cascade[-1].shape, held_out=held_out,
        keys=keys or PARAM_KEYS,
    )  # fmt: skip
    with out_of_memory_hint("render", "render.batch (videos sampled together) or render.frames"):
        return render(
            cascade, requests, cfg.seeds, cfg.frames, out_dir, cfg.formats, fps, device, sheets_dir,
            cfg.batch_size(device.type),
        )  # fmt: skip
