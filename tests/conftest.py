"""Fixtures that make tiny real inputs: ffmpeg test-source videos, the demo clip, photos with people."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from vdlib.config import DemoConfig
from vdlib.demo import render_demo_video
from vdlib.video import ffmpeg_exe

REPO = Path(__file__).resolve().parents[1]


def make_testsrc(path: Path, width: int, height: int, seconds: float, rate: int = 25) -> Path:
    """An ffmpeg ``testsrc2`` clip (moving pattern with a frame counter), H.264 in the path's container."""
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={rate}:duration={seconds}",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def landscape_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s, 25 fps, 320x240."""
    return make_testsrc(tmp_path_factory.mktemp("videos") / "landscape.mp4", 320, 240, 2)


@pytest.fixture(scope="session")
def portrait_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s, 25 fps, 120x240 (portrait)."""
    return make_testsrc(tmp_path_factory.mktemp("videos") / "portrait.mkv", 120, 240, 2)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Exported pose models go to a per-session folder, not the user's ~/.cache/vdlib."""
    os.environ["VDLIB_CACHE"] = str(tmp_path_factory.mktemp("vdlib-cache"))


SHORT_DEMO = DemoConfig(seconds=8, fps=10, width=96, height=72, seed=0)


@pytest.fixture(scope="session")
def demo_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8-second demo clip, 96x72."""
    return render_demo_video(SHORT_DEMO, tmp_path_factory.mktemp("videos") / "demo.mkv")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (random port): yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def ultralytics_asset(name: str) -> Path:
    """A photo that Ultralytics ships (``zidane.jpg``, ``bus.jpg``)."""
    import ultralytics

    return Path(ultralytics.__file__).parent / "assets" / name


def leftovers(folder: Path) -> list[str]:
    """Names in ``folder`` (recursively) that look like temporary or partial outputs."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if ".tmp" in p.name or p.name.startswith(".fetch-")
    )
