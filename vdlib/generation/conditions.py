"""What to generate, as the per-frame label vectors a model was trained on.

Three ways to ask, each giving a (K, D) array for K output frames:
- label text, the same for every frame: ``"shape=circle,colour=red"`` (a bare ``circle`` works when
  only one group has it);
- a timeline: a timestamp table (``start,end,label[,group]``) in output time;
- poses: the keypoints of another clip, from a video (run through the pose model) or a pose labels
  Parquet file.

Each of ``render.labels``, ``render.timelines`` and ``render.pose_from`` is a list or ``auto``, which
asks for what fits the model: no labels → ``render.count`` unconditioned videos; timestamp labels →
the label combinations that occur in the labelled frames (most frequent first, at most
``render.count``) and the tables under ``labels/timelines/`` whose labels the model knows; pose
labels → the poses of each video's held-out tail (frames training never saw).

Requests are checked against the label names stored with the model; errors name the param
(``render.labels[2]``) and list the valid names.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vdlib.config import TIMELINES_DIR, ExtractConfig, PoseConfig, RenderConfig, is_auto
from vdlib.core.common import VdlibError
from vdlib.data.frames import FrameStore
from vdlib.labels import Labels, ModelLabels, read_labels
from vdlib.labels.tables import LabelRangeWarning, cond_from_ranges, read_table

if TYPE_CHECKING:  # for annotations only: nothing of it runs here
    from vdlib.generation.cascade import CascadeModel


@dataclass(frozen=True)
class Request:
    """One video to generate: a name for its files and its per-frame labels (None: unconditioned)."""

    name: str
    cond: np.ndarray | None  # (K, D) float32
    kind: str = "none"  # none | labels | timeline | pose
    variant: int = 0  # tells apart requests with the same labels (several unconditioned videos)


def _needs(model: ModelLabels, kind: str, what: str) -> None:
    if not model.conditioned:
        raise VdlibError(
            f"{what}: {model.where} is trained without labels (labels.kind: none); "
            "leave the render requests at auto (unconditioned videos) or train with labels"
        )
    if kind == "pose" and model.kind != "pose":
        raise VdlibError(
            f"{what}: {model.where} is trained on {model.kind} labels, not poses "
            f"(valid labels: {model.valid()})"
        )
    if kind == "timestamps" and model.kind != "timestamps":
        raise VdlibError(
            f"{what}: {model.where} is trained on {model.kind} labels; ask for poses with "
            "render.pose_from (auto: the poses of the held-out frames) or --pose-from"
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


def check_timeline(path: str | Path, model: ModelLabels, what: str) -> list:
    """The ranges of a timeline table, checked against the model's labels."""
    _needs(model, "timestamps", what)
    if not Path(path).is_file():
        raise VdlibError(f"{what}: {path}: no such timeline table")
    ranges = read_table(path)
    for r in ranges:
        if f"{r.group}={r.label}" not in model.names:
            raise VdlibError(
                f"{what}: {r.where}: {r.group}={r.label} is not a label of {model.where} "
                f"(valid labels: {model.valid()})"
            )
    return ranges


def timeline_cond(
    path: str | Path, model: ModelLabels, frames: int, fps: float, what: str | None = None
) -> np.ndarray:
    """(frames, D) labels from a timestamp table in output time (frame i is at i / fps seconds)."""
    ranges = check_timeline(path, model, what or str(path))
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


def check_pose_source(source: str | Path, model: ModelLabels, what: str) -> None:
    """Raise the one-line error when ``source`` cannot drive the model: wrong kind, missing file."""
    _needs(model, "pose", what)
    if not Path(source).is_file():
        raise VdlibError(f"{what}: {source}: no such file (expected a video or a pose labels .parquet)")


def pose_cond(
    source: str | Path,
    model: ModelLabels,
    frames: int,
    fps: float,
    pose: PoseConfig,
    shape: tuple[int, int] = (128, 128),
    what: str | None = None,
) -> np.ndarray:
    """(frames, 51) keypoints for ``frames`` output frames at ``fps`` from a pose labels Parquet file or
    a video (its frames extracted at ``fps`` and fitted into ``shape``, the generated frames' height and
    width, then run through the pose model: keypoints normalised to the frames the model makes)."""
    check_pose_source(source, model, what or str(source))
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
    from vdlib.data.extract import extract_frames
    from vdlib.data.video import FrameFit
    from vdlib.labels.pose import pose_labels

    with tempfile.TemporaryDirectory(prefix="vdlib-pose-") as tmp:
        store_dir = Path(tmp) / "frames"
        extract_frames(source, store_dir, ExtractConfig(fps=fps), FrameFit(*shape))
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


def label_text(row: np.ndarray, names: list[str]) -> str:
    """The request text of one multi-hot row: ``shape=circle,colour=red``."""
    return ",".join(n for n, v in zip(names, row, strict=True) if v > 0.5)


def label_combinations(labels: Labels, count: int) -> list[str]:
    """The label combinations that occur in ``labels`` (frames with at least one label), most
    frequent first (ties: first seen first), at most ``count``."""
    rows = np.asarray(labels.cond) > 0.5
    rows = rows[rows.any(1)]
    if not len(rows):
        return []
    unique, first, counts = np.unique(rows, axis=0, return_index=True, return_counts=True)
    order = sorted(range(len(unique)), key=lambda i: (-counts[i], first[i]))
    return [label_text(unique[i].astype(np.float32), labels.names) for i in order[:count]]


def fitting_timelines(model: ModelLabels, folder: Path = TIMELINES_DIR) -> list[str]:
    """The timeline tables in ``folder`` whose every label the model knows."""
    fitting = []
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        try:
            check_timeline(path, model, str(path))
        except VdlibError:
            continue
        fitting.append(str(path))
    return fitting


@dataclass(frozen=True)
class HeldOut:
    """The frames of each video that training never saw, with their labels: what 'auto' pose
    requests are drawn from."""

    labels: Labels
    videos: list[tuple[str, np.ndarray]]  # (video name, stored-frame rows of its held-out tail)
    stride: int  # stored frames per generated frame (the base model's skip + 1)

    def pose_clip(self, rows: np.ndarray, frames: int) -> np.ndarray:
        """(frames, 51) keypoints every ``stride`` stored frames from the tail ``rows`` (the last pose
        is held when the tail is shorter than the video asked for)."""
        picks = np.minimum(np.arange(frames) * self.stride, len(rows) - 1)
        return self.labels.cond[rows[picks]].copy()


def open_held_out(frames: str | Path, labels_path: str | Path, base: CascadeModel) -> HeldOut:
    """The held-out tails of the frame store ``frames`` as the ``base`` model's training split it."""
    store = FrameStore.open(frames)
    labels = read_labels(labels_path)
    windows = base.windows(store)
    tails = []
    for v, name in enumerate(store.video_names):
        rows = windows.val_frames[store.videos[windows.val_frames] == v]
        if len(rows):
            tails.append((name, rows))
    return HeldOut(labels, tails, base.card.skip + 1)


def _unique_names(requests: list[Request]) -> list[Request]:
    names = [r.name for r in requests]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise VdlibError(f"two videos would both be named {dupes[0]!r}; give each request once")
    return requests


# How messages name entry {i} of each request list (the CLI passes its flags instead).
PARAM_KEYS = {"labels": "render.labels[{i}]", "timelines": "render.timelines[{i}]",
              "pose_from": "render.pose_from[{i}]"}  # fmt: skip


def _key(keys: dict[str, str], name: str, i: int) -> str:
    """How messages name entry ``i`` of a request list: ``render.labels[2]``, or a flag."""
    return keys[name].format(i=i)


def check_requests(cfg: RenderConfig, model: ModelLabels, keys: dict[str, str] = PARAM_KEYS) -> None:
    """Check every explicit request of ``cfg`` against ``model`` without making anything (cheap: what
    the check stage runs before any training). ``keys`` name the lists in messages."""
    if not is_auto(cfg.labels):
        for i, text in enumerate(cfg.labels):
            parse_labels(text, model, _key(keys, "labels", i))
    if not is_auto(cfg.timelines):
        for i, path in enumerate(cfg.timelines):
            check_timeline(path, model, _key(keys, "timelines", i))
    if not is_auto(cfg.pose_from):
        for i, path in enumerate(cfg.pose_from):
            check_pose_source(path, model, _key(keys, "pose_from", i))


def build_requests(
    cfg: RenderConfig,
    model: ModelLabels,
    fps: float,
    pose: PoseConfig,
    shape: tuple[int, int] = (128, 128),
    held_out: HeldOut | None = None,
    timelines_dir: Path = TIMELINES_DIR,
    keys: dict[str, str] = PARAM_KEYS,
) -> list[Request]:
    """The videos ``cfg`` asks for, each with its per-frame labels (see the module's docstring for
    what ``auto`` gives). ``held_out`` is needed for 'auto' on a pose model, and for 'auto' label
    combinations (else only timelines are found)."""
    check_requests(cfg, model, keys)
    frames = cfg.frames
    requests: list[Request] = []
    if not model.conditioned:
        if is_auto(cfg.labels) and is_auto(cfg.timelines) and is_auto(cfg.pose_from):
            requests = [Request(f"unconditioned-{i}", None, variant=i) for i in range(cfg.count)]
        return _unique_names(requests or [Request("unconditioned", None)])
    if model.kind == "timestamps":
        texts = cfg.labels
        if is_auto(texts):
            texts = label_combinations(held_out.labels, cfg.count) if held_out is not None else []
        requests += [
            Request(slug(t), np.tile(parse_labels(t, model, _key(keys, "labels", i)), (frames, 1)), "labels")
            for i, t in enumerate(texts)
        ]
        tables = fitting_timelines(model, timelines_dir) if is_auto(cfg.timelines) else cfg.timelines
        for i, table in enumerate(tables):
            cond = timeline_cond(table, model, frames, fps, _key(keys, "timelines", i))
            requests.append(Request(Path(table).stem, cond, "timeline"))
    if model.kind == "pose":
        if is_auto(cfg.pose_from):
            if held_out is None:
                raise VdlibError(
                    "render.pose_from: auto drives the model with held-out poses, which needs the frame "
                    "store and labels (data/frames, data/labels.parquet); give pose sources instead"
                )
            requests += [
                Request(f"pose-heldout-{name}", held_out.pose_clip(rows, frames), "pose")
                for name, rows in held_out.videos[: cfg.count]
            ]
        else:
            requests += [
                Request(
                    f"pose-{Path(p).stem}",
                    pose_cond(p, model, frames, fps, pose, shape, _key(keys, "pose_from", i)),
                    "pose",
                )
                for i, p in enumerate(cfg.pose_from)
            ]
    if not requests:
        requests = [Request("unconditioned", None)]
    return _unique_names(requests)
