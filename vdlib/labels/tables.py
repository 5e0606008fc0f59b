"""Timestamp tables: time ranges → multi-hot per-frame labels.

A timestamp table is a CSV with columns ``start,end,label`` and optional ``group`` and ``video``;
times are seconds (``12.5``) or ``[HH:]MM:SS(.fff)``, within the video. ``video`` names the video a
row belongs to (its name in the frame store: the file stem, e.g. ``cat`` for ``cat.mp4``); it may be
left out when the store holds one video. A range covers [start, end). Each group's labels get one
slot of ``cond`` each (multi-hot: overlapping ranges in a group set several slots); frames outside
every range of a group get zeros there. Names are ``group=label``, ordered by first appearance.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdlib.core.common import VdlibError
from vdlib.data.frames import FrameStore
from vdlib.labels import Labels

DEFAULT_GROUP = "label"
REQUIRED_COLUMNS = ("start", "end", "label")
_TIME_RE = re.compile(r"^(?:(?:(?P<h>\d+):)?(?P<m>\d{1,2}):)?(?P<s>\d+(?:\.\d*)?)$")


class LabelRangeWarning(UserWarning):
    """A table range that no stored frame falls into."""


def parse_time(text: str) -> float:
    """Seconds from ``12.5``, ``01:02.5`` or ``1:02:03.250``; ``ValueError`` otherwise."""
    match = _TIME_RE.match(text.strip())
    if not match:
        raise ValueError(text)
    hours = int(match["h"] or 0)
    minutes = int(match["m"] or 0)
    seconds = float(match["s"])
    if match["m"] is not None and seconds >= 60:
        raise ValueError(text)
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class LabelRange:
    """One row of a timestamp table."""

    start: float
    end: float
    label: str
    group: str
    where: str  # "file:line", for messages
    video: str | None = None  # the video it belongs to; None: the store's only video


def read_table(path: str | Path) -> list[LabelRange]:
    """Read and validate one timestamp table; errors name the file, the line and the field."""
    path = Path(path)
    if not path.is_file():
        raise VdlibError(f"{path}: no such timestamp table")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise VdlibError(f"{path}: empty table (expected a header start,end,label[,group])")
        columns = [c.strip().lower() for c in header]
        for name in REQUIRED_COLUMNS:
            if name not in columns:
                raise VdlibError(
                    f"{path}:1: missing column '{name}' "
                    f"(expected columns start,end,label[,group], got {','.join(columns)})"
                )
        col = {name: columns.index(name) for name in (*REQUIRED_COLUMNS, "group", "video") if name in columns}
        rows: list[LabelRange] = []
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{line}"
            if len(row) < len(columns):
                raise VdlibError(
                    f"{where}: expected {len(columns)} fields ({','.join(columns)}), got {len(row)}"
                )
            values = {name: row[i].strip() for name, i in col.items()}
            times = {}
            for name in ("start", "end"):
                try:
                    times[name] = parse_time(values[name])
                except ValueError:
                    raise VdlibError(
                        f"{where}: {name}: cannot parse {values[name]!r} as seconds or HH:MM:SS(.fff)"
                    ) from None
            if times["end"] <= times["start"]:
                raise VdlibError(
                    f"{where}: end {values['end']} is not after start {values['start']} "
                    f"(label {values['label']!r})"
                )
            if not values["label"]:
                raise VdlibError(f"{where}: label: empty label name")
            group = values.get("group") or DEFAULT_GROUP
            if "=" in values["label"] or "=" in group or "," in values["label"]:
                raise VdlibError(f"{where}: label and group names may not contain '=' or ','")
            rows.append(
                LabelRange(
                    times["start"], times["end"], values["label"], group, where, values.get("video") or None
                )
            )
    if not rows:
        raise VdlibError(f"{path}: table has a header but no rows")
    return rows


def cond_from_ranges(
    ranges: list[LabelRange],
    names: list[str],
    times: np.ndarray,
    videos: np.ndarray | None = None,
    video_names: list[str] | None = None,
) -> tuple[np.ndarray, list[LabelRange]]:
    """Multi-hot (len(times), len(names)) vectors: a frame at time t gets every range with
    start <= t < end (of its video, when ``videos`` gives each frame's video number and a range
    names one of ``video_names``). Also returns the ranges no time falls into. Every range's
    ``group=label`` must be in ``names``."""
    slot = {n: i for i, n in enumerate(names)}
    cond = np.zeros((len(times), len(names)), dtype=np.float32)
    missed = []
    for r in ranges:
        hit = (times >= r.start) & (times < r.end)
        if r.video is not None and videos is not None and video_names is not None:
            hit &= videos == video_names.index(r.video)
        if hit.any():
            cond[hit, slot[f"{r.group}={r.label}"]] = 1.0
        else:
            missed.append(r)
    return cond, missed


def label_names(ranges: list[LabelRange]) -> list[str]:
    """The ``group=label`` names of ``ranges``: each group's labels together, groups and labels in
    order of first appearance."""
    names = list(dict.fromkeys(f"{r.group}={r.label}" for r in ranges))
    group_order = list(dict.fromkeys(n.partition("=")[0] for n in names))
    return [n for g in group_order for n in names if n.partition("=")[0] == g]


def timestamp_labels(store: FrameStore, tables: list[str | Path]) -> Labels:
    """Multi-hot labels for every frame of ``store`` from one or more timestamp tables.

    Warns (``LabelRangeWarning``) for each range that no stored frame falls into, e.g. a range past
    the video's end.
    """
    if not tables:
        raise VdlibError("timestamp labels need at least one table (labels.tables)")
    ranges = [r for table in tables for r in read_table(table)]
    names = label_names(ranges)
    videos = store.video_names
    for r in ranges:
        if r.video is None and len(videos) > 1:
            raise VdlibError(
                f"{r.where}: video: the frame store holds {len(videos)} videos ({', '.join(videos)}); "
                "add a 'video' column naming the video of each row"
            )
        if r.video is not None and r.video not in videos:
            raise VdlibError(
                f"{r.where}: video: {r.video!r} is not a video of the frame store "
                f"(valid videos: {', '.join(videos)})"
            )
    times = np.asarray(store.times, dtype=np.float64)
    cond, missed = cond_from_ranges(ranges, names, times, store.videos, videos)
    first, last = store.span_s
    for r in missed:
        where = "past the video's end" if r.start >= last else "between stored frames"
        if r.end <= first:
            where = "before the first stored frame"
        warnings.warn(
            f"{r.where}: range {r.start:g}-{r.end:g} s of {r.group}={r.label} lies {where} "
            f"(frames cover {first:g}-{last:g} s); no frame gets it",
            LabelRangeWarning,
            stacklevel=2,
        )
    return Labels("timestamps", names, times, cond, source=[str(t) for t in tables])
