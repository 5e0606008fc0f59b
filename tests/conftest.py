"""Fixtures that make tiny real inputs: ffmpeg test-source videos, the demo clip, photos with people."""

from __future__ import annotations

import copy
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from vdlib.config import DemoConfig
from vdlib.data.demo import render_demo_video
from vdlib.data.video import ffmpeg_exe

REPO = Path(__file__).resolve().parents[1]


def make_testsrc(
    path: Path, width: int, height: int, seconds: float, rate: int = 25, pattern: str = "testsrc2"
) -> Path:
    """An ffmpeg test source clip, H.264 in the path's container: by default ``testsrc2`` (a moving
    pattern with a frame counter); ``pattern="color"`` gives a still black picture."""
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"{pattern}=size={width}x{height}:rate={rate}:duration={seconds}",
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
def _isolated_folders(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Exported pose models go to a per-session folder, not the user's ~/.cache/vdlib, and the
    session's processes share cores among themselves only (``vdlib.core.cores``)."""
    os.environ["VDLIB_CACHE"] = str(tmp_path_factory.mktemp("vdlib-cache"))
    os.environ["VDLIB_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("vdlib-running"))


def release_cores() -> None:
    """Unregister this test process from core sharing, as a process that exits is: the stages later
    tests start as subprocesses get every core."""
    import vdlib.core.cores

    if vdlib.core.cores._registered is not None:
        vdlib.core.cores._registered.unlink(missing_ok=True)
        vdlib.core.cores._registered = None


@pytest.fixture(autouse=True)
def _release_cores() -> Iterator[None]:
    """A test that computed in this process hands its cores back."""
    yield
    release_cores()


SHORT_DEMO = DemoConfig(seconds=8, fps=10, width=96, height=72, seed=0)
CPU = torch.device("cpu")
# The one tiny network every test trains (params ``model`` section; see the ``tiny_model`` fixture).
TINY_MODEL = {"channels": 8, "mults": [1, 2], "res_blocks": 1, "spatial_attn_levels": [1], "heads": 2}


def tiny_unet(**changes: Any):
    """The tiny network as a ``UNetConfig`` (``changes``: cond_dim, lowres, ...)."""
    from vdlib.models.unet import UNetConfig

    lists_as_tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in TINY_MODEL.items()}
    return UNetConfig(**{**lists_as_tuples, **changes})


@pytest.fixture(scope="session")
def tiny_model() -> dict[str, Any]:
    """The params ``model`` section of the tiny network tests train: 8 channels, two levels."""
    return copy.deepcopy(TINY_MODEL)


@pytest.fixture(scope="session")
def demo_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8-second demo clip, 96x72."""
    return render_demo_video(SHORT_DEMO, tmp_path_factory.mktemp("videos") / "demo.mkv")


def labelled_demo(video: Path, folder: Path, resolution: int) -> tuple[Any, Any]:
    """The demo ``video``'s frame store (``folder/frames``, 10 fps) and its labels from the demo's whole
    table (``folder/labels.parquet``): what the extract and labels stages make of it."""
    from vdlib.config import ExtractConfig
    from vdlib.data.demo import demo_schedule, write_schedule_csv
    from vdlib.data.extract import extract_frames
    from vdlib.labels import write_labels
    from vdlib.labels.tables import LabelRangeWarning, timestamp_labels

    store = extract_frames(video, folder / "frames", ExtractConfig(resolution=resolution, fps=10))
    write_schedule_csv(demo_schedule(DemoConfig()), folder / "demo.csv")  # names every shape and colour
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelRangeWarning)  # the table covers 120 s, a clip may be shorter
        labels = timestamp_labels(store, [folder / "demo.csv"])
    write_labels(labels, folder / "labels.parquet")
    return store, labels


@pytest.fixture(scope="session")
def models(demo_video, tmp_path_factory, tiny_model):
    """A tiny labelled base (16 px, 4-frame windows) and a 32 px upsampler, trained for a few steps on
    the demo clip (folders ``base`` and ``upsampler_32``, with ``frames`` and ``labels.parquet``)."""
    from vdlib.config import TrainConfig, section_from_dict
    from vdlib.training.train import TrainJob, train_model

    folder = tmp_path_factory.mktemp("models")
    labelled_demo(demo_video, folder, resolution=32)
    train = TrainConfig(ckpt_every=100, log_every=10, threads=1)
    for kind, size, extra in (
        ("base", 16, {"resolution": 16}),
        ("upsampler", 32, {"crop": 16, "mapping_channels": 4, "fitted_upscale_from": 32}),
    ):
        cfg = section_from_dict(
            kind, {"window": 8, "skip": 1, "steps": 20, "batch": 2, "model": tiny_model, **extra}
        )
        name = "base" if kind == "base" else "upsampler_32"
        job = TrainJob(name, cfg, train, size, folder / "frames", folder / "labels.parquet",
                       folder / name, folder / f"reports_{name}", resume_root=folder / "resume")  # fmt: skip
        train_model(job)
    return folder


BASE_SAMPLING = {"steps": 3, "context": 2}
UP_SAMPLING = {"steps": 2, "context": 0}


def cascade(models: Path, base: Any = None, up: Any = None) -> list:
    """The tiny trained cascade of ``models`` with sampling settings (few steps by default)."""
    from vdlib.generation.cascade import load_cascade
    from vdlib.models.schedule import SamplingConfig

    settings = [base or SamplingConfig(**BASE_SAMPLING), up or SamplingConfig(**UP_SAMPLING)]
    return load_cascade(
        [models / "base", models / "upsampler_32"], settings, ["render.base", "render.up"], CPU
    )


def circle_red(models: Path, frames: int) -> np.ndarray:
    """Per-frame labels asking for a red circle on every frame."""
    from vdlib.generation.conditions import parse_labels

    labels = cascade(models)[0].labels
    return np.tile(parse_labels("shape=circle,colour=red", labels), (frames, 1))


@pytest.fixture(scope="session")
def small_store(tmp_path_factory, demo_video):
    """The short demo clip as a store of 32 px frames at 10 fps (80 frames)."""
    from vdlib.config import ExtractConfig
    from vdlib.data.extract import extract_frames

    return extract_frames(
        demo_video, tmp_path_factory.mktemp("store") / "frames", ExtractConfig(resolution=32, fps=10)
    )


def write(folder: Path, text: str, name: str = "table.csv") -> Path:
    """``text`` written to ``folder/name``."""
    path = folder / name
    path.write_text(text)
    return path


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


def photo_video(photo: Path, out: Path, seconds: float = 2, fps: int = 10, size: str = "640x480") -> Path:
    """A slow zoom into ``photo`` (ffmpeg zoompan), keeping the people in frame."""
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-loop", "1", "-i", str(photo),
            "-vf", f"zoompan=z='1+0.004*on':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=1:fps={fps}:s={size}",
            "-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", str(out),
        ],
        check=True,
    )  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------------
# Whole-pipeline projects: the repository's pipeline files in a scratch git repository
# --------------------------------------------------------------------------------------------------


def dvc(project: Path, *args: str, check: bool = True) -> str:
    """Run ``dvc ARGS`` in ``project`` with this interpreter's environment; stdout + stderr."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "dvc", *args]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, env=env, check=False)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def copy_project(dest: Path) -> None:
    """The files the pipeline needs, copied into the folder ``dest`` (made if missing)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(REPO / name, dest / name)
    for folder in ("stages", "vdlib", "labels"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))


def write_params_file(
    path: Path, changes: dict[str, Any] | None = None, base: dict[str, Any] | None = None
) -> Path:
    """The one way tests write a params file: ``base`` (default: the params file at ``path``, else the
    repository's) with ``changes`` applied, each a dotted key (``render.base.steps``) and its value."""
    if base is None:
        base = yaml.safe_load((path if path.is_file() else REPO / "params.yaml").read_text())
    params = copy.deepcopy(base)
    for dotted, value in (changes or {}).items():
        *parents, key = dotted.split(".")
        node = params
        for name in parents:
            node = node.setdefault(name, {})
        node[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def tiny_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with models, steps and videos small enough for a test run of the whole cascade."""
    params["demo"].update({"seconds": 12, "width": 96, "height": 72})
    params["extract"]["resolution"] = 128
    params["train"].update({"ckpt_every": 10, "log_every": 5, "threads": 1})
    # base 32 px → upsampler_64 → upsampler_128, as the stage names say.
    params["base"].update(
        {"resolution": 32, "window": 6, "skip": 1, "steps": 10, "batch": 2, "model": TINY_MODEL}
    )
    params["upsampler"].update({"window": 4, "skip": 0, "steps": 10, "fitted_steps": 6, "batch": 2,
                                "crop": 16, "model": TINY_MODEL, "mapping_channels": 4})  # fmt: skip
    params["render"].update({"frames": 7, "count": 2})
    # Windows of the training length (window_frames null): several windows per video, with borders.
    params["render"]["base"].update({"steps": 2, "context": 1, "window_frames": None})
    for name in ("upsampler_64", "upsampler_128"):
        params["render"][name].update({"steps": 1, "window_frames": None})
    params["evaluate"].update({"classifier_steps": 20, "fidelity_clips": 1})
    return params


def make_git_project(folder: Path, change: Any = None, files: dict[str, str] | None = None) -> Path:
    """The pipeline in a fresh git repository with tiny params (``change(params)`` edits them further)
    and extra text ``files`` (path → content), committed, as a user's clone would be."""
    copy_project(folder)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    git(folder, "init", "-q")
    git(folder, "config", "user.email", "test@example.com")
    git(folder, "config", "user.name", "vdlib tests")
    dvc(folder, "init", "-q")
    shutil.copy(REPO / ".dvc" / "config", folder / ".dvc" / "config")  # the project's DVC settings
    params = tiny_params(yaml.safe_load((folder / "params.yaml").read_text()))
    if change is not None:
        change(params)
    write_params_file(folder / "params.yaml", base=params)
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "tiny project")
    return folder


def assert_temporal_matches_its_plot(project: Path, metrics: dict) -> None:
    """The temporal ratio is the plot's mean generated difference over the real one (a number, not
    null: every kind renders videos longer than one frame)."""
    rows = (project / "reports" / "eval" / "plots" / "temporal.csv").read_text().splitlines()[1:]
    generated = [float(r.split(",")[1]) for r in rows]
    real = metrics["temporal"]["real_difference"]
    assert real > 0 and len(generated) > 0
    assert metrics["temporal"]["ratio"] == pytest.approx(sum(generated) / len(generated) / real, rel=1e-3)
