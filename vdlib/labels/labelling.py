"""The labels stage as one function: labels of the kind the params ask for (timestamp tables, the
pose model, or none) for every frame of a store, written with a preview GIF and a summary."""

from __future__ import annotations

from pathlib import Path

from vdlib.config import LabelsConfig
from vdlib.core.common import write_json
from vdlib.data.frames import FrameStore
from vdlib.labels import Labels, label_summary, no_labels, write_labels


def make_labels(store: FrameStore, cfg: LabelsConfig) -> Labels:
    """Labels of the kind ``cfg.kind`` for every frame of ``store``."""
    if cfg.kind == "timestamps":
        from vdlib.labels.tables import timestamp_labels

        return timestamp_labels(store, list(cfg.tables))
    if cfg.kind == "pose":
        from vdlib.labels.pose import pose_labels

        return pose_labels(store, cfg.pose)
    return no_labels(store)


def label_frames(
    frames: str | Path,
    cfg: LabelsConfig,
    out: str | Path,
    preview: str | Path | None = None,
    summary: str | Path | None = None,
) -> Labels:
    """Label the frame store ``frames``; write the Parquet file ``out`` and, when given, a preview GIF
    with the labels drawn on and a JSON summary. Returns the labels."""
    from vdlib.labels.preview import write_preview

    store = FrameStore.open(frames)
    labels = make_labels(store, cfg)
    write_labels(labels, out)
    if preview:
        write_preview(store, labels, preview)
    if summary:
        write_json(label_summary(labels), summary)
    return labels
