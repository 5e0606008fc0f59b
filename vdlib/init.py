"""``vdlib init``: a ``params.yaml`` for the user's own videos, chosen without questions.

It probes the local videos (URLs are fetched by the pipeline, so their length is not known here),
then picks:
- ``extract.fps``: the videos' own rate up to 10 frames per second;
- ``extract.aspect: keep``: frames of the videos' own shape (the one that pads them least), not
  squares, so no pixel of a wide video is spent on bars;
- ``base.window``/``base.skip``: windows of about 2 s of motion taken as about 8 frames, shortened
  when the shortest usable video cannot hold a training window and a held-out window;
- the labels (none, pose, or the given timestamp tables) and ``render`` requests left at ``auto``;
- for labelled videos, classifier-free guidance on every sampling step of the base model (at
  :data:`GUIDANCE` for the label kind), so labels that are a small part of the picture (a digit, a
  pose) steer at the trained steps a budget allows;
- when the planned steps would show the base model each training window more than
  :data:`AUGMENT_VIEWS` times (little footage, long training), augmentations that keep labels true:
  ``base.zoom`` (random zoom-in) and, unless the labels come from tables (which may name text or a
  side), ``base.flip`` (pose keypoints are mirrored with the frames);
- ``base.steps``, ``upsampler.steps`` and ``upsampler.fitted_steps`` (null: the 128 px upsampler
  trains as many steps as the 64 px one) to fit the minutes asked for on this machine, from a
  short measured speed probe of each model (written into params, so the run stays reproducible);
  with timestamp labels the base model gets a larger share of the minutes and clips of exactly
  :data:`CLIP_FRAMES` frames, so it takes more steps, which its labels need, and the 128 px
  upsampler a quarter of the 64 px one's steps;
- for unlabelled videos (or any with ``--latent``), a base model that diffuses the latents of an
  autoencoder trained on the footage (``autoencoder.steps``), making frames at the stored size on
  its own (no upsamplers), the minutes split by :data:`LATENT_SHARES`, and no augmentation (its
  clips are latents); for labelled videos (or any with ``--no-latent``), a 32 px base model and two
  upsamplers;
- ``render.base.shared_noise``: :data:`MOVING_SHARED_NOISE` of the starting noise shared by a
  video's frames, not the shipped 0.3, when the local videos' frames change by at least
  :data:`MOVING_CHANGE` grey levels from one base frame to the next (measured on their first
  minute), so videos of moving footage move as much as it does.

Every other value is the shipped CPU recipe (the dataclass defaults of :mod:`vdlib.config`). The
file starts with a stamp line holding its digest, so a later ``vdlib init`` can tell an untouched
file (safe to replace) from an edited one (refused without ``--force``).
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vdlib.config import ModelTrainConfig, clip_frames, section_from_dict
from vdlib.core.common import VdlibError
from vdlib.data.frames import ClipWindows, shape_at
from vdlib.params_file import default_params, params_yaml

STAMP = "# vdlib init: sha256="
TARGET_SECONDS = 2.0  # motion a base clip spans
CLIP_FRAMES = 8  # frames the base model makes at once
MAX_FPS = 10.0
# "base" and "upsampler": shares of the training minutes (the upsampler's per size); "fitted": the
# steps of the upsamplers with a fitted upscale (128 px) as a share of upsampler.steps. Both sizes
# train the same steps: on real footage the 128 px network adds detail above its filter only with
# them (reports/ablations.md, "Upsamplers that predict the frames").
SHARES = {"base": 0.65, "upsampler": 0.175, "fitted": 1.0}
# With timestamp labels, which the base model learns late (reports/ablations.md, "vdlib init at 15
# minutes"), the base model gets more of the minutes, and clips of CLIP_FRAMES frames; the 64 px
# upsampler keeps the steps it needs to beat bicubic by 1 dB (on the digits 874 steps gave +0.81 dB)
# and the 128 px one trains a quarter of them.
TABLE_SHARES = {"base": 0.8, "upsampler": 0.16, "fitted": 0.25}
# Base training that shows each training window more often than this gets varied clips, zoomed in by
# up to AUGMENT_ZOOM (reports/real_footage.md: at 14 views, zoom and flips cost loss and realism).
AUGMENT_VIEWS = 50
AUGMENT_ZOOM = 0.15
# A latent base model: the shares of the minutes of the autoencoder and of the base model that
# diffuses its latents (frames at the stored size, no upsamplers); a step on the latents costs about
# what a 32 px frame's does.
LATENT_SHARES = {"autoencoder": 0.2, "base": 0.8}
# Footage whose stored frames change by at least MOVING_CHANGE grey levels (0-255, mean absolute
# difference between the base model's consecutive frames, evaluate's temporal.real_difference) is
# sampled from starting noise MOVING_SHARED_NOISE shared by a video's frames, less than the shipped
# 0.3 (the demo's, whose frames change by 2.4). Real clips change by 18-21: at 0.15 the temporal ratio
# of latent base models rose from 0.76-0.91 to 0.86-1.04 (16:9 and 2.35:1 clips, two training seeds),
# of the 32 px cascade by 0.02-0.13 (table-labelled street 0.74 to 0.82, temple 0.73 to 0.86), and the
# pose cascade found a person in more frames (0.68 to 0.74). The digits change by 5.3: at 0.15
# their temporal ratio rose past 1.25 (1.18 to 1.33) and their identity fell (0.77 to 0.72)
# (reports/real_footage.md, "Starting noise by how much the footage moves").
MOVING_CHANGE = 10.0
MOVING_SHARED_NOISE = 0.15
# How much of the footage init decodes to measure its change: the first MOTION_SECONDS of up to
# MOTION_VIDEOS videos spread over the list.
MOTION_SECONDS = 60.0
MOTION_VIDEOS = 8
# The label kinds whose base model diffuses latents unless asked otherwise. Unlabelled: on a 16:9 and
# a 2.35:1 real clip at 8 minutes, over two training seeds, it moved like the footage (temporal ratio
# 0.76-0.91, motion 0.70-1.38x the real clips'; 0.86-1.04 and 0.75-0.90x at MOVING_SHARED_NOISE)
# where the 32 px cascade did not (0.70-0.75, 0.77-1.97x), and its decoder adds 4.1-6.3 dB over the
# frames at the latents' size where the upsamplers added 0.2-1.9 dB over bicubic
# (reports/real_footage.md). Pose: at 15 minutes the 32 px cascade put the keypoints nearer the
# asked pose (0.11 against 0.21; reports/ablations.md, "Pose given as a skeleton image"). Timestamp
# tables: the latent model read the asked label at chance on a real street clip and on the digits
# (0.52 of 2 labels, 0.10 of 10) where the cascade read 1.00 and 0.76 (reports/real_footage.md,
# "Timestamp labels").
LATENT_KINDS = ("none",)
# render.base.guidance for each label kind, used on every step (reports/ablations.md, "Why the digits
# come late" and "Pose with keypoint maps": fine labels, weakly learnt within a CPU budget, need it).
GUIDANCE = {"timestamps": 4.0, "pose": 3.0}


@dataclass(frozen=True)
class Probed:
    """What init knows about one source."""

    source: str
    seconds: float | None  # None: not known before fetching (a URL)
    fps: float | None
    aspect: float | None = None  # display width / height


def probe_sources(sources: list[str]) -> list[Probed]:
    """Duration and frame rate of every local video (folders: each video inside); URLs stay unknown."""
    from vdlib.data.extract import list_videos
    from vdlib.data.fetch import source_kind
    from vdlib.data.video import probe

    out = []
    for source in sources:
        kind = source_kind(source)
        if kind != "local":
            out.append(Probed(source, None, None))
            continue
        if not Path(source).expanduser().exists():
            raise VdlibError(f"{source}: no such file or folder")
        for path in list_videos(Path(source).expanduser()):
            info = probe(path)
            out.append(Probed(str(path), info.duration_s, info.fps, info.display_aspect))
    return out


def choose_fps(videos: list[Probed]) -> float:
    """The videos' lowest frame rate, at most 10 frames per second."""
    rates = [v.fps for v in videos if v.fps]
    return float(min([MAX_FPS, *rates]))


def choose_window(videos: list[Probed], fps: float, val_fraction: float) -> tuple[int, int, str]:
    """(window, skip, why): about 2 s in about 8 frames, shortened until the longest known video
    holds a training window and a held-out one."""
    window = max(2, round(TARGET_SECONDS * fps))
    why = f"{window} frames = {window / fps:g} s of motion per base clip"
    lengths = tuple(math.floor(v.seconds * fps) for v in videos if v.seconds)
    longest = max(lengths, default=0)
    if lengths:
        fits = window
        while fits >= 2 and not len(ClipWindows(lengths, fits, 0, val_fraction).train_starts):
            fits -= 1
        if fits < 2:
            raise VdlibError(
                f"{videos[0].source}: too short: {longest} frames at {fps:g} fps, at least 4 needed"
            )
        if fits < window:
            window = fits
            why = f"{window} frames = {window / fps:g} s (the longest video: {longest} frames at {fps:g} fps)"
    skip = max(0, round(window / CLIP_FRAMES) - 1)
    if clip_frames(window, skip) < 2:
        skip = 0
    return window, skip, why


def choose_shape(videos: list[Probed], resolution: int) -> tuple[tuple[int, int], str]:
    """The stored frames' (height, width) that ``extract.aspect: keep`` will make from the probed
    videos (square when no aspect is known, as for URLs), and why."""
    from vdlib.data.extract import keep_shape

    known = [v for v in videos if v.aspect]
    if not known:
        return (resolution, resolution), "aspect unknown until fetched (URL): timed on square frames"
    return keep_shape([v.aspect for v in known], [v.seconds or 1.0 for v in known], resolution)


def choose_guidance(sampling: dict[str, Any], kind: str) -> str:
    """Set the base model's guidance in ``sampling`` (``render.base``) for labels of ``kind``; say why."""
    if kind not in GUIDANCE:
        return "render.base guidance as shipped: no labels to guide by"
    sampling.update({"guidance": GUIDANCE[kind], "guidance_share": 1.0})
    return (
        f"render.base.guidance = {GUIDANCE[kind]:g} on every step (guidance_share = 1): "
        f"{kind} labels are a small part of each frame and steer only when guided strongly"
    )


def footage_change(
    videos: list[Probed], shape: tuple[int, int], aspect: str, fps: float, stride: int
) -> float | None:
    """Mean absolute difference (grey levels, 0-255) between frames ``stride`` apart of the local
    ``videos`` decoded at ``fps`` and ``shape`` (height, width) as extract stores them: the first
    :data:`MOTION_SECONDS` of up to :data:`MOTION_VIDEOS` of them. None when none is local or long
    enough."""
    from vdlib.data.frames import evenly_spaced
    from vdlib.data.video import FrameFit, decode_frames
    from vdlib.evaluation.motion import mean_difference

    local = [v for v in videos if v.seconds]
    picked = [local[i] for i in evenly_spaced(np.arange(len(local)), MOTION_VIDEOS)]
    fit = FrameFit(*shape, mode="crop" if aspect == "crop" else "pad")
    total, pairs = 0.0, 0
    for video in picked:
        kept = np.zeros((0, *shape, 3), np.uint8)  # the last ``stride`` frames of the chunk before
        for chunk in decode_frames(video.source, fit, fps, end=MOTION_SECONDS):
            frames = np.concatenate([kept, chunk])
            if len(frames) > stride:  # evaluate's measure, weighted by its pairs
                total += mean_difference(frames[stride:], frames[:-stride]) * (len(frames) - stride)
                pairs += len(frames) - stride
            kept = frames[-stride:]
    return total / pairs if pairs else None


def choose_shared_noise(sampling: dict[str, Any], change: float | None) -> str:
    """Set ``sampling``'s (``render.base``) shared starting noise for footage whose frames change by
    ``change`` grey levels (:data:`MOVING_CHANGE`); say why."""
    if change is None:
        return "render.base.shared_noise as shipped: the footage's motion is unknown until fetched"
    moved = f"the footage's frames change by {change:.1f} grey levels from one base frame to the next"
    if change < MOVING_CHANGE:
        return f"render.base.shared_noise = {sampling['shared_noise']:g} (as shipped): {moved}"
    sampling["shared_noise"] = MOVING_SHARED_NOISE
    return (
        f"render.base.shared_noise = {MOVING_SHARED_NOISE:g}: {moved} (at least {MOVING_CHANGE:g}), "
        "so its videos start less alike"
    )


def choose_augmentation(base: dict[str, Any], windows: int | None, kind: str) -> str:
    """Turn on ``base.zoom`` and (unless the labels come from tables) ``base.flip`` in ``base`` when its
    steps show each of the ``windows`` training windows more than :data:`AUGMENT_VIEWS` times; say why."""
    if not windows:
        return "no augmentation: the footage's length is unknown until fetched"
    views = base["steps"] * base["batch"] / windows
    seen = f"each of the {windows} training windows is seen {views:.0f} times"
    if views <= AUGMENT_VIEWS:
        return f"no augmentation: {seen} (at most {AUGMENT_VIEWS})"
    base["zoom"] = AUGMENT_ZOOM
    flip = kind != "timestamps"
    base["flip"] = flip
    turned_on = f"base.zoom = {AUGMENT_ZOOM:g}" + (", base.flip = true" if flip else "")
    kept = "" if flip else " (no flips: table labels may name a side, or text)"
    return f"{turned_on}: {seen}, more than {AUGMENT_VIEWS}{kept}"


def seconds_per_step(
    cfg: ModelTrainConfig, shape: tuple[int, int], cond_dim: int, label_kind: str, steps: int = 4,
    channels: int = 3,
) -> float:  # fmt: skip
    """Measured seconds of one training step of ``cfg``'s model making frames of ``shape`` (height,
    width; a latent base model: its latents', of ``channels`` channels) on this machine: the step
    training runs (loss, gradient clipping, AdamW, EMA), on random clips, after a warm-up."""
    from vdlib.device import resolve_device, resolve_precision
    from vdlib.training.train import random_training

    device = resolve_device("auto", "train.device")
    precision = resolve_precision("auto", device, "train.precision")
    trainee, batch = random_training(cfg, shape, cond_dim, label_kind, device, precision, channels)
    return median_seconds(lambda i: trainee.step(batch, 0, i, 0), steps)


def median_seconds(step: Callable[[int], Any], steps: int) -> float:
    """The median seconds of ``steps`` calls of ``step(i)``, after one that warms up kernels and
    allocators."""
    times = []
    for i in range(steps + 1):
        tick = time.perf_counter()
        step(i)
        if i:
            times.append(time.perf_counter() - tick)
    return float(sorted(times)[len(times) // 2])


def autoencoder_seconds(
    params: dict[str, Any], shape: tuple[int, int], steps: int = 4
) -> tuple[float, float]:
    """Measured seconds of one training step of the autoencoder of ``params`` (``autoencoder``) on this
    machine, after a warm-up, and of encoding one frame of ``shape`` (height, width)."""
    import torch

    from vdlib.device import resolve_device, resolve_precision
    from vdlib.training.autoencoder import new_training, optimiser_step

    cfg = section_from_dict("autoencoder", {**params, "steps": 1})
    device = resolve_device("auto", "train.device")
    precision = resolve_precision("auto", device, "train.precision")
    torch.manual_seed(0)
    model, opt = new_training(cfg, device)
    side = cfg.crop or min(shape)
    batch = (
        torch.rand(cfg.batch, 3, side, side, generator=torch.Generator().manual_seed(0)).to(device) * 2 - 1
    )
    step_s = median_seconds(lambda _: optimiser_step(model, opt, batch, device, precision), steps)
    frames = torch.rand(8, 3, *shape, generator=torch.Generator().manual_seed(0)).to(device) * 2 - 1
    with torch.no_grad():
        tick = time.perf_counter()
        model.encode(frames)
        encode = (time.perf_counter() - tick) / len(frames)
    return step_s, encode


def adopt_tables(tables: list[str]) -> list[str]:
    """The tables as paths under ``labels/tables/``, the folder the labels stage tracks: a table
    elsewhere is copied there (an existing different file of the same name is an error)."""
    import shutil

    from vdlib.config import TABLES_DIR

    adopted = []
    for table in tables:
        source = Path(table).expanduser()
        if source.resolve().is_relative_to(TABLES_DIR.resolve()):
            adopted.append(table)
            continue
        dest = TABLES_DIR / source.name
        if dest.exists() and dest.read_bytes() != source.read_bytes():
            raise VdlibError(f"--labels: {table}: {dest} exists with other content; rename one of them")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        adopted.append(dest.as_posix())
    return adopted


def label_settings(labels: list[str]) -> tuple[dict[str, Any], int, str]:
    """The ``labels`` section for ``--labels none``, ``pose`` or timestamp tables (copied into
    ``labels/tables/`` when they lie elsewhere), the length of each frame's label vector, and why."""
    if not labels or labels == ["none"]:
        return {"kind": "none", "tables": []}, 0, "no labels: unconditioned videos"
    if labels == ["pose"]:
        from vdlib.labels.pose import KEYPOINT_NAMES

        why = "pose labels (yolo11n-pose); videos driven by held-out poses"
        return {"kind": "pose", "tables": []}, len(KEYPOINT_NAMES), why
    from vdlib.labels.tables import label_names, read_table

    for table in labels:
        if table in ("none", "pose"):
            raise VdlibError(f"--labels: {table!r} cannot be combined with tables")
    names = label_names([r for table in labels for r in read_table(table)])
    tables = adopt_tables(labels)
    why = f"timestamp labels from {', '.join(tables)}: {len(names)} labels"
    return {"kind": "timestamps", "tables": tables}, len(names), why


def _stamped(text: str) -> str:
    return f"{STAMP}{hashlib.sha256(text.encode()).hexdigest()}\n{text}"


def is_untouched(path: Path) -> bool:
    """True when ``path`` may be replaced: missing, written by init and unchanged since, or the
    version committed in git (the shipped demo params after a clone)."""
    if not path.is_file():
        return True
    text = path.read_text()
    first, _, rest = text.partition("\n")
    if first.startswith(STAMP) and first[len(STAMP) :] == hashlib.sha256(rest.encode()).hexdigest():
        return True
    shown = subprocess.run(
        ["git", "show", f"HEAD:./{path.name}"], cwd=path.parent, capture_output=True, text=True, check=False
    )
    return shown.returncode == 0 and shown.stdout == text


def set_cadence(params: dict[str, Any], base_steps: int) -> None:
    """Checkpoints about every tenth and validation about every fifth of the base model's steps."""
    params["train"]["ckpt_every"] = max(10, min(100, base_steps // 10))
    params["train"]["val_every"] = max(10, min(1000, base_steps // 5))


def plan_steps(
    params: dict[str, Any], base: ModelTrainConfig, stored: tuple[int, int], cond_dim: int, label_kind: str,
    minutes: float,
) -> str:  # fmt: skip
    """Set the training steps in ``params`` that fill ``minutes`` on this machine, from measured
    training steps of the base model and the first upsampler on frames ``stored`` (height, width);
    returns the reason."""
    base_s = seconds_per_step(base, shape_at(stored, base.resolution), cond_dim, label_kind)
    up = section_from_dict("upsampler", params["upsampler"])
    up_s = seconds_per_step(up, shape_at(stored, 2 * base.resolution), cond_dim, label_kind)
    shares = TABLE_SHARES if label_kind == "timestamps" else SHARES
    base_steps = max(20, int(minutes * 60 * shares["base"] / base_s))
    up_steps = max(20, int(minutes * 60 * shares["upsampler"] / up_s))
    fitted_steps = None if shares["fitted"] == 1 else max(20, int(up_steps * shares["fitted"]))
    params["base"]["steps"], params["upsampler"]["steps"] = base_steps, up_steps
    params["upsampler"]["fitted_steps"] = fitted_steps
    for name, steps in (("base", base_steps), ("upsampler", min(up_steps, fitted_steps or up_steps))):
        params[name]["warmup"] = min(params[name]["warmup"], steps // 4)
    set_cadence(params, base_steps)
    return (
        f"base.steps = {base_steps} ({base_s:.3f} s/step measured here), upsampler.steps = "
        f"{up_steps} ({up_s:.3f} s/step), upsampler.fitted_steps = "
        f"{'null (the same for the 128 px one)' if fitted_steps is None else fitted_steps}: "
        f"about {minutes:g} min of training"
    )


def plan_latent_steps(
    params: dict[str, Any], base: ModelTrainConfig, stored: tuple[int, int], cond_dim: int, label_kind: str,
    minutes: float, frames: int | None,
) -> str:  # fmt: skip
    """Set the steps of the autoencoder and of the base model that diffuses its latents to fill
    ``minutes`` on this machine (less the time to encode the ``frames`` stored frames, when known),
    from measured steps of each; returns the reason."""
    shape = shape_at(stored, base.resolution)
    coder_s, encode_s = autoencoder_seconds(params["autoencoder"], shape)
    factor = 2 ** params["autoencoder"]["downsamplings"]
    latents = (shape[0] // factor, shape[1] // factor)
    channels = params["autoencoder"]["latent_channels"]
    base_s = seconds_per_step(base, latents, cond_dim, label_kind, channels=channels)
    coder_steps = max(20, int(minutes * 60 * LATENT_SHARES["autoencoder"] / coder_s))
    encoding = (frames or 0) * encode_s
    base_steps = max(20, int((minutes * 60 * LATENT_SHARES["base"] - encoding) / base_s))
    params["autoencoder"]["steps"], params["base"]["steps"] = coder_steps, base_steps
    params["base"]["warmup"] = min(params["base"]["warmup"], base_steps // 4)
    set_cadence(params, base_steps)
    return (
        f"autoencoder.steps = {coder_steps} ({coder_s:.3f} s/step measured here), base.steps = {base_steps} "
        f"({base_s:.3f} s/step on {latents[0]}x{latents[1]} latents"
        + (f", after {encoding:.0f} s encoding the frames" if frames else "")
        + f"): about {minutes:g} min of training"
    )


def choose_latents(params: dict[str, Any], stored: tuple[int, int]) -> str:
    """Make the base model diffuse an autoencoder's latents of frames at the stored size (rendered
    alone: no upsamplers are trained); say why."""
    resolution = params["extract"]["resolution"]
    factor = 2 ** params["autoencoder"]["downsamplings"]
    params["base"]["resolution"] = resolution
    params["upsampler"]["steps"] = 0
    params["render"]["cascade"] = 1
    height, width = shape_at(stored, resolution)
    return (
        f"base.resolution = {resolution} from {height // factor}x{width // factor} latents of an autoencoder "
        f"trained on the footage (autoencoder.steps > 0), rendered alone (render.cascade = 1, "
        f"upsampler.steps = 0): its decoder draws frames {factor} times the latents' side"
    )


def wants_latents(asked: bool | None, label_kind: str) -> bool:
    """Whether the base model diffuses an autoencoder's latents: as ``asked`` (``--latent`` or
    ``--no-latent``), else for the label kinds of :data:`LATENT_KINDS`."""
    return label_kind in LATENT_KINDS if asked is None else asked


def plan_params(
    sources: list[str], labels: list[str], minutes: float, probe_speed: bool = True, aspect: str = "keep",
    latent: bool | None = None,
) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """The params for ``sources`` and the reasons for each choice (see the module's docstring);
    ``latent`` True or False asks for a base model over an autoencoder's latents or over 32 px
    frames, None leaves it to the labels (:func:`wants_latents`)."""
    if minutes <= 0:
        raise VdlibError(f"--minutes: expected a positive number of minutes, got {minutes:g}")
    videos = probe_sources(sources)
    params = default_params()
    reasons = []
    params["fetch"]["source"] = sources[0] if len(sources) == 1 else list(sources)
    known = [v for v in videos if v.seconds]
    if known:
        total = sum(v.seconds for v in known)
        reasons.append(f"{len(videos)} video(s), {total:.1f} s in all (probed)")
    else:
        reasons.append("video length unknown until fetched (URL): defaults assumed")
    fps = choose_fps(videos)
    params["extract"]["fps"] = fps
    reasons.append(f"extract.fps = {fps:g}: the videos' rate, at most {MAX_FPS:g}")
    params["extract"]["aspect"] = aspect
    resolution = params["extract"]["resolution"]
    stored, why = choose_shape(videos, resolution)
    if aspect != "keep":
        stored, why = (resolution, resolution), f"{resolution}x{resolution} squares, as asked"
    reasons.append(f"extract.aspect = {aspect}: {why}")
    val = params["train"]["val_fraction"]
    window, skip, why = choose_window(videos, fps, val)
    section, cond_dim, labels_why = label_settings(labels)
    if section["kind"] == "timestamps" and window > CLIP_FRAMES * (skip + 1):
        window = CLIP_FRAMES * (skip + 1)
        why = f"{window} frames = {window / fps:g} s of motion per base clip (cheaper steps for labels)"
    params["base"].update({"window": window, "skip": skip})
    base = section_from_dict("base", params["base"])
    reasons.append(f"base.window = {window}, base.skip = {skip}: {why}, {base.frames} frames per clip")
    up_window = min(params["upsampler"]["window"], window)
    params["upsampler"].update({"window": up_window, "skip": min(params["upsampler"]["skip"], up_window - 2)})
    params["labels"].update(section)
    reasons.append(labels_why)
    params["render"].update({"labels": "auto", "timelines": "auto", "pose_from": "auto"})
    params["render"]["frames"] = 2 * base.frames
    reasons.append(f"render: auto requests, {2 * base.frames} frames per video")
    reasons.append(choose_guidance(params["render"]["base"], section["kind"]))
    change = footage_change(videos, stored, aspect, fps, skip + 1)
    reasons.append(choose_shared_noise(params["render"]["base"], change))
    use_latents = wants_latents(latent, section["kind"])
    how = "as asked" if latent is not None else f"the default for labels: {section['kind']}"
    if use_latents:
        why = choose_latents(params, stored)
        reasons.append(f"{why} ({how}; --no-latent for a 32 px base model and upsamplers)")
        base = section_from_dict("base", params["base"])
    else:
        other = "--latent for a base model over latents"
        reasons.append(f"a 32 px base model and two upsamplers ({how}; {other})")
    windows, frames = None, None
    if all(v.seconds for v in videos):
        lengths = tuple(math.floor(v.seconds * fps) for v in videos)
        windows, frames = len(ClipWindows(lengths, window, skip, val).train_starts), sum(lengths)
    if probe_speed and use_latents:
        reasons.append(plan_latent_steps(params, base, stored, cond_dim, section["kind"], minutes, frames))
    elif probe_speed:
        reasons.append(plan_steps(params, base, stored, cond_dim, section["kind"], minutes))
    if use_latents:
        reasons.append("no augmentation: the base model's clips are latents, each made once from its frame")
    else:
        reasons.append(choose_augmentation(params["base"], windows, section["kind"]))
    return params, reasons


def write_params(params: dict[str, Any], reasons: list[str], path: Path, force: bool = False) -> Path:
    """Validate ``params`` and write them to ``path`` (stamped), refusing an edited file without
    ``force``."""
    if not force and not is_untouched(path):
        raise VdlibError(
            f"{path}: has edits that are not committed; commit or move it, or pass --force to replace it"
        )
    header = ["Written by `vdlib init`; every choice can be changed (see the README). It chose:"]
    body = params_yaml(params, header + [f"  {r}" for r in reasons])
    from vdlib.check import check_params
    from vdlib.core.common import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(_stamped(body))
        check_params(tmp)
    return path
