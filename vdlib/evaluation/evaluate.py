"""Numbers that say whether generation worked.

- ``val_loss``: each model's loss on the held-out tail at fixed noise levels (as in training),
  ``train_loss``: the same on training clips (far below ``val_loss``: the model memorises), and
  ``label_gain``: the share of the held-out loss the labels take away (near 0: the model ignores its
  labels).
- label accuracy and identity stability (:mod:`vdlib.evaluation.classifier`): a small frame classifier,
  trained on the real labelled frames before the held-out tail, reads each group's label of the
  generated frames; reported next to the same on real held-out clips (the ceiling).
- temporal consistency: mean absolute frame-to-frame difference of generated videos over that of
  real clips at the same rate and size (1 is ideal; flicker > 1, a frozen video ≈ 0), overall and
  for the frame pairs that straddle a window border; and the motion distance (:mod:`vdlib.evaluation.motion`),
  which tells smooth motion from boiling or jumping, next to real held-out clips' own.
- upsampler fidelity: PSNR and SSIM of each upsampler on held-out real low-res → high-res clips,
  next to bicubic upscaling of the same clips.
- pose fidelity (pose-conditioned videos): the pose model on the generated frames vs the requested
  keypoints.
- realism (:mod:`vdlib.evaluation.realism`): each generated frame's distance to its nearest
  training frame over the same for real held-out frames (about 1 looks like the footage, far
  below 1 copies it, far above is unlike it), overall and per video.
- sampling cost: seconds and network evaluations per video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from vdlib.config import CASCADE, EvaluateConfig, PoseConfig
from vdlib.core.common import atomic_output, is_not_trained, write_json
from vdlib.data.frames import ClipWindows, FrameStore, evenly_spaced
from vdlib.evaluation.classifier import accuracy, identity_stability, predict, targets, train_classifier
from vdlib.evaluation.motion import (
    frame_differences,
    mean_difference,
    motion_distance,
    pixel_changes,
    video_pixel_changes,
)
from vdlib.evaluation.realism import realism
from vdlib.generation.cascade import CascadeModel, run_model
from vdlib.generation.render import Rendered
from vdlib.labels import Labels
from vdlib.models.autoencoder import FrameAutoencoder
from vdlib.models.upscale import Shape, framewise, half, resize_clip, to_model_range, to_uint8
from vdlib.training.autoencoder import encode_store, frames_at
from vdlib.training.train import JobData

# --------------------------------------------------------------------------------------------------
# Image measures
# --------------------------------------------------------------------------------------------------


def _as_float(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 → (N, 3, H, W) float in [0, 1]."""
    t = torch.from_numpy(np.array(frames, dtype=np.float32)).div(255.0)  # a copy: memmaps are read-only
    return t.reshape(-1, *t.shape[-3:]).permute(0, 3, 1, 2)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB) between two uint8 frame arrays of the same shape."""
    mse = float(((_as_float(a) - _as_float(b)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity (Gaussian window 11, sigma 1.5, per channel) of uint8 frame arrays."""
    x, y = _as_float(a), _as_float(b)
    coords = torch.arange(11, dtype=torch.float32) - 5
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = (g / g.sum())[:, None] * (g / g.sum())[None, :]
    kernel = g.expand(3, 1, 11, 11)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=3)

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def resize_frames(frames: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(N, H, W, 3) uint8 → (N, height, width, 3) uint8 of ``shape`` (area when shrinking, bilinear
    when growing)."""
    if tuple(frames.shape[1:3]) == tuple(shape):
        return np.asarray(frames)
    clip = resize_clip(to_model_range(frames)[None], shape)
    return to_uint8(clip)


# --------------------------------------------------------------------------------------------------
# Upsampler fidelity and pose fidelity
# --------------------------------------------------------------------------------------------------


def upsampler_fidelity(
    model: CascadeModel, real: np.ndarray, cond: np.ndarray | None, seed: int, device: torch.device
) -> dict[str, float]:
    """PSNR/SSIM of the upsampler (all clips in one batch, clip i with seed + i) and of bicubic
    upscaling on real clips (C, K, H, W, 3) uint8 with labels ``cond`` (C, K, D)."""
    shape = model.shape
    high = np.stack([resize_frames(clip, shape) for clip in real])
    low = resize_clip(torch.stack([to_model_range(clip) for clip in real]), half(shape))  # (C, 3, K, h, w)
    seeds = [seed + i for i in range(len(real))]
    made = run_model(model, 0, cond, real.shape[1], seeds, device, low).clip
    bicubic = framewise(  # (C, 3, K, H, W)
        low, lambda x: F.interpolate(x, size=shape, mode="bicubic", align_corners=False).clamp(-1, 1)
    )
    made_all = np.stack([to_uint8(made[i : i + 1]) for i in range(len(real))])
    bicubic_all = np.stack([to_uint8(bicubic[i : i + 1]) for i in range(len(real))])
    return {
        "psnr": psnr(made_all, high),
        "ssim": ssim(made_all, high),
        "bicubic_psnr": psnr(bicubic_all, high),
        "bicubic_ssim": ssim(bicubic_all, high),
    }


@torch.no_grad()
def autoencoder_fidelity(model: FrameAutoencoder, store: FrameStore, rows: np.ndarray, shape: Shape) -> dict:
    """PSNR/SSIM of ``model``'s reconstructions of the stored frames ``rows`` at ``shape``, and of
    those frames brought down to the latents' size and back up bilinearly: what as many positions
    hold as pixels."""
    real = to_uint8(frames_at(store, rows, shape).transpose(0, 1)[None])
    latents = encode_store(model, store, rows, shape)
    made = torch.cat([model.decode(latents[i : i + 32]) for i in range(0, len(latents), 32)])
    made = to_uint8(made.transpose(0, 1)[None])
    small = resize_frames(resize_frames(real, tuple(latents.shape[-2:])), shape)
    return {
        "psnr": psnr(made, real),
        "ssim": ssim(made, real),
        "bilinear_psnr": psnr(small, real),
        "bilinear_ssim": ssim(small, real),
    }


def pose_fidelity(model: Any, frames: np.ndarray, keypoints: np.ndarray, pose: PoseConfig) -> dict[str, Any]:
    """Pose ``model`` on (K, H, W, 3) frames vs the (K, 17, 3) keypoints asked for: mean normalised
    distance over confidently asked keypoints (frames where a person was found; NaN when none), the
    share of frames asking for a person in which one was found, and the counts behind both."""
    from vdlib.labels.pose import detect_poses

    frames = np.asarray(frames)
    found_kp = np.zeros((len(frames), *keypoints.shape[1:]), dtype=np.float32)
    found = np.zeros(len(frames), dtype=np.int8)
    for start in range(0, len(frames), pose.batch):
        stop = start + pose.batch
        found_kp[start:stop], found[start:stop] = detect_poses(model, frames[start:stop], pose)
    wanted = keypoints[:, :, 2].max(1) > 0  # frames that ask for a person
    both = wanted & (found > 0)
    distances = []
    for i in np.flatnonzero(both):
        ok = keypoints[i, :, 2] >= 0.5
        if ok.any():
            d = np.linalg.norm(found_kp[i, ok, :2] - keypoints[i, ok, :2], axis=1)
            distances.append(float(d.mean()))
    return {
        "keypoint_distance": float(np.mean(distances)) if distances else float("nan"),
        "person_found": float(both.sum() / wanted.sum()) if wanted.any() else float("nan"),
        "frames_asking": int(wanted.sum()),
        "frames_scored": len(distances),
    }


def _pooled(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Pose fidelity over several videos, weighted by the frames behind each number."""
    asking = sum(r["frames_asking"] for r in results)
    scored = sum(r["frames_scored"] for r in results)
    return {
        "keypoint_distance": (
            sum(r["keypoint_distance"] * r["frames_scored"] for r in results if r["frames_scored"]) / scored
            if scored else float("nan")
        ),
        "person_found": (
            sum(r["person_found"] * r["frames_asking"] for r in results if r["frames_asking"]) / asking
            if asking else float("nan")
        ),
        "frames_asking": asking,
        "frames_scored": scored,
    }  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Real reference clips
# --------------------------------------------------------------------------------------------------


@dataclass
class RealReference:
    """Real frames at the generated videos' rate, split as the base model split them."""

    store: FrameStore
    windows: ClipWindows  # the base model's clip windows: training frames and held-out tails

    @property
    def stride(self) -> int:
        """Stored frames per generated frame (skip + 1)."""
        return self.windows.skip + 1

    def pairs(self, shape: tuple[int, int], max_pairs: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``max_pairs`` evenly spread real frame pairs ``stride`` apart within one video, at
        ``shape`` (height, width): two (P, height, width, 3) uint8 arrays."""
        first = np.arange(len(self.store) - self.stride)
        first = first[self.store.videos[first] == self.store.videos[first + self.stride]]
        picks = evenly_spaced(first, max_pairs)
        empty = np.zeros((0, *shape, 3), np.uint8)
        if not len(picks):
            return empty, empty
        chunks = np.array_split(picks, max(1, len(picks) // 256))
        a = np.concatenate([resize_frames(self.store.frames[c], shape) for c in chunks])
        b = np.concatenate([resize_frames(self.store.frames[c + self.stride], shape) for c in chunks])
        return a, b

    def sequences(self) -> list[np.ndarray]:
        """Stored-frame numbers of every held-out tail at the generated rate (one per tail and offset)."""
        return [part[o :: self.stride] for part in self.windows.held_out_parts for o in range(self.stride)]


def sampling_cost(rendered: Rendered) -> dict[str, Any]:
    """Mean seconds and network evaluations per video, in total and per model."""
    videos = rendered.manifest["videos"]
    seconds = np.array([v["seconds"] for v in videos], dtype=np.float64)
    evals = np.array([v["evaluations"] for v in videos], dtype=np.float64)
    models = [Path(m["folder"]).name for m in rendered.manifest["models"]]
    return {
        "seconds_per_video": round(float(seconds.sum(1).mean()), 3),
        "batch": int(rendered.manifest.get("batch", 1)),
        "evaluations_per_video": float(evals.sum(1).mean()),
        "per_model": {
            name: {"seconds": round(float(seconds[:, i].mean()), 3), "evaluations": float(evals[:, i].mean())}
            for i, name in enumerate(models)
        },
    }


def temporal_consistency(rendered: Rendered, real_difference: float) -> tuple[dict[str, float], np.ndarray]:
    """Generated / real frame-difference ratios (overall and at window borders), and the mean
    generated difference per frame pair (for the plot). Videos of one frame have no pairs, videos
    made in one window no borders: NaN."""
    diffs, border = [], []
    for video in rendered.manifest["videos"]:
        d = frame_differences(rendered.frames[video["name"]])
        if len(d):
            diffs.append(d)
            border += [float(d[b - 1]) for b in video["borders"] if 0 < b <= len(d)]
    usable = bool(diffs) and real_difference > 0
    per_pair = np.mean(np.stack(diffs), axis=0) if diffs else np.zeros(0)
    out = {"ratio": float(np.concatenate(diffs).mean() / real_difference) if usable else float("nan")}
    # NaN (null in metrics.json) when no video has a window border: each was made in one window.
    out["border_ratio"] = float(np.mean(border) / real_difference) if border and usable else float("nan")
    return out, per_pair


# --------------------------------------------------------------------------------------------------
# The evaluate stage
# --------------------------------------------------------------------------------------------------


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    lines = [",".join(header)] + [
        ",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in r) for r in rows
    ]
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


# Every plot table dvc.yaml declares, with its columns: written for every labels kind (a table that
# does not apply keeps its header and no rows).
PLOTS = {
    "label_accuracy": ["group", "generated", "real_heldout", "identity_generated", "identity_real_heldout"],
    "temporal": ["pair", "generated", "real"],
    "upsampler": ["model", "psnr", "bicubic_psnr", "ssim", "bicubic_ssim"],
    "pose": ["video", "keypoint_distance", "person_found"],
    "realism": ["video", "ratio", "distance"],
}


@dataclass
class Evaluation:
    """What the metrics are computed from: the real frames and labels, what was rendered, the models
    (named by their place in the cascade) with their data, and the settings."""

    store: FrameStore
    labels: Labels
    rendered: Rendered
    models: dict[str, tuple[CascadeModel, JobData]]
    cfg: EvaluateConfig
    pose: PoseConfig
    device: torch.device

    @property
    def real(self) -> RealReference:
        """Real frames split as the base model split them."""
        return RealReference(self.store, next(iter(self.models.values()))[1].windows)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the generated videos."""
        last = self.rendered.manifest["models"][-1]
        height, width = last.get("shape", (last["size"], last["size"]))
        return int(height), int(width)

    def videos(self, request: str | None = None) -> list[str]:
        """Names of the rendered videos that were given labels (of kind ``request``, when given)."""
        return [
            v["name"] for v in self.rendered.manifest["videos"]
            if v["name"] in self.rendered.cond and (request is None or v["request"] == request)
        ]  # fmt: skip


def validation_losses(ev: Evaluation) -> dict[str, dict[str, float]]:
    """Each model's loss on the held-out tails at fixed noise levels, exactly as its training scored it
    (``val_loss``), the same on training clips (``train_loss``: far below ``val_loss``, the model
    memorises its clips), and for label-conditioned models the ``label_gain``: the share of the
    held-out loss the labels take away, 1 - loss / loss with the labels dropped. A gain near 0 says
    the model ignores its labels, however well it denoises."""
    losses, fitted, gains = {}, {}, {}
    for name, (model, data) in ev.models.items():
        sample_aug = model.sample_aug if model.is_upsampler else None
        validation = data.validation(model.diffusion, sample_aug, model.card.seed)
        losses[name] = validation.loss(model.net, ev.device)
        training = data.validation(model.diffusion, sample_aug, model.card.seed, held_out=False)
        fitted[name] = training.loss(model.net, ev.device)
        gain = validation.label_gain(model.net, ev.device, losses[name])
        if gain is not None:
            gains[name] = gain
    found = {"val_loss": losses, "train_loss": fitted}
    return {**found, "label_gain": gains} if gains else found


def label_metrics(ev: Evaluation) -> tuple[dict[str, Any], list[list[Any]]]:
    """Label accuracy and identity stability of the conditioned videos, next to the classifier's on
    real held-out clips at the same rate (the ceiling)."""
    conditioned = ev.videos()
    if ev.labels.kind != "timestamps" or not conditioned:
        return {}, []
    real, labels, rendered, size = ev.real, ev.labels, ev.rendered, ev.cfg.classifier_size
    train_rows, names = real.windows.train_frames, labels.names
    classifier = train_classifier(ev.store.frames[train_rows], labels.cond[train_rows], names, ev.cfg)
    made = [predict(classifier, rendered.frames[n], size) for n in conditioned]
    asked = [targets(rendered.cond[n], names) for n in conditioned]
    sequences = [rows for rows in real.sequences() if len(rows)]
    seen = [predict(classifier, ev.store.frames[rows], size) for rows in sequences]
    truth = [targets(labels.cond[rows], names) for rows in sequences]
    generated = accuracy(np.concatenate(made), np.concatenate(asked), names)
    held_out = accuracy(np.concatenate(seen), np.concatenate(truth), names) if seen else {}
    identity = {"generated": identity_stability(made, asked, names),
                "real_heldout": identity_stability(seen, truth, names)}  # fmt: skip
    rows = [
        [g, generated[g], held_out.get(g, math.nan), identity["generated"].get(g, math.nan),
         identity["real_heldout"].get(g, math.nan)]
        for g in generated
    ]  # fmt: skip
    return {
        "label_accuracy": {"generated": generated, "real_heldout": held_out},
        "identity_stability": identity,
    }, rows


def temporal_metrics(ev: Evaluation) -> tuple[dict[str, Any], list[list[Any]]]:
    """Temporal consistency and motion distance at the size of the generated videos; the motion
    distance of real held-out clips to the same reference is its floor."""
    real = ev.real
    first, second = real.pairs(ev.shape)
    real_diff = mean_difference(first, second) if len(first) else math.nan
    temporal, per_pair = temporal_consistency(ev.rendered, real_diff)
    videos = [ev.rendered.frames[v["name"]] for v in ev.rendered.manifest["videos"]]
    held_out = [resize_frames(ev.store.frames[rows], ev.shape) for rows in real.sequences()]
    reference = pixel_changes(first, second) if len(first) else None
    for key, clips in (("motion_distance", videos), ("motion_distance_real_heldout", held_out)):
        if reference is not None and any(len(clip) > 1 for clip in clips):
            temporal[key] = motion_distance(video_pixel_changes(clips), reference)
    rows = [[i + 1, float(d), real_diff] for i, d in enumerate(per_pair)]
    return {"temporal": {**temporal, "real_difference": real_diff}}, rows


def upsampler_metrics(ev: Evaluation) -> tuple[dict[str, Any], list[list[Any]]]:
    """Upsampler fidelity on held-out real clips, next to bicubic upscaling."""
    fidelity = {}
    for name, (model, data) in ev.models.items():
        if model.is_upsampler:
            idx = data.windows.rows(data.windows.val_starts(ev.cfg.fidelity_clips))
            clips = np.stack([np.asarray(ev.store.frames[row]) for row in idx])
            cond = ev.labels.cond[idx] if model.labels.conditioned else None
            fidelity[name] = upsampler_fidelity(model, clips, cond, ev.cfg.seed, ev.device)
    rows = [[n, f["psnr"], f["bicubic_psnr"], f["ssim"], f["bicubic_ssim"]] for n, f in fidelity.items()]
    return ({"upsampler": fidelity} if fidelity else {}), rows


def pose_metrics(ev: Evaluation) -> tuple[dict[str, Any], list[list[Any]]]:
    """Pose fidelity of pose-driven videos, next to the real held-out frames (the ceiling)."""
    posed = ev.videos("pose")
    if ev.labels.kind != "pose" or not posed:
        return {}, []
    from vdlib.labels.pose import load_pose_model

    pose_model = load_pose_model(ev.pose)
    rendered, shape = ev.rendered, ev.shape
    per_video = {
        n: pose_fidelity(
            pose_model, rendered.frames[n], rendered.cond[n].reshape(len(rendered.frames[n]), -1, 3), ev.pose
        )
        for n in posed
    }
    val_rows = ev.real.windows.val_frames
    real_frames = np.asarray(ev.store.frames[val_rows])
    asked = ev.labels.cond[val_rows].reshape(len(val_rows), -1, 3)
    base_shape = next(iter(ev.models.values()))[0].shape
    references = {
        # The real frames at the generated size: the pose model's agreement with itself.
        "real_heldout": resize_frames(real_frames, shape),
        # ...and as the base model's resolution shows them (down to its size, back up bilinear):
        # what a perfect base model would give before the upsamplers add detail.
        "real_heldout_at_base": resize_frames(resize_frames(real_frames, base_shape), shape),
    }
    ceilings = {k: pose_fidelity(pose_model, v, asked, ev.pose) for k, v in references.items()}
    rows = [
        [name, r["keypoint_distance"], r["person_found"]]
        for name, r in [*per_video.items(), *ceilings.items()]
    ]
    return {"pose": {**_pooled(list(per_video.values())), **ceilings}}, rows


def realism_metrics(ev: Evaluation) -> tuple[dict[str, Any], list[list[Any]]]:
    """How far the generated frames lie from the base model's training frames, against the real
    held-out frames (:mod:`vdlib.evaluation.realism`): about 1 looks like the footage, far below 1
    copies it."""
    windows = ev.real.windows
    if not len(windows.val_frames) or not ev.rendered.frames:
        return {}, []
    found = realism(ev.rendered.frames, ev.store.frames, windows.train_frames, windows.val_frames)
    scale = found["real_heldout_distance"]
    rows = [[name, ratio, ratio * scale] for name, ratio in found["per_video"].items()]
    rows.append(["real_heldout", 1.0, scale])
    return {"realism": found}, rows


def open_evaluation(
    frames: str | Path,
    labels_path: str | Path,
    render_dir: str | Path,
    models: list[str | Path],
    params_file: str | Path,
) -> Evaluation:
    """Everything :func:`evaluate` reads: the params' evaluate, render and pose settings, the frame
    store, labels and rendered videos, and the models with their sampling settings (by place in the
    cascade, as rendering uses them) and data."""
    from vdlib.config import load_section
    from vdlib.device import resolve_device
    from vdlib.generation.cascade import load_cascade, open_model
    from vdlib.labels import read_labels

    render_cfg = load_section("render", params_file)
    device = resolve_device(render_cfg.device, "render.device")
    models = [m for m in models if not is_not_trained(m)]  # upsampler.steps: 0 trains none
    names = CASCADE[: len(models)]
    settings = [getattr(render_cfg, n) for n in names]
    keys = [f"render.{n}" for n in names]
    rendered = min(render_cfg.cascade, len(models))
    # The models that made the videos must fit together, as render checked; every other model given
    # (left out by render.cascade) is still scored on its own: validation loss, upsampler fidelity.
    cascade = load_cascade(list(models)[:rendered], settings[:rendered], keys[:rendered], device)
    left_out = zip(list(models)[rendered:], settings[rendered:], keys[rendered:], strict=True)
    cascade += [open_model(folder, sampling, key, device) for folder, sampling, key in left_out]
    opened = {
        name: (m, JobData.for_model(Path(frames), Path(labels_path), m))
        for name, m in zip(names, cascade, strict=True)
    }
    return Evaluation(
        FrameStore.open(frames), read_labels(labels_path), Rendered.open(render_dir), opened,
        load_section("evaluate", params_file), load_section("labels", params_file).pose, device,
    )  # fmt: skip


def evaluate(
    frames: str | Path,
    labels_path: str | Path,
    render_dir: str | Path,
    out_dir: str | Path,
    models: list[str | Path],
    params_file: str | Path = "params.yaml",
) -> dict[str, Any]:
    """Compute every metric that applies to the labels' kind; write ``metrics.json`` and every plot
    table of :data:`PLOTS` to ``out_dir``; return the metrics."""
    ev = open_evaluation(frames, labels_path, render_dir, models, params_file)
    metrics: dict[str, Any] = {
        "labels": ev.labels.kind,
        "videos": len(ev.rendered.manifest["videos"]),
        **validation_losses(ev),
    }
    plots = {
        "label_accuracy": label_metrics,
        "temporal": temporal_metrics,
        "upsampler": upsampler_metrics,
        "pose": pose_metrics,
        "realism": realism_metrics,
    }
    for name, measure in plots.items():
        found, rows = measure(ev)
        metrics.update(found)
        _csv(Path(out_dir) / "plots" / f"{name}.csv", PLOTS[name], rows)
    metrics["sampling"] = sampling_cost(ev.rendered)
    write_json(metrics, Path(out_dir) / "metrics.json")
    return metrics
