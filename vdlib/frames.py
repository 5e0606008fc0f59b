"""The frame store: ``frames.npy`` (uint8, N x S x S x 3, memory-mapped) plus ``index.parquet``.

``index.parquet`` holds one row per frame (``frame``, ``time_s``); its metadata holds how the store
was made (source, fps, size, padding, trim). Random clip access is O(1) without decoding.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vdlib.errors import VdlibError

FRAMES_FILE = "frames.npy"
INDEX_FILE = "index.parquet"
META_KEY = b"vdlib"


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

    def __init__(self, folder: str | Path, size: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.size = size
        self.frame_bytes = size * size * 3
        self.file = open(self.folder / FRAMES_FILE, "wb")  # noqa: SIM115 (closed by close/abort)
        self._header_len = len(_npy_header((10**12 - 1, size, size, 3)))
        self.file.write(_npy_header((0, size, size, 3)).ljust(self._header_len, b"\0"))

    @property
    def count(self) -> int:
        """Whole frames in the file so far."""
        self.file.flush()
        return (os.fstat(self.file.fileno()).st_size - self._header_len) // self.frame_bytes

    def close(self, times: np.ndarray, meta: dict[str, Any]) -> None:
        """Finish ``frames.npy`` and write ``index.parquet`` with one time per frame and ``meta``."""
        count = self.count
        if len(times) != count:
            raise ValueError(f"{len(times)} timestamps for {count} frames")
        header = _npy_header((count, self.size, self.size, 3))
        if len(header) != self._header_len:
            raise ValueError("frame store header length changed; too many frames")
        self.file.seek(0)
        self.file.write(header)
        self.file.close()
        table = pa.table(
            {"frame": pa.array(np.arange(count), pa.int64()), "time_s": pa.array(times, pa.float64())}
        )
        meta = {**meta, "size": self.size, "frames": count}
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
    times: np.ndarray
    meta: dict[str, Any]

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
        if (
            frames.dtype != np.uint8
            or frames.ndim != 4
            or frames.shape[3] != 3
            or frames.shape[1] != frames.shape[2]
        ):
            raise VdlibError(f"{path / FRAMES_FILE}: expected uint8 frames (N, S, S, 3), got {frames.shape}")
        if table.num_rows != len(frames):
            raise VdlibError(
                f"{path / INDEX_FILE}: {table.num_rows} rows for {len(frames)} frames in {FRAMES_FILE}"
            )
        raw = (table.schema.metadata or {}).get(META_KEY, b"{}")
        return cls(path=path, frames=frames, times=table.column("time_s").to_numpy(), meta=json.loads(raw))

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> int:
        """Side of the stored square frames, in pixels."""
        return int(self.frames.shape[1])

    @property
    def fps(self) -> float:
        """Sampling rate the frames were extracted at."""
        return float(self.meta.get("fps", 0.0))

    @property
    def span_s(self) -> tuple[float, float]:
        """The source time covered, [first frame, last frame + one frame interval)."""
        if len(self) == 0:
            return (0.0, 0.0)
        step = 1.0 / self.fps if self.fps else 0.0
        return (float(self.times[0]), float(self.times[-1]) + step)


@dataclass(frozen=True)
class ClipWindows:
    """Clips of X frames taken from N consecutive stored frames, skipping M between picks.

    The store splits into a training part and a held-out tail (``val_fraction`` of the frames, and
    at least one window) that training never sees.
    """

    total: int
    window: int  # N
    skip: int  # M
    val_fraction: float

    @property
    def frames(self) -> int:
        """X = ceil(N / (M + 1))."""
        return -(-self.window // (self.skip + 1))

    @property
    def n_val(self) -> int:
        """Frames in the held-out tail."""
        return max(self.window, int(np.ceil(self.total * self.val_fraction)))

    @property
    def n_train(self) -> int:
        """Frames in the training part."""
        return self.total - self.n_val

    def check(self, store: str, prefix: str) -> None:
        """Raise a one-line error naming the keys if the store is too short for these windows."""
        if self.n_train < self.window:
            raise VdlibError(
                f"{prefix}.window: clips need {self.window} consecutive frames, but {store} has "
                f"{self.total} frames of which {self.n_val} are held out (train.val_fraction="
                f"{self.val_fraction:g}, at least one window); use a longer video, a higher extract.fps "
                f"or a smaller {prefix}.window"
            )

    def indices(self, start: int) -> np.ndarray:
        """Stored-frame numbers of the clip beginning at ``start``."""
        return start + np.arange(self.frames) * (self.skip + 1)

    def rows(self, starts: list[int] | np.ndarray) -> np.ndarray:
        """Stored-frame numbers (len(starts), X) of the clips beginning at ``starts``."""
        return np.stack([self.indices(int(s)) for s in starts])

    @property
    def train_starts(self) -> int:
        """Number of possible training clip starts (0 .. train_starts - 1)."""
        return self.n_train - self.window + 1

    def val_starts(self, count: int) -> np.ndarray:
        """Up to ``count`` evenly spaced clip starts inside the held-out tail."""
        first, last = self.n_train, self.total - self.window
        return np.unique(np.linspace(first, last, num=max(1, count)).round().astype(int))
