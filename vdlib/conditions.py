"""What to generate, as the per-frame label vectors a model was trained on.

Three ways to ask, each giving a (K, D) array for K output frames:
- label text, the same for every frame: ``"shape=circle,colour=red"`` (a bare ``circle`` works when
  only one group has it);
- a timeline: a timestamp table (``start,end,label[,group]``) in output time;
- poses: the keypoints of another clip, from a video (run through the pose model) or a pose labels
  Parquet file.

Requests are checked against the label names stored with the model; errors list the valid names.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdlib.config import ExtractConfig, PoseConfig
from vdlib.errors import VdlibError
from vdlib.labels import LabelRangeWarning, cond_from_ranges, read_labels, read_table


@dataclass(frozen=True)
class ModelLabels:
    """The labels a model was trained with (from its ``config.json``)."""

    kind: str  # none | timestamps | pose
    names: list[str]
    where: str  # the model folder, for messages

    @property
    def conditioned(self) -> bool:
        return self.kind != "none" and bool(self.names)

    def valid(self) -> str:
        return ", ".join(self.names)


@dataclass(frozen=True)
class Request:
    """One video to generate: a name for its files and its per-frame labels (None: unconditioned)."""

    name: str
    cond: np.ndarray | None  # (K, D) float32
    kind: str = "none"  # none | labels | timeline | pose


def _needs(model: ModelLabels, kind: str, what: str) -> None:
    if not model.conditioned:
        raise VdlibError(
            f"{what}: {model.where} was trained without labels (labels.kind: none); "
            "generate without labels or retrain with labels"
        )
    if kind == "pose" and model.kind != "pose":
        raise VdlibError(
            f"{what}: {model.where} was trained on {model.kind} labels, not poses "
            f"(valid labels: {model.valid()})"
        )
    if kind == "timestamps" and model.kind != "timestamps":
        raise VdlibError(
            f"{what}: {model.where} was trained on {model.kind} labels; use --pose-from for a pose model"
        )


def parse_labels(text: str, model: ModelLabels, what: str = "--labels") -> np.ndarray:
    """The (D,) multi-hot vector for ``"group=label,group=label"`` (a bare ``label`` if unambiguous)."""
    _needs(model, "timestamps", what)
    vector = np.zeros(len(model.names), dtype=np.float32)
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise VdlibError(f"{what}: no labels in {text!r} (valid labels: {model.valid()})")
    for item in items:
        if "=" in item:
            group, _, label = item.partition("=")
            name = f"{group.strip()}={label.strip()}"
            matches = [name] if name in model.names else []
        else:
            matches = [n for n in model.names if n.partition("=")[2] == item]
        if len(matches) != 1:
            problem = "is ambiguous" if matches else "is not a label of this model"
            raise VdlibError(f"{what}: {item!r} {problem} (valid labels: {model.valid()})")
        vector[model.names.index(matches[0])] = 1.0
    return vector


def timeline_cond(path: str | Path, model: ModelLabels, frames: int, fps: float) -> np.ndarray:
    """(frames, D) labels from a timestamp table in output time (frame i is at i / fps seconds)."""
    _needs(model, "timestamps", str(path))
    ranges = read_table(path)
    for r in ranges:
        if f"{r.group}={r.label}" not in model.names:
            raise VdlibError(
                f"{r.where}: {r.group}={r.label} is not a label of {model.where} "
                f"(valid labels: {model.valid()})"
            )
    times = np.arange(frames) / fps
    cond, missed = cond_from_ranges(ranges, model.names, times)
    for r in missed:
        warnings.warn(
            f"{r.where}: range {r.start:g}-{r.end:g} s of {r.group}={r.label} is outside the "
            f"{frames} frames at {fps:g} fps ({frames / fps:g} s); no frame gets it",
            LabelRangeWarning,
            stacklevel=2,
        )
    return cond


def pose_cond(
    source: str | Path, model: ModelLabels, frames: int, fps: float, pose: PoseConfig, size: int = 128
) -> np.ndarray:
    """(frames, 51) keypoints for ``frames`` output frames at ``fps`` from a pose labels Parquet file or
    a video (its frames extracted at ``fps`` and ``size`` pixels, then run through the pose model)."""
    _needs(model, "pose", str(source))
    source = Path(source)
    if source.suffix == ".parquet":
        labels = read_labels(source)
        if labels.kind != "pose":
            raise VdlibError(f"{source}: holds {labels.kind} labels, expected pose labels")
        wanted = labels.time_s[0] + np.arange(frames) / fps
        idx = np.searchsorted(labels.time_s, wanted - 1e-6)
        if len(labels) == 0 or idx[-1] >= len(labels):
            span = labels.time_s[-1] - labels.time_s[0] if len(labels) else 0.0
            raise VdlibError(
                f"{source}: covers {span:g} s, too short for {frames} frames at {fps:g} fps "
                f"({frames / fps:g} s); use fewer --frames"
            )
        return labels.cond[idx]
    from vdlib.extract import extract_frames
    from vdlib.frames import FrameStore
    from vdlib.pose import pose_labels

    with tempfile.TemporaryDirectory(prefix="vdlib-pose-") as tmp:
        store_dir = Path(tmp) / "frames"
        extract_frames(source, store_dir, ExtractConfig(size=size, fps=fps))
        store = FrameStore.open(store_dir)
        if len(store) < frames:
            raise VdlibError(
                f"{source}: gives {len(store)} frames at {fps:g} fps, {frames} asked; use fewer --frames"
            )
        labels = pose_labels(store, pose)
        return labels.cond[:frames].copy()


def slug(text: str) -> str:
    """A file-name-safe form of a label request: ``shape=circle,colour=red`` → ``circle-red``."""
    parts = [item.partition("=")[2] or item for item in text.split(",") if item.strip()]
    cleaned = "-".join("".join(c if c.isalnum() else "_" for c in p.strip()) for p in parts)
    return cleaned or "labels"


def build_requests(
    model: ModelLabels,
    frames: int,
    fps: float,
    labels: list[str],
    timelines: list[str],
    pose_from: list[str],
    pose: PoseConfig,
    size: int = 128,
) -> list[Request]:
    """One request per label text, timeline and pose source; one unconditioned request if none."""
    requests = [
        Request(slug(text), np.tile(parse_labels(text, model), (frames, 1)), "labels") for text in labels
    ]
    requests += [Request(Path(t).stem, timeline_cond(t, model, frames, fps), "timeline") for t in timelines]
    requests += [
        Request(f"pose-{Path(p).stem}", pose_cond(p, model, frames, fps, pose, size), "pose")
        for p in pose_from
    ]
    if not requests:
        requests = [Request("unconditioned", None)]
    names = [r.name for r in requests]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise VdlibError(f"two videos would both be named {dupes[0]!r}; give each request once")
    return requests
