"""The label classifier evaluate scores generated frames with: a small CNN trained on the real
labelled frames before the held-out tails, one softmax head per label group.

- label accuracy: how often it reads the requested label on generated frames, next to how often it
  reads the true label on real held-out frames (its ceiling);
- identity stability: of consecutive frame pairs whose label should stay the same, the share on
  which it reads the same label in both frames, next to the same share on real held-out clips. An
  object that turns into another from frame to frame (a video that boils through identities) scores
  low even when each frame alone shows some valid label.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from vdlib.config import EvaluateConfig
from vdlib.core.common import progress
from vdlib.models.upscale import resize_clip, to_model_range


def classifier_input(frames: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W, 3) uint8 frames → (N, 3, h, w) float in [-1, 1], as the classifier reads them: at
    their aspect, the shorter side ``size`` pixels (the classifier pools over space, so any shape)."""
    height, width = frames.shape[1:3]
    shape = (round(height * size / min(height, width)), round(width * size / min(height, width)))
    return resize_clip(to_model_range(frames), shape).transpose(0, 1)


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
    """Label-preserving changes to (B, 3, H, W) frames in [-1, 1], drawn from ``gen``: shifts of up
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
    """Fit a :class:`FrameClassifier` to real (N, H, W, 3) frames and their labels (deterministic),
    on :func:`augment_frames` versions of them."""
    groups = group_slices(names)
    x = classifier_input(frames, cfg.classifier_size)
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
def predict(classifier: FrameClassifier, frames: np.ndarray, size: int) -> np.ndarray:
    """(N, groups) class index the classifier reads in each frame (a group's last index: none)."""
    chunks = [classifier(classifier_input(frames[i : i + 256], size)) for i in range(0, len(frames), 256)]
    per_group = [torch.cat([chunk[g] for chunk in chunks]) for g in range(len(classifier.groups))]
    return torch.stack([logits.argmax(1) for logits in per_group], dim=1).numpy()


def targets(cond: np.ndarray, names: list[str]) -> np.ndarray:
    """(N, groups) class index of each frame's labels (-1: none or several labels of the group)."""
    return np.stack([group_targets(cond, slots) for slots in group_slices(names).values()], axis=1)


def accuracy(predicted: np.ndarray, target: np.ndarray, names: list[str]) -> dict[str, float]:
    """Per group: the share of frames with exactly one label of the group whose label was read."""
    out = {}
    for g, group in enumerate(group_slices(names)):
        scored = target[:, g] >= 0
        if scored.any():
            out[group] = float((predicted[scored, g] == target[scored, g]).mean())
    return out


def identity_stability(
    predicted: list[np.ndarray], target: list[np.ndarray], names: list[str]
) -> dict[str, float]:
    """Per group: of consecutive frame pairs within each clip (``predicted``/``target``: one (K,
    groups) array per clip) whose target label stays the same, the share read as one label in both."""
    groups = list(group_slices(names))
    same, total = np.zeros(len(groups)), np.zeros(len(groups))
    for p, t in zip(predicted, target, strict=True):
        kept = (t[1:] == t[:-1]) & (t[1:] >= 0)
        same += ((p[1:] == p[:-1]) & kept).sum(0)
        total += kept.sum(0)
    return {g: float(same[i] / total[i]) for i, g in enumerate(groups) if total[i]}


def label_accuracy(
    classifier: FrameClassifier, frames: np.ndarray, cond: np.ndarray, names: list[str], size: int
) -> dict[str, float]:
    """:func:`accuracy` of the classifier on (N, H, W, 3) ``frames`` asked to show ``cond``."""
    return accuracy(predict(classifier, frames, size), targets(cond, names), names)
