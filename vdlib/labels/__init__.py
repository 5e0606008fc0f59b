"""Per-frame labels as later stages see them: the :class:`Labels` of a frame store and its Parquet
file, and the labels a trained model knows.

The Parquet file has one row per stored frame: ``frame``, ``time_s``, ``cond`` (fixed-size list of
float32) and, for pose labels, ``person``; its metadata holds the kind, the names and the source.
Timestamp tables (``vdlib.labels.tables``) and the pose model (``vdlib.labels.pose``) make them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vdlib.core.common import VdlibError, atomic_output
from vdlib.data.frames import FrameStore

META_KEY = b"vdlib"


@dataclass
class Labels:
    """Labels for every frame of a store."""

    kind: str  # none | timestamps | pose
    names: list[str]
    time_s: np.ndarray  # (N,) float64
    cond: np.ndarray  # (N, D) float32
    person: np.ndarray | None = None  # (N,) int8, pose only
    source: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cond = np.asarray(self.cond, dtype=np.float32).reshape(len(self.time_s), len(self.names))

    def __len__(self) -> int:
        return len(self.time_s)

    @property
    def dim(self) -> int:
        """Length of each frame's ``cond`` vector."""
        return len(self.names)

    @property
    def groups(self) -> dict[str, list[str]]:
        """Label names per group, in ``cond`` order (``{'shape': ['circle', ...], ...}``)."""
        out: dict[str, list[str]] = {}
        for name in self.names:
            group, _, label = name.partition("=")
            out.setdefault(group, []).append(label)
        return out


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


def no_labels(store: FrameStore) -> Labels:
    """An empty (D = 0) label file, so later stages see one format whatever ``labels.kind`` is."""
    return Labels("none", [], np.asarray(store.times, dtype=np.float64), np.zeros((len(store), 0)))


def write_labels(labels: Labels, path: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
    """Write ``labels`` to a Parquet file atomically."""
    n, d = labels.cond.shape
    columns: dict[str, pa.Array] = {
        "frame": pa.array(np.arange(n), pa.int64()),
        "time_s": pa.array(labels.time_s, pa.float64()),
        # Arrow has no zero-length fixed-size list: label-free files store empty lists.
        "cond": (
            pa.FixedSizeListArray.from_arrays(pa.array(labels.cond.reshape(-1), pa.float32()), d)
            if d
            else pa.array([[]] * n, pa.list_(pa.float32()))
        ),
    }
    if labels.person is not None:
        columns["person"] = pa.array(labels.person.astype(np.int8), pa.int8())
    meta = {"kind": labels.kind, "names": labels.names, "source": labels.source, **(extra_meta or {})}
    table = pa.table(columns).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    path = Path(path)
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_labels(path: str | Path) -> Labels:
    """Read a labels Parquet file written by :func:`write_labels`, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise VdlibError(f"{path}: no such labels file (run `vdlib labels ...` or the labels stage)")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise VdlibError(f"{path}: not a readable Parquet file ({exc})") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None or "cond" not in table.column_names:
        raise VdlibError(f"{path}: not a vdlib labels file (no 'cond' column or vdlib metadata)")
    meta = json.loads(raw)
    cond_type = table.schema.field("cond").type
    d = cond_type.list_size if pa.types.is_fixed_size_list(cond_type) else 0
    flat = table.column("cond").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    cond = flat.reshape(table.num_rows, d).astype(np.float32)
    person = table.column("person").to_numpy() if "person" in table.column_names else None
    return Labels(
        kind=meta["kind"],
        names=list(meta["names"]),
        time_s=table.column("time_s").to_numpy(),
        cond=cond,
        person=person,
        source=list(meta.get("source", [])),
    )


def label_summary(labels: Labels) -> dict[str, Any]:
    """Numbers a user checks first: frames, label dimension, share of frames per label or with a person."""
    summary: dict[str, Any] = {"kind": labels.kind, "frames": len(labels), "dim": labels.dim}
    if labels.kind == "timestamps":
        summary["unlabelled_fraction"] = float((labels.cond.sum(1) == 0).mean()) if len(labels) else 0.0
        summary["label_fraction"] = {
            name: round(float(v), 4) for name, v in zip(labels.names, labels.cond.mean(0), strict=True)
        }
    if labels.person is not None:
        summary["person_fraction"] = round(float(labels.person.mean()), 4) if len(labels) else 0.0
    return summary
