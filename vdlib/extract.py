"""Video → frames: decode with ffmpeg (fps, area scale, centred pad) into a frame store or PNG folders."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from vdlib.atomic import atomic_output
from vdlib.config import ExtractConfig
from vdlib.errors import VdlibError
from vdlib.frames import FrameStore, FrameStoreWriter
from vdlib.progress import progress
from vdlib.video import DecodeResult, VideoInfo, check_path, decode_frames, decode_to_file

# A decode counts as short when it yields fewer frames than the probed duration promises, beyond
# this tolerance (the fps filter may round one frame either way at each end).
_SHORT_TOLERANCE_FRAMES = 2

# run(result, report) decodes the video, filling ``result`` and calling ``report(frames_so_far)``.
Decoder = Callable[[DecodeResult, Callable[[int], None]], None]


class PartialVideoWarning(UserWarning):
    """Emitted when ``allow_partial`` keeps the frames of a truncated or corrupt video."""


def _expected_frames(info: VideoInfo, cfg: ExtractConfig) -> int | None:
    if info.duration_s is None:
        return None
    start = cfg.start or 0.0
    end = info.duration_s if cfg.end is None else min(cfg.end, info.duration_s)
    return max(0, math.floor((end - start) * cfg.fps))


def _decode_checked(video: Path, cfg: ExtractConfig, run: Decoder) -> tuple[int, VideoInfo]:
    """Run ``run`` with a progress bar, then check the frame count. Returns (frames, info).

    The input's header comes from the decoding ffmpeg itself (no separate probe process); its
    errors (not a video, a still image, no video stream) win over the decoder's.
    """
    check_path(video)
    result = DecodeResult()
    with progress(desc=f"extract {video.name}", unit="frame") as bar:

        def report(frames: int) -> None:
            if bar.total is None:
                with contextlib.suppress(VdlibError):  # the header is not complete yet
                    bar.total = _expected_frames(result.info(video), cfg)
            bar.update(frames - bar.n)

        run(result, report)
    info = result.info(video)
    expected = _expected_frames(info, cfg)
    first_error = (result.errors or ["no message"])[0]
    if result.frames == 0:
        if result.returncode not in (0, None):
            raise VdlibError(f"{video}: ffmpeg could not decode any frame ({first_error})")
        raise VdlibError(
            f"{video}: no frames decoded (video has zero frames, or extract.start/end lie outside it)"
        )
    if result.returncode not in (0, None) and not cfg.allow_partial:
        raise VdlibError(f"{video}: ffmpeg failed after {result.frames} frames ({first_error})")
    if expected is not None and result.frames < expected - _SHORT_TOLERANCE_FRAMES:
        message = (
            f"{video}: truncated or corrupt: decoded {result.frames} of {expected} expected frames "
            f"({info.duration_s:.2f} s at {cfg.fps:g} fps; ffmpeg: {first_error})"
        )
        if not cfg.allow_partial:
            raise VdlibError(message + "; set extract.allow_partial (--allow-partial) to keep them")
        warnings.warn(message + "; keeping them (allow_partial)", PartialVideoWarning, stacklevel=3)
    elif result.errors:
        warnings.warn(f"{video}: ffmpeg reported decode errors: {first_error}", stacklevel=3)
    return result.frames, info


def extract_frames(video: str | Path, out: str | Path, cfg: ExtractConfig) -> FrameStore:
    """Decode ``video`` into a frame store folder at ``out`` (written to a temp folder, then renamed).

    ffmpeg writes the frames straight into ``frames.npy``: memory use does not grow with the video.
    """
    video, out = Path(video), Path(out)
    with atomic_output(out) as tmp:
        writer = FrameStoreWriter(tmp, cfg.size)

        def run(result: DecodeResult, report: Callable[[int], None]) -> None:
            decode_to_file(
                video, writer.file, cfg.size, cfg.fps, cfg.pad_color, cfg.start, cfg.end,
                result=result, on_progress=report,
            )  # fmt: skip

        try:
            count, info = _decode_checked(video, cfg, run)
        except BaseException:
            writer.abort()
            raise
        writer.close(
            (cfg.start or 0.0) + np.arange(count) / cfg.fps,
            {
                "source": video.name,
                "fps": cfg.fps,
                "pad_color": cfg.pad_color,
                "start": cfg.start,
                "end": cfg.end,
                "source_size": [info.width, info.height],
                "source_duration_s": info.duration_s,
            },
        )
    return FrameStore.open(out)


def extract_png_folders(
    video: str | Path, out: str | Path, cfg: ExtractConfig, max_file_count: int = 1000
) -> int:
    """Decode ``video`` into numbered folders (``0000/``, ``0001/``...) of at most ``max_file_count`` PNGs.

    This is the seed project's dataset layout; files are named by their global frame number.
    Returns the number of frames written.
    """
    if max_file_count < 1:
        raise VdlibError(f"--max-file-count: expected an integer >= 1, got {max_file_count}")
    video, out = Path(video), Path(out)
    with atomic_output(out) as tmp:
        tmp.mkdir(parents=True)

        def run(result: DecodeResult, report: Callable[[int], None]) -> None:
            chunks = decode_frames(video, cfg.size, cfg.fps, cfg.pad_color, cfg.start, cfg.end, result=result)
            written = 0
            for chunk in chunks:
                for frame in chunk:
                    folder = tmp / f"{written // max_file_count:04d}"
                    folder.mkdir(exist_ok=True)
                    Image.fromarray(frame).save(folder / f"{written:08d}.png", compress_level=1)
                    written += 1
                report(written)

        count, _ = _decode_checked(video, cfg, run)
    return count
