"""Source → one local video file: the built-in demo, a URL (through yt-dlp) or a local path.

yt-dlp handles both page URLs (YouTube and the ~1800 sites it knows, plus HTML pages that embed a
video) and direct file URLs (its generic extractor). Every source ends in the same step: probe the
file with ffmpeg, remux it into the container the output's extension names if needed, and rename it
into place. A failed fetch leaves nothing at the output path.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vdlib.config import DemoConfig
from vdlib.errors import VdlibError
from vdlib.progress import progress
from vdlib.video import ffmpeg_exe, probe, remux

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


def _download_url(url: str, folder: Path, max_height: int) -> Path:
    """Download ``url`` with yt-dlp into ``folder``; return the downloaded file."""
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
        "outtmpl": str(folder / "download.%(ext)s"),
        "paths": {"home": str(folder), "temp": str(folder)},
        "merge_output_format": "mkv",
        "ffmpeg_location": ffmpeg_exe(),
        "noplaylist": True,
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
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.startswith("download."))
    files = [p for p in files if not p.name.endswith((".part", ".ytdl"))]
    if not files:
        message = _clean_ytdlp_message(logger.errors[-1]) if logger.errors else "nothing was downloaded"
        raise VdlibError(f"cannot fetch {url}: {message}")
    return max(files, key=lambda p: p.stat().st_size)


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
    kind = source_kind(source)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=out.parent) as tmpdir:
        folder = Path(tmpdir)
        if kind == "demo":
            from vdlib.demo import render_demo_video

            downloaded = render_demo_video(demo or DemoConfig(), folder / f"demo{out.suffix}")
        elif kind == "url":
            downloaded = _download_url(source, folder, max_height)
        else:
            downloaded = Path(source).expanduser()
            if not downloaded.exists():
                raise VdlibError(f"cannot fetch {source}: no such file")
            if not downloaded.is_file():
                raise VdlibError(f"cannot fetch {source}: not a file")
        return _finalize(downloaded, out, source)
