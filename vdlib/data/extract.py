"""Video → frames: decode with ffmpeg (fps, area scale, centred pad or crop) into a frame store or PNG
folders, at the videos' own aspect (``extract.aspect: keep``) or square."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vdlib.config import ExtractConfig
from vdlib.core.common import VdlibError, atomic_output, progress
from vdlib.data.frames import FrameStore, FrameStoreWriter
from vdlib.data.video import (
    DecodeResult,
    FrameFit,
    VideoInfo,
    check_path,
    decode_frames,
    decode_to_file,
    probe,
)

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


VIDEO_SUFFIXES = (
    ".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp", ".ogv",
)  # fmt: skip


KEEP_STEP = 8  # extract.aspect keep: the longer side is a multiple of 1/8 of the shorter one
MAX_ASPECT = 4  # ...up to 4:1


def padded_share(aspect: float, frame_aspect: float) -> float:
    """The share of a frame of ``frame_aspect`` (width / height) left as padding around a picture of
    ``aspect`` fitted inside it."""
    return 1.0 - min(aspect / frame_aspect, frame_aspect / aspect)


def keep_shape(aspects: list[float], weights: list[float], resolution: int) -> tuple[tuple[int, int], str]:
    """The one (height, width) for pictures of display ``aspects`` (width / height), their shorter side
    ``resolution`` and the longer ``resolution * k / 8``: the shape that leaves the least padding,
    averaged with ``weights`` (the videos' durations), the smaller on a tie; and why, in one line.

    Every model size that is a multiple of 8 then has whole-pixel frames of this aspect (``k / 8``
    exactly, so the cascade's sizes double exactly)."""
    wide = [(resolution, resolution * k // KEEP_STEP) for k in range(KEEP_STEP, KEEP_STEP * MAX_ASPECT + 1)]
    total = sum(weights)

    def waste(shape: tuple[int, int]) -> float:
        shares = [padded_share(a, shape[1] / shape[0]) for a in aspects]
        return round(sum(w * p for w, p in zip(weights, shares, strict=True)) / total, 9)

    h, w = min([*wide, *((w, h) for h, w in wide[1:])], key=lambda shape: (waste(shape), shape[0] * shape[1]))
    why = (
        f"{h}x{w} (height x width) keeps the videos' aspect: {waste((h, w)):.0%} of each frame is "
        f"padding, against {waste((resolution, resolution)):.0%} in a square"
    )
    return (h, w), why


def choose_fit(videos: list[Path], cfg: ExtractConfig) -> tuple[FrameFit, str]:
    """The stored frames' shape for ``videos`` under ``cfg.aspect``, and why (one line): square for
    ``pad`` and ``crop``; for ``keep`` the :func:`keep_shape` of their probed display aspects."""
    if cfg.aspect != "keep":
        square = FrameFit.square(cfg.resolution, cfg.aspect)
        return square, f"{cfg.resolution}x{cfg.resolution} ({cfg.aspect})"
    infos = [probe(path) for path in videos]
    aspects, weights = [i.display_aspect for i in infos], [i.duration_s or 1.0 for i in infos]
    shape, why = keep_shape(aspects, weights, cfg.resolution)
    return FrameFit(*shape), why


def list_videos(source: str | Path | list[str | Path]) -> list[Path]:
    """The video files of ``source``: a file, a list of files, or a folder (its videos, by name)."""
    if isinstance(source, list | tuple):
        return [p for item in source for p in list_videos(item)]
    path = Path(source)
    if not path.is_dir():
        return [path]
    videos = sorted(
        p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and p.name[0] != "."
    )
    if not videos:
        raise VdlibError(f"{path}: no video files in this folder (expected {', '.join(VIDEO_SUFFIXES)})")
    return videos


def video_names(videos: list[Path]) -> list[str]:
    """A unique name per video: its file stem (``cat.mp4`` → ``cat``), numbered where stems repeat."""
    names: list[str] = []
    for path in videos:
        name, n = path.stem, 2
        while name in names:
            name, n = f"{path.stem}-{n}", n + 1
        names.append(name)
    return names


def _decode_into(
    writer: FrameStoreWriter, path: Path, fit: FrameFit, cfg: ExtractConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """Append the frames of the video ``path`` to ``writer``: their times within the video, and what
    the store's index lists about the video."""

    def run(result: DecodeResult, report: Callable[[int], None]) -> None:
        decode_to_file(
            path,
            writer.file,
            fit,
            cfg.fps,
            cfg.pad_color,
            cfg.start,
            cfg.end,
            result=result,
            on_progress=report,
        )

    count, info = _decode_checked(path, cfg, run)
    entry = {"name": "", "file": path.name, "frames": count, "source_size": [info.width, info.height],
             "source_duration_s": info.duration_s}  # fmt: skip
    return (cfg.start or 0.0) + np.arange(count) / cfg.fps, entry


def extract_frames(
    video: str | Path | list[str | Path], out: str | Path, cfg: ExtractConfig, fit: FrameFit | None = None
) -> FrameStore:
    """Decode one video, a list of videos or a folder of videos into a frame store at ``out``
    (written to a temp folder, then renamed), at the shape ``cfg`` chooses (:func:`choose_fit`) or
    ``fit``'s.

    Videos are stored one after the other; each frame's video number and its time within that video
    go to ``index.parquet``. ffmpeg writes the frames straight into ``frames.npy``: memory use does
    not grow with the video.
    """
    videos, out = list_videos(video), Path(out)
    names = video_names(videos)
    if fit is None:
        fit, why = choose_fit(videos, cfg)
        if cfg.aspect == "keep":
            print(f"extract: frames {why}")
    with atomic_output(out) as tmp:
        writer = FrameStoreWriter(tmp, fit.shape)
        try:
            times, listed = zip(*(_decode_into(writer, path, fit, cfg) for path in videos), strict=True)
        except BaseException:
            writer.abort()
            raise
        for entry, name in zip(listed, names, strict=True):
            entry["name"] = name
        writer.close(
            np.concatenate(times),
            {
                "source": videos[0].name if len(videos) == 1 else f"{len(videos)} videos",
                "fps": cfg.fps,
                "aspect": cfg.aspect,
                "pad_color": cfg.pad_color,
                "start": cfg.start,
                "end": cfg.end,
                "source_size": listed[0]["source_size"],
                "source_duration_s": listed[0]["source_duration_s"],
                "videos": list(listed),
            },
            videos=np.concatenate([np.full(len(t), number) for number, t in enumerate(times)]),
        )
    return FrameStore.open(out)


def extract_png_folders(
    video: str | Path, out: str | Path, cfg: ExtractConfig, max_file_count: int = 1000
) -> int:
    """Decode ``video`` into numbered folders (``0000/``, ``0001/``...) of at most ``max_file_count`` PNGs.

    This is the dataset layout of Custom-Simple-Video-Diffusion, the project vdlib re-imagines; files
    are named by their global frame number. Returns the number of frames written.
    """
    if max_file_count < 1:
        raise VdlibError(f"--max-file-count: expected an integer >= 1, got {max_file_count}")
    video, out = Path(video), Path(out)
    with atomic_output(out) as tmp:
        tmp.mkdir(parents=True)

        fit, _ = choose_fit([video], cfg)

        def run(result: DecodeResult, report: Callable[[int], None]) -> None:
            chunks = decode_frames(video, fit, cfg.fps, cfg.pad_color, cfg.start, cfg.end, result=result)
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
