"""Numbers that say whether generation worked.

- ``val_loss``: each model's loss on the held-out tail at fixed noise levels (as in training).
- label accuracy: a small frame classifier, trained on the real labelled frames before the held-out
  tail, predicts each group's label of the generated frames; reported next to its accuracy on the
  real held-out frames (the ceiling).
- temporal consistency: mean absolute frame-to-frame difference of generated videos over that of
  real clips at the same rate and size (1 is ideal; flicker > 1, a frozen video ≈ 0), overall and
  for the frame pairs that straddle a window border.
- upsampler fidelity: PSNR and SSIM of each upsampler on held-out real low-res → high-res clips,
  next to bicubic upscaling of the same clips.
- pose fidelity (pose-conditioned videos): the pose model on the generated frames vs the requested
  keypoints.
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
from torch import nn

from vdlib.clips import resize_clip, to_model_range
from vdlib.config import CASCADE, EvaluateConfig, PoseConfig
from vdlib.errors import VdlibError
from vdlib.frames import ClipWindows, FrameStore
from vdlib.progress import progress
from vdlib.render import CascadeModel, Rendered, run_model, to_uint8

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


def frame_differences(frames: np.ndarray) -> np.ndarray:
    """Mean absolute difference (0-255 scale) of each consecutive pair of (K, S, S, 3) frames."""
    f = np.asarray(frames, dtype=np.float32)
    return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(N, S, S, 3) uint8 → (N, size, size, 3) uint8 (area when shrinking, bilinear when growing)."""
    if frames.shape[1] == size:
        return np.asarray(frames)
    clip = resize_clip(to_model_range(np.array(frames))[None], size)
    return to_uint8(clip)


# --------------------------------------------------------------------------------------------------
# Label classifier
# --------------------------------------------------------------------------------------------------


def group_slices(names: list[str]) -> dict[str, list[int]]:
    """``cond`` indices of each label group, e.g. {'shape': [0, 1, 2], 'colour': [3, 4, 5]}."""
    out: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        out.setdefault(name.partition("=")[0], []).append(i)
    return out


def group_targets(cond: np.ndarray, slots: list[int]) -> np.ndarray:
    """Class index per frame within one group: its single active label, or -1 (none or several)."""
    part = np.asarray(cond)[:, slots] > 0.5
    target = part.argmax(1)
    target[part.sum(1) != 1] = -1
    return target


class FrameClassifier(nn.Module):
    """A small CNN with one softmax head per label group (each with an extra 'none' class)."""

    def __init__(self, groups: dict[str, list[int]], width: int = 32) -> None:
        super().__init__()
        self.groups = list(groups)
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.heads = nn.ModuleList(nn.Linear(2 * width, len(slots) + 1) for slots in groups.values())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.features(x)
        return [head(h) for head in self.heads]


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of each image of (B, C, H, W) with its own ``sigma`` (B,) in pixels (0: none)."""
    b, c, h, w = x.shape
    taps = torch.arange(-3, 4, dtype=x.dtype)
    kernel = torch.exp(-(taps**2)[None] / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, dim=0)  # (B*C, 7)
    flat = x.reshape(1, b * c, h, w)
    flat = F.conv2d(F.pad(flat, (3, 3, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, 3, 3), mode="replicate"), kernel[:, None, :, None], groups=b * c)
    return flat.reshape(b, c, h, w)


def augment_frames(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Label-preserving changes to (B, 3, S, S) frames in [-1, 1], drawn from ``gen``: shifts of up
    to a tenth of the frame, zoom 0.85-1.15, aspect 0.9-1.1, rotation up to 10 degrees, blur up to
    1 px and light noise. Without them the classifier learns shortcuts that do not name the label: on
    the demo it told circles from squares by their area (a real circle zoomed 1.1x read as a square,
    and so did one blurred by 0.8 px), not by their corners."""
    b = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    zoom, aspect, angle = uniform(0.85, 1.15), uniform(0.9, 1.1), uniform(-0.175, 0.175)
    sx, sy = zoom * aspect, zoom / aspect
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output to input coordinates: the inverse of zooming by (sx, sy) and rotating.
    theta = torch.stack(
        [torch.stack([cos / sx, sin / sx, uniform(-0.2, 0.2)], 1),
         torch.stack([-sin / sy, cos / sy, uniform(-0.2, 0.2)], 1)], 1,
    )  # fmt: skip
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    blurred = _blur(moved, uniform(0.0, 1.0))
    return blurred + 0.05 * torch.randn(blurred.shape, generator=gen)


def train_classifier(
    frames: np.ndarray, cond: np.ndarray, names: list[str], cfg: EvaluateConfig
) -> FrameClassifier:
    """Fit a :class:`FrameClassifier` to real (N, S, S, 3) frames and their labels (deterministic),
    on :func:`augment_frames` versions of them."""
    groups = group_slices(names)
    x = _as_float(resize_frames(frames, cfg.classifier_size)) * 2 - 1
    targets = torch.stack(
        [torch.from_numpy(np.where(t < 0, len(s), t)) for t, s in
         ((group_targets(cond, slots), slots) for slots in groups.values())], dim=1,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = FrameClassifier(groups)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in progress(range(cfg.classifier_steps), desc="label classifier", unit="step"):
        idx = torch.randint(0, len(x), (64,), generator=gen)
        logits = model(augment_frames(x[idx], gen))
        loss = sum(F.cross_entropy(out, targets[idx, g]) for g, out in enumerate(logits))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def label_accuracy(
    classifier: FrameClassifier, frames: np.ndarray, cond: np.ndarray, names: list[str], size: int
) -> dict[str, float]:
    """Per-group accuracy on frames whose requested labels name exactly one label of that group."""
    x = _as_float(resize_frames(frames, size)) * 2 - 1
    logits = classifier(x)
    out = {}
    for g, (group, slots) in enumerate(group_slices(names).items()):
        target = group_targets(cond, slots)
        scored = target >= 0
        if scored.any():
            predicted = logits[g].argmax(1).numpy()
            out[group] = float((predicted[scored] == target[scored]).mean())
    return out


# --------------------------------------------------------------------------------------------------
# Upsampler fidelity and pose fidelity
# --------------------------------------------------------------------------------------------------


def upsampler_fidelity(
    step: CascadeModel, real: np.ndarray, cond: np.ndarray | None, seed: int, device: torch.device
) -> dict[str, float]:
    """PSNR/SSIM of the upsampler and of bicubic upscaling on real clips (C, K, S, S, 3) uint8."""
    size = step.size
    outs, bicubic, targets = [], [], []
    for i, clip in enumerate(real):
        high = resize_frames(clip, size)
        low = resize_clip(to_model_range(clip)[None], size // 2)
        made = run_model(step, 0, None if cond is None else cond[i], len(clip), seed + i, device, low)
        outs.append(to_uint8(made.clip))
        flat = low[0].transpose(0, 1)  # (K, 3, s, s)
        up = F.interpolate(flat, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
        bicubic.append(to_uint8(up.transpose(0, 1)[None]))
        targets.append(high)
    target, made_all, bicubic_all = np.stack(targets), np.stack(outs), np.stack(bicubic)
    return {
        "psnr": psnr(made_all, target),
        "ssim": ssim(made_all, target),
        "bicubic_psnr": psnr(bicubic_all, target),
        "bicubic_ssim": ssim(bicubic_all, target),
    }


def pose_fidelity(model: Any, frames: np.ndarray, keypoints: np.ndarray, pose: PoseConfig) -> dict[str, Any]:
    """Pose ``model`` on (K, S, S, 3) frames vs the (K, 17, 3) keypoints asked for: mean normalised
    distance over confidently asked keypoints (frames where a person was found; NaN when none), the
    share of frames asking for a person in which one was found, and the counts behind both."""
    from vdlib.pose import detect_poses

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

    def temporal_difference(self, size: int, max_pairs: int = 2000) -> float:
        """Mean absolute difference of real frame pairs ``stride`` apart (within one video), at
        ``size`` pixels."""
        first = np.arange(len(self.store) - self.stride)
        first = first[self.store.videos[first] == self.store.videos[first + self.stride]]
        if not len(first):
            return float("nan")
        picks = first[np.unique(np.linspace(0, len(first) - 1, num=min(len(first), max_pairs)).round())
                      .astype(int)]  # fmt: skip
        diffs = []
        for chunk in np.array_split(picks, max(1, len(picks) // 256)):
            a = resize_frames(self.store.frames[chunk], size).astype(np.float32)
            b = resize_frames(self.store.frames[chunk + self.stride], size).astype(np.float32)
            diffs.append(np.abs(a - b).mean(axis=(1, 2, 3)))
        return float(np.concatenate(diffs).mean())


def sampling_cost(rendered: Rendered) -> dict[str, Any]:
    """Mean seconds and network evaluations per video, in total and per model."""
    videos = rendered.manifest["videos"]
    seconds = np.array([v["seconds"] for v in videos], dtype=np.float64)
    evals = np.array([v["evaluations"] for v in videos], dtype=np.float64)
    models = [Path(m["folder"]).name for m in rendered.manifest["models"]]
    return {
        "seconds_per_video": round(float(seconds.sum(1).mean()), 3),
        "evaluations_per_video": float(evals.sum(1).mean()),
        "per_model": {
            name: {"seconds": round(float(seconds[:, i].mean()), 3), "evaluations": float(evals[:, i].mean())}
            for i, name in enumerate(models)
        },
    }


def temporal_consistency(rendered: Rendered, real_difference: float) -> tuple[dict[str, float], np.ndarray]:
    """Generated / real frame-difference ratios (overall and at window borders), and the mean
    generated difference per frame pair (for the plot). Videos of one frame have no pairs: NaN."""
    diffs, border = [], []
    for video in rendered.manifest["videos"]:
        d = frame_differences(rendered.frames[video["name"]])
        if len(d):
            diffs.append(d)
            border += [float(d[b - 1]) for b in video["borders"] if 0 < b <= len(d)]
    usable = bool(diffs) and real_difference > 0
    per_pair = np.mean(np.stack(diffs), axis=0) if diffs else np.zeros(0)
    out = {"ratio": float(np.concatenate(diffs).mean() / real_difference) if usable else float("nan")}
    if border and usable:
        out["border_ratio"] = float(np.mean(border) / real_difference)
    return out, per_pair


# --------------------------------------------------------------------------------------------------
# The evaluate stage
# --------------------------------------------------------------------------------------------------


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    from vdlib.atomic import atomic_output

    lines = [",".join(header)] + [
        ",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in r) for r in rows
    ]
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def evaluate(
    frames: str | Path,
    labels_path: str | Path,
    render_dir: str | Path,
    out_dir: str | Path,
    models: list[str | Path],
    params_file: str | Path = "params.yaml",
) -> dict[str, Any]:
    """Compute every metric that applies to the labels' kind; write ``metrics.json`` and every plot
    table to ``out_dir`` (a table that does not apply keeps its header and no rows); return them."""
    from vdlib.config import load_section
    from vdlib.device import resolve_device
    from vdlib.labels import read_labels
    from vdlib.render import open_model
    from vdlib.stage import write_json
    from vdlib.train import JobData, train_job_from_params

    cfg: EvaluateConfig = load_section("evaluate", params_file)
    render_cfg = load_section("render", params_file)
    pose_cfg = load_section("labels", params_file).pose
    device = resolve_device(render_cfg.device, "render.device")
    out_dir, plots = Path(out_dir), Path(out_dir) / "plots"
    store = FrameStore.open(frames)
    labels = read_labels(labels_path)
    rendered = Rendered.open(render_dir)
    metrics: dict[str, Any] = {"labels": labels.kind, "videos": len(rendered.manifest["videos"])}

    # Validation loss of every model, on the held-out tails as in training.
    opened: dict[str, tuple[CascadeModel, JobData]] = {}
    metrics["val_loss"] = {}
    for folder in map(Path, models):
        if folder.name not in CASCADE:
            raise VdlibError(f"{folder}: expected a model folder named one of {', '.join(CASCADE)}")
        model = open_model(folder, getattr(render_cfg, folder.name), f"render.{folder.name}", device)
        kind = "upsampler" if model.is_upsampler else "base"
        job = train_job_from_params(kind, frames, labels_path, folder, out_dir, model.size, params_file)
        data = JobData.open(job)
        metrics["val_loss"][folder.name] = data.val_loss(job, model.model, device)
        opened[folder.name] = (model, data)
    base_model, base_data = next(iter(opened.values()))
    real = RealReference(store, base_data.windows)  # the base model's split

    # Label accuracy (timestamp labels).
    rows: list[list[Any]] = []
    conditioned = [v["name"] for v in rendered.manifest["videos"] if v["name"] in rendered.cond]
    if labels.kind == "timestamps" and conditioned:
        train_rows, val_rows = real.windows.train_frames, real.windows.val_frames
        classifier = train_classifier(store.frames[train_rows], labels.cond[train_rows], labels.names, cfg)
        size = cfg.classifier_size
        generated = label_accuracy(
            classifier,
            np.concatenate([rendered.frames[n] for n in conditioned]),
            np.concatenate([rendered.cond[n] for n in conditioned]),
            labels.names,
            size,
        )
        held_out = label_accuracy(
            classifier, store.frames[val_rows], labels.cond[val_rows], labels.names, size
        )
        metrics["label_accuracy"] = {"generated": generated, "real_heldout": held_out}
        rows = [[g, generated[g], held_out.get(g, float("nan"))] for g in generated]
    _csv(plots / "label_accuracy.csv", ["group", "generated", "real_heldout"], rows)

    # Temporal consistency at the size of the generated videos.
    size = int(rendered.manifest["models"][-1]["size"])
    real_diff = real.temporal_difference(size)
    temporal, per_pair = temporal_consistency(rendered, real_diff)
    metrics["temporal"] = {**temporal, "real_difference": real_diff}
    _csv(
        plots / "temporal.csv",
        ["pair", "generated", "real"],
        [[i + 1, float(d), real_diff] for i, d in enumerate(per_pair)],
    )

    # Upsampler fidelity on held-out real clips.
    fidelity = {}
    for name, (model, data) in opened.items():
        if model.is_upsampler:
            idx = data.windows.rows(data.windows.val_starts(cfg.fidelity_clips))
            clips = np.stack([np.asarray(store.frames[row]) for row in idx])
            cond = labels.cond[idx] if model.labels.conditioned else None
            fidelity[name] = upsampler_fidelity(model, clips, cond, cfg.seed, device)
    if fidelity:
        metrics["upsampler"] = fidelity
    _csv(
        plots / "upsampler.csv",
        ["model", "psnr", "bicubic_psnr", "ssim", "bicubic_ssim"],
        [[n, f["psnr"], f["bicubic_psnr"], f["ssim"], f["bicubic_ssim"]] for n, f in fidelity.items()],
    )

    # Pose fidelity of pose-driven videos, next to the real held-out frames (the ceiling).
    rows = []
    posed = [v["name"] for v in rendered.manifest["videos"] if v["request"] == "pose"]
    if labels.kind == "pose" and posed:
        from vdlib.pose import load_pose_model

        pose_model = load_pose_model(pose_cfg)
        per_video = {
            n: pose_fidelity(
                pose_model, rendered.frames[n], rendered.cond[n].reshape(len(rendered.frames[n]), -1, 3),
                pose_cfg,
            )
            for n in posed
        }  # fmt: skip
        val_rows = real.windows.val_frames
        real_frames = np.asarray(store.frames[val_rows])
        asked = labels.cond[val_rows].reshape(len(val_rows), -1, 3)
        references = {
            # The real frames at the generated size: the pose model's agreement with itself.
            "real_heldout": resize_frames(real_frames, size),
            # ...and as the base model's resolution shows them (down to its size, back up bilinear):
            # what a perfect base model would give before the upsamplers add detail.
            "real_heldout_at_base": resize_frames(resize_frames(real_frames, base_model.size), size),
        }
        ceilings = {k: pose_fidelity(pose_model, v, asked, pose_cfg) for k, v in references.items()}
        metrics["pose"] = {**_pooled(list(per_video.values())), **ceilings}
        rows = [
            [name, r["keypoint_distance"], r["person_found"]]
            for name, r in [*per_video.items(), *ceilings.items()]
        ]
    _csv(plots / "pose.csv", ["video", "keypoint_distance", "person_found"], rows)

    metrics["sampling"] = sampling_cost(rendered)
    write_json(metrics, out_dir / "metrics.json")
    return metrics
