"""The frame store: ``frames.npy`` (uint8, N x H x W x 3, memory-mapped) plus ``index.parquet``.

``index.parquet`` holds one row per frame (``frame``, ``video``, ``time_s``): the number of the
video it comes from (stores can hold many videos, one after the other) and its time within that
video. Its metadata holds how the store was made (fps, shape, aspect, padding, trim) and the list of videos
(``videos``: name, source size, duration). Random clip access is O(1) without decoding.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vdlib.config import clip_frames
from vdlib.core.common import VdlibError

FRAMES_FILE = "frames.npy"
INDEX_FILE = "index.parquet"
META_KEY = b"vdlib"


def evenly_spaced(items: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` of ``items``, evenly spaced from the first to the last (all of them when fewer)."""
    picks = np.unique(np.linspace(0, len(items) - 1, num=min(len(items), count)).round().astype(int))
    return items[picks]


def shape_at(stored: tuple[int, int], side: int, where: str = "") -> tuple[int, int]:
    """The (height, width) of frames whose shorter side is ``side`` pixels, at the aspect of frames
    ``stored`` (height, width). Raises ``VdlibError`` when that shape is not whole pixels."""
    h, w = stored
    short = min(h, w)
    if (h * side) % short or (w * side) % short:
        raise VdlibError(
            f"{where or 'frame size'}: {side} px frames of the stored {h}x{w} (height x width) are not "
            f"whole pixels; use a size that divides into {short} the way {h} and {w} do (a multiple of 8 "
            "fits every shape extract.aspect: keep makes)"
        )
    return h * side // short, w * side // short


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf,
        {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape},
    )
    return buf.getvalue()


class FrameStoreWriter:
    """Build a new store folder frame by frame, without holding frames in memory.

    ``file`` is positioned after the ``.npy`` header, ready for raw frames (ffmpeg writes them
    straight into it). The header is written first with a placeholder
    count and rewritten by :meth:`close`; numpy pads headers to 64 bytes, so both have the same
    length for any count below 10^12.
    """

    def __init__(self, folder: str | Path, shape: tuple[int, int]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shape = (int(shape[0]), int(shape[1]))
        self.frame_bytes = self.shape[0] * self.shape[1] * 3
        self.file = open(self.folder / FRAMES_FILE, "wb")  # noqa: SIM115 (closed by close/abort)
        self._header_len = len(_npy_header((10**12 - 1, *self.shape, 3)))
        self.file.write(_npy_header((0, *self.shape, 3)).ljust(self._header_len, b"\0"))

    @property
    def count(self) -> int:
        """Whole frames in the file so far."""
        self.file.flush()
        return (os.fstat(self.file.fileno()).st_size - self._header_len) // self.frame_bytes

    def close(self, times: np.ndarray, meta: dict[str, Any], videos: np.ndarray | None = None) -> None:
        """Finish ``frames.npy`` and write ``index.parquet`` with one time (and video number) per
        frame and ``meta``."""
        count = self.count
        if len(times) != count:
            raise ValueError(f"{len(times)} timestamps for {count} frames")
        videos = np.zeros(count, dtype=np.int32) if videos is None else np.asarray(videos, np.int32)
        header = _npy_header((count, *self.shape, 3))
        if len(header) != self._header_len:
            raise ValueError("frame store header length changed; too many frames")
        self.file.seek(0)
        self.file.write(header)
        self.file.close()
        table = pa.table(
            {
                "frame": pa.array(np.arange(count), pa.int64()),
                "video": pa.array(videos, pa.int32()),
                "time_s": pa.array(times, pa.float64()),
            }
        )
        meta = {**meta, "size": min(self.shape), "shape": list(self.shape), "frames": count}
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
        pq.write_table(table, self.folder / INDEX_FILE)

    def abort(self) -> None:
        """Close the file handle after a failure (the caller removes the folder)."""
        self.file.close()


@dataclass
class FrameStore:
    """A read-only view of a frame store folder."""

    path: Path
    frames: np.ndarray
    times: np.ndarray  # (N,) seconds within each frame's video
    meta: dict[str, Any]
    videos: np.ndarray  # (N,) the number of the video each frame comes from (0 .. len(video_names)-1)

    @classmethod
    def open(cls, path: str | Path) -> FrameStore:
        """Open ``path`` (memory-mapped); raise ``VdlibError`` if it is not a complete frame store."""
        path = Path(path)
        if not path.is_dir():
            raise VdlibError(f"{path}: no frame store here (expected a folder made by `vdlib extract`)")
        for name in (FRAMES_FILE, INDEX_FILE):
            if not (path / name).is_file():
                raise VdlibError(f"{path}: not a frame store (missing {name}); run `vdlib extract` first")
        try:
            frames = np.load(path / FRAMES_FILE, mmap_mode="r")
            table = pq.read_table(path / INDEX_FILE)
        except (ValueError, OSError, pa.ArrowException) as exc:
            raise VdlibError(f"{path}: unreadable frame store ({exc})") from None
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
            raise VdlibError(f"{path / FRAMES_FILE}: expected uint8 frames (N, H, W, 3), got {frames.shape}")
        if table.num_rows != len(frames):
            raise VdlibError(
                f"{path / INDEX_FILE}: {table.num_rows} rows for {len(frames)} frames in {FRAMES_FILE}"
            )
        raw = (table.schema.metadata or {}).get(META_KEY, b"{}")
        if "video" in table.column_names:
            videos = table.column("video").to_numpy().astype(np.int64)
        else:  # stores written before many-video support hold one video
            videos = np.zeros(len(frames), dtype=np.int64)
        if len(videos) and (np.diff(videos) < 0).any():
            raise VdlibError(f"{path / INDEX_FILE}: video numbers must not decrease from frame to frame")
        return cls(
            path=path,
            frames=frames,
            times=table.column("time_s").to_numpy(),
            meta=json.loads(raw),
            videos=videos,
        )

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the stored frames, in pixels."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def size(self) -> int:
        """The stored frames' shorter side, in pixels (``extract.resolution``)."""
        return min(self.shape)

    def shape_at(self, side: int, where: str = "") -> tuple[int, int]:
        """(height, width) of frames at the store's aspect whose shorter side is ``side``."""
        return shape_at(self.shape, side, where)

    @property
    def fps(self) -> float:
        """Sampling rate the frames were extracted at."""
        return float(self.meta.get("fps", 0.0))

    @property
    def video_names(self) -> list[str]:
        """The name of each video in the store, in store order (``video`` numbers index this)."""
        listed = [str(v["name"]) for v in self.meta.get("videos", [])]
        # Stores written before many-video support hold one video, named after their source.
        return listed or [Path(str(self.meta.get("source", "video"))).stem or "video"]

    @property
    def video_lengths(self) -> list[int]:
        """Frames of each video, in store order."""
        return np.bincount(self.videos, minlength=len(self.video_names)).astype(int).tolist()

    @property
    def span_s(self) -> tuple[float, float]:
        """The source time covered, [first frame, last frame + one frame interval)."""
        if len(self) == 0:
            return (0.0, 0.0)
        step = 1.0 / self.fps if self.fps else 0.0
        return (float(self.times.min()), float(self.times.max()) + step)


@dataclass(frozen=True)
class ClipWindows:
    """Clips of X frames taken from N consecutive stored frames of one video, skipping M between picks.

    ``lengths`` are the frames of each video in the store, in store order. Each video splits into a
    training part and a held-out tail (``val_fraction`` of its frames, and at least one window) that
    training never sees, so every video is both trained on and validated. A video too short for a
    window of each is held out whole when it holds one window, and left out when it holds less. A
    window never straddles two videos.
    """

    lengths: tuple[int, ...]
    window: int  # N
    skip: int  # M
    val_fraction: float

    @classmethod
    def for_store(cls, store: FrameStore, window: int, skip: int, val_fraction: float) -> ClipWindows:
        """The windows over every video of ``store``."""
        return cls(tuple(store.video_lengths), window, skip, val_fraction)

    @property
    def frames(self) -> int:
        """X = ceil(N / (M + 1))."""
        return clip_frames(self.window, self.skip)

    def split(self, video: int) -> tuple[int, int]:
        """(training frames, held-out frames) of one video."""
        n = self.lengths[video]
        if n < self.window:
            return 0, 0
        if n < 2 * self.window:
            return 0, n
        n_val = max(self.window, int(np.ceil(n * self.val_fraction)))
        return n - n_val, n_val

    @property
    def offsets(self) -> list[int]:
        """The first stored frame of each video."""
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(int).tolist()

    def _parts(self, held_out: bool) -> list[np.ndarray]:
        parts = []
        for v, first in enumerate(self.offsets):
            n_train, n_val = self.split(v)
            lo = first + n_train if held_out else first
            parts.append(np.arange(lo, lo + (n_val if held_out else n_train)))
        return parts

    @cached_property
    def train_frames(self) -> np.ndarray:
        """Stored-frame numbers that training may read, in store order."""
        return np.concatenate(self._parts(False)).astype(int)

    @cached_property
    def held_out_parts(self) -> list[np.ndarray]:
        """Stored-frame numbers of each video's held-out tail, one array per video."""
        return self._parts(True)

    @cached_property
    def val_frames(self) -> np.ndarray:
        """Stored-frame numbers of the held-out tails (every video's), in store order."""
        return np.concatenate(self._parts(True)).astype(int)

    def _starts(self, held_out: bool) -> list[np.ndarray]:
        return [part[: max(0, len(part) - self.window + 1)] for part in self._parts(held_out)]

    @cached_property
    def train_starts(self) -> np.ndarray:
        """Every possible training clip start (a window inside one video's training part)."""
        return np.concatenate(self._starts(False)).astype(int)

    def check(self, store: str, prefix: str) -> None:
        """Raise a one-line error naming the keys if the store is too short for these windows."""
        if not len(self.train_starts):
            longest = max(self.lengths, default=0)
            raise VdlibError(
                f"{prefix}.window: clips need {self.window} consecutive frames of one video and the "
                f"held-out tail at least one more window, but the longest video in {store} has {longest} "
                f"frames (train.val_fraction={self.val_fraction:g}); use a longer video, a higher "
                f"extract.fps or a smaller {prefix}.window"
            )

    def indices(self, start: int) -> np.ndarray:
        """Stored-frame numbers of the clip beginning at ``start``."""
        return start + np.arange(self.frames) * (self.skip + 1)

    def rows(self, starts: list[int] | np.ndarray) -> np.ndarray:
        """Stored-frame numbers (len(starts), X) of the clips beginning at ``starts``."""
        return np.stack([self.indices(int(s)) for s in starts])

    def val_starts(self, count: int) -> np.ndarray:
        """Up to ``count`` evenly spaced clip starts inside the held-out tails (of every video)."""
        starts = np.concatenate(self._starts(True)).astype(int)
        if not len(starts):
            return starts
        picks = np.linspace(0, len(starts) - 1, num=max(1, count)).round().astype(int)
        return np.unique(starts[picks])
