"""Source → one local video file: the built-in demo, a URL (through yt-dlp) or a local path.

yt-dlp handles both page URLs (YouTube and the ~1800 sites it knows, plus HTML pages that embed a
video) and direct file URLs (its generic extractor). Every source ends in the same step: probe the
file with ffmpeg, remux it into the container the output's extension names if needed, and rename it
into place. A failed fetch leaves nothing at the output path.

:func:`fetch_videos` fetches a dataset of many videos into one folder: a list of sources, each of
which may also be a local folder of videos or a playlist URL (every entry is downloaded).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vdlib.config import DemoConfig
from vdlib.core.common import VdlibError, atomic_output, progress
from vdlib.data.extract import list_videos, video_names
from vdlib.data.video import ffmpeg_exe, probe, remux

OUTPUT_SUFFIXES = {".mkv": "matroska", ".webm": "webm", ".mp4": "mp4", ".mov": "mov"}
DEMO_SOURCE = "demo"


def source_kind(source: str) -> str:
    """``demo``, ``url`` or ``local``."""
    if source == DEMO_SOURCE:
        return "demo"
    if urlparse(source).scheme in ("http", "https"):
        return "url"
    return "local"


class _YtdlpLogger:
    """Keep yt-dlp quiet; remember its last error for our one-line message."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        self.errors.append(msg)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _clean_ytdlp_message(message: str) -> str:
    message = _ANSI.sub("", message).strip()
    message = re.sub(r"^ERROR:\s*", "", message)
    message = re.sub(r"^\[[\w:]+\]\s*(\S+:\s*)?", "", message)  # extractor tag and video id
    message = re.sub(r"\s*\(caused by .*\)$", "", message, flags=re.S)
    message = re.sub(r";\s*please report this issue.*$", "", message, flags=re.S | re.I)
    return message.splitlines()[0] if message else "unknown error"


def _download_url(url: str, folder: Path, max_height: int, playlist: bool = False) -> list[Path]:
    """Download ``url`` with yt-dlp into ``folder``; return the downloaded files (one per playlist
    entry with ``playlist``, else one), named by yt-dlp's video id."""
    import yt_dlp

    bar = progress(total=None, desc="download", unit="B", unit_scale=True, unit_divisor=1024)

    def hook(status: dict[str, Any]) -> None:
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        if total and bar.total != total:
            bar.total = total
        done = status.get("downloaded_bytes")
        if done is not None:
            bar.update(done - bar.n)

    logger = _YtdlpLogger()
    options = {
        "format": f"bv*[height<={max_height}]+ba/b[height<={max_height}]/bv*+ba/b",
        "outtmpl": str(folder / "%(id)s.%(ext)s"),
        "paths": {"home": str(folder), "temp": str(folder)},
        "merge_output_format": "mkv",
        "ffmpeg_location": ffmpeg_exe(),
        "noplaylist": not playlist,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "progress_hooks": [hook],
        "logger": logger,
        "retries": 2,
        "fragment_retries": 2,
        "extractor_retries": 1,
        "socket_timeout": 30,
        "overwrites": True,
        "cachedir": False,
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            ydl.download([url])
    except yt_dlp.utils.DownloadError as exc:
        raise VdlibError(f"cannot fetch {url}: {_clean_ytdlp_message(str(exc))}") from None
    finally:
        bar.close()
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl")))
    if not files:
        message = _clean_ytdlp_message(logger.errors[-1]) if logger.errors else "nothing was downloaded"
        raise VdlibError(f"cannot fetch {url}: {message}")
    by_id: dict[str, Path] = {}  # one file per video: the largest (merged streams beat leftovers)
    for path in files:
        video_id = path.name.split(".", 1)[0]
        if video_id not in by_id or path.stat().st_size > by_id[video_id].stat().st_size:
            by_id[video_id] = path
    return list(by_id.values())


def _finalize(downloaded: Path, out: Path, source: str) -> Path:
    """Check ``downloaded`` is a video, put it in ``out``'s container, and rename it into place."""
    try:
        info = probe(downloaded)
    except VdlibError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise VdlibError(f"cannot fetch {source}: the content is {reason}") from None
    target = OUTPUT_SUFFIXES[out.suffix.lower()]
    staged = out.with_name(f".{out.name}.tmp{out.suffix}")
    try:
        if target in info.container.split(","):
            shutil.copyfile(downloaded, staged)
        else:
            remux(downloaded, staged)
        staged.replace(out)
    finally:
        staged.unlink(missing_ok=True)
    return out


def fetch(source: str, out: str | Path, max_height: int = 720, demo: DemoConfig | None = None) -> Path:
    """Fetch ``source`` into the video file ``out`` (``.mkv``, ``.mp4``, ``.webm`` or ``.mov``).

    ``source`` is ``demo`` (the built-in procedural clip, made from ``demo``), an http(s) URL
    (a page yt-dlp knows, or a direct video file), or a local path (copied, remuxed if needed).
    """
    out = Path(out)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise VdlibError(f"{out}: output must end in one of {', '.join(OUTPUT_SUFFIXES)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if source_kind(source) == "local" and Path(source).expanduser().is_dir():
        raise VdlibError(
            f"cannot fetch {source}: not a file (a folder is a source of the pipeline's fetch stage)"
        )
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=out.parent) as tmpdir:
        (downloaded,) = source_files(source, Path(tmpdir), max_height, demo, playlist=False)
        return _finalize(downloaded, out, source)


def source_files(
    source: str, work: Path, max_height: int, demo: DemoConfig | None, playlist: bool
) -> list[Path]:
    """The video files one source gives, made or downloaded into ``work`` where they are not local:
    the demo clip, a URL's download (every entry of a playlist with ``playlist``, else the largest
    file), or a local file or folder's videos."""
    kind = source_kind(source)
    if kind == "demo":
        from vdlib.data.demo import render_demo_video

        return [render_demo_video(demo or DemoConfig(), work / "demo.mkv")]
    if kind == "url":
        files = _download_url(source, work, max_height, playlist=playlist)
        return sorted(files) if playlist else [max(files, key=lambda p: p.stat().st_size)]
    path = Path(source).expanduser()
    if not path.exists():
        raise VdlibError(f"cannot fetch {source}: no such file or folder")
    return list_videos(path)


def fetch_videos(
    sources: list[str], out_dir: str | Path, max_height: int = 720, demo: DemoConfig | None = None
) -> list[Path]:
    """Fetch the ``sources`` into the folder ``out_dir``, one ``<name>.mkv`` per video.

    Each source is ``demo``, a URL (a page, a playlist: every entry, or a direct file) or a local
    path (a video file, or a folder: every video in it). Names are the file stems (yt-dlp's video id
    for pages), numbered where they repeat. The folder is written whole or not at all.
    """
    out_dir = Path(out_dir)
    if not sources:
        raise VdlibError("fetch.source: expected a source or a list of sources, got an empty list")
    with atomic_output(out_dir) as tmp:
        tmp.mkdir(parents=True)
        found: list[tuple[str, Path]] = []  # (source, file)
        for n, item in enumerate(sources):
            work = tmp / f".work-{n}"
            work.mkdir()
            files = source_files(item, work, max_height, demo, playlist=True)
            if Path(item).expanduser().is_dir():  # messages name the file in the folder, not the folder
                found += [(str(f), f) for f in files]
                continue
            found += [(item, f) for f in files]
        names = video_names([f for _, f in found])
        for (item, file), name in zip(found, names, strict=True):
            _finalize(file, tmp / f"{name}.mkv", item)
        for work in tmp.glob(".work-*"):
            shutil.rmtree(work)
    return sorted(out_dir.glob("*.mkv"))
