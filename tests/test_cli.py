"""The ``vdlib`` command as a user runs it: exit codes, one-line errors, outputs."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vdlib.data.frames import FrameStore
from vdlib.labels import read_labels

VDLIB = str(Path(sys.executable).parent / "vdlib")


def vdlib(*args, cwd=None):
    return subprocess.run([VDLIB, *map(str, args)], capture_output=True, text=True, cwd=cwd, check=False)


def test_help_lists_commands():
    result = vdlib("--help")
    assert result.returncode == 0
    for command in ("demo-video", "fetch", "extract", "labels"):
        assert command in result.stdout


def test_demo_fetch_extract_labels_by_hand(tmp_path):
    r = vdlib("demo-video", "-o", tmp_path / "demo.mp4", "--table", tmp_path / "demo.csv", "--seconds", 4,
              "--width", 64, "--height", 48)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "demo.csv").read_text().startswith("start,end,label,group\n")
    r = vdlib("fetch", tmp_path / "demo.mp4", "-o", tmp_path / "raw" / "video.mkv")
    assert r.returncode == 0, r.stderr
    r = vdlib(
        "extract", tmp_path / "raw" / "video.mkv", "-o", tmp_path / "frames", "--resolution", 32, "--fps", 5
    )
    assert r.returncode == 0, r.stderr
    assert "wrote 20 frames of 32x32" in r.stdout
    assert len(FrameStore.open(tmp_path / "frames")) == 20
    r = vdlib(
        "labels", "timestamps", tmp_path / "frames", tmp_path / "demo.csv", "-o", tmp_path / "labels.parquet",
        "--preview", tmp_path / "preview.gif", "--summary", tmp_path / "summary.json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    labels = read_labels(tmp_path / "labels.parquet")
    assert labels.dim >= 2 and (labels.cond.sum(1) == 2).all()  # one shape and one colour per frame
    assert (tmp_path / "preview.gif").stat().st_size > 0 and (tmp_path / "summary.json").exists()


def test_extract_png_folders(tmp_path, landscape_video):
    r = vdlib("extract", landscape_video, "-o", tmp_path / "pngs", "--format", "png", "--max-file-count", 6,
              "--resolution", 16, "--fps", 10)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["0000", "0001", "0002", "0003"]


def test_errors_are_one_line_with_status_2(tmp_path, landscape_video):
    r = vdlib("extract", tmp_path / "missing.mp4", "-o", tmp_path / "frames")
    assert r.returncode == 2
    assert r.stderr.strip() == f"vdlib: error: {tmp_path / 'missing.mp4'}: no such file"
    r = vdlib("extract", landscape_video, "-o", tmp_path / "frames", "--fps", 0)
    assert (
        r.returncode == 2
        and "vdlib extract: extract.fps: expected a positive number of frames per second, got 0.0" in r.stderr
    )
    vdlib("extract", landscape_video, "-o", tmp_path / "frames", "--resolution", 16)
    table = tmp_path / "t.csv"
    table.write_text("start,end,label\n0,1,a\n2,1,b\n")
    r = vdlib("labels", "timestamps", tmp_path / "frames", table, "-o", tmp_path / "l.parquet")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert f"{table}:3: end 1 is not after start 2" in r.stderr
    assert not (tmp_path / "l.parquet").exists()


def test_warnings_are_one_line(tmp_path, landscape_video):
    vdlib("extract", landscape_video, "-o", tmp_path / "frames", "--resolution", 16, "--fps", 5)
    table = tmp_path / "t.csv"
    table.write_text("start,end,label\n0,1,a\n10,20,b\n")
    r = vdlib("labels", "timestamps", tmp_path / "frames", table, "-o", tmp_path / "l.parquet")
    assert r.returncode == 0
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == [f"warning: {table}:3: range 10-20 s of label=b lies past the video's end "
                        "(frames cover 0-2 s); no frame gets it"]  # fmt: skip


@pytest.mark.slow
def test_pose_command(tmp_path, landscape_video):
    vdlib("extract", landscape_video, "-o", tmp_path / "frames", "--resolution", 64, "--fps", 2)
    r = vdlib("labels", "pose", tmp_path / "frames", "-o", tmp_path / "pose.parquet", "--batch", 2)
    assert r.returncode == 0, r.stderr
    labels = read_labels(tmp_path / "pose.parquet")
    assert labels.kind == "pose" and labels.dim == 51 and np.all(labels.person == 0)
    r = vdlib(
        "labels", "pose", tmp_path / "frames", "-o", tmp_path / "p2.parquet", "--model", "nope/x-pose.pt"
    )
    assert r.returncode == 2 and "labels.pose.model: 'nope/x-pose.pt' is not a file" in r.stderr
