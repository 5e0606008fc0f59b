"""Rendering: every requested video through the cascade (base model → upsampler 64 → upsampler
128, any prefix; see :mod:`vdlib.cascade` for how each model makes its frames), written as files.

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

from vdlib.cascade import CascadeModel, StageOutput, load_cascade, run_model, to_uint8
from vdlib.common import VdlibError, atomic_output, progress
from vdlib.conditions import Request
from vdlib.config import CASCADE, PoseConfig, RenderConfig

VARIANT_SEED_STRIDE = 1_000  # request variant v samples with seed + 1000 v
MANIFEST = "videos.json"
ARRAYS = "generated.npz"


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
    for index, model in enumerate(cascade):
        result = run_model(model, index, request.cond, frames, noise_seed, device, lowres=clip)
        stages.append(result)
        clip = result.clip
    return Video(request.name, seed, request, to_uint8(clip), stages)


def write_video_files(
    video: Video, out_dir: Path, formats: list[str], fps: float, sheets_dir: Path | None = None
) -> list[Path]:
    """The video as GIF and/or MP4 in ``out_dir``, plus its contact sheet (in ``sheets_dir``, default
    ``out_dir``); returns the paths written."""
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
    fps: float = 0.0,
    device: torch.device | str = "cpu",
    sheets_dir: str | Path | None = None,
) -> list[Video]:
    """Generate every request for every seed; write the files, ``generated.npz`` and ``videos.json``
    to ``out_dir`` and the contact sheets to ``sheets_dir`` (default ``out_dir``)."""
    out_dir = Path(out_dir)
    sheets = Path(sheets_dir) if sheets_dir else out_dir
    for folder in (out_dir, sheets):
        folder.mkdir(parents=True, exist_ok=True)
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
            files = write_video_files(video, out_dir, formats, fps, sheets)
            videos.append(video)
            manifest["videos"].append(_manifest_entry(video, files))
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
    sheets_dir: str | Path | None = None,
) -> list[Video]:
    """Render what ``cfg`` asks for with the first ``cfg.cascade`` of ``models`` (base first), the
    contact sheets to ``sheets_dir`` (default ``out_dir``).

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
    return render(cascade, requests, cfg.seeds, cfg.frames, out_dir, cfg.formats, fps, device, sheets_dir)
