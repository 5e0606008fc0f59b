"""Render requests that fit the model ('auto'), and params that cannot work failing before any work."""

import numpy as np
import pytest

from tests.conftest import REPO, write_params_file
from vdlib.check import check_params
from vdlib.config import PoseConfig, RenderConfig
from vdlib.core.common import VdlibError
from vdlib.generation.conditions import (
    HeldOut,
    build_requests,
    fitting_timelines,
    label_combinations,
)
from vdlib.init import Probed, choose_fps, choose_window, is_untouched, write_params
from vdlib.labels import Labels, ModelLabels
from vdlib.labels.pose import KEYPOINT_NAMES

NAMES = ["shape=circle", "shape=square", "colour=red", "colour=blue"]
TIMESTAMPS = ModelLabels("timestamps", NAMES, "models/base")


def labels_with(rows: list[list[int]], counts: list[int]) -> Labels:
    cond = np.repeat(np.array(rows, dtype=np.float32), counts, axis=0)
    return Labels("timestamps", NAMES, np.arange(len(cond)) / 10.0, cond)


def test_auto_labels_are_the_combinations_in_the_frames_most_frequent_first():
    labels = labels_with([[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 1]], [5, 9, 20, 5])
    assert label_combinations(labels, 10) == [
        "shape=square,colour=blue",
        "shape=circle,colour=red",
        "shape=circle,colour=blue",
    ]  # fmt: skip  (unlabelled frames ask for nothing; ties keep the order they first appear in)
    assert label_combinations(labels, 1) == ["shape=square,colour=blue"]


def test_auto_timelines_are_the_tables_the_model_knows(tmp_path):
    (tmp_path / "fits.csv").write_text("start,end,label,group\n0,1,circle,shape\n1,2,red,colour\n")
    (tmp_path / "other.csv").write_text("start,end,label,group\n0,1,hexagon,shape\n")
    assert fitting_timelines(TIMESTAMPS, tmp_path) == [str(tmp_path / "fits.csv")]


def test_auto_requests_for_each_kind(tmp_path):
    cfg = RenderConfig(frames=6, count=3)
    plain = build_requests(cfg, ModelLabels("none", [], "m"), 5.0, PoseConfig(), timelines_dir=tmp_path)
    assert [(r.name, r.cond, r.variant) for r in plain] == [
        ("unconditioned-0", None, 0), ("unconditioned-1", None, 1), ("unconditioned-2", None, 2),
    ]  # fmt: skip
    held = HeldOut(labels_with([[1, 0, 1, 0], [0, 1, 0, 1]], [4, 6]), [], stride=2)
    made = build_requests(cfg, TIMESTAMPS, 5.0, PoseConfig(), held_out=held, timelines_dir=tmp_path)
    assert [r.name for r in made] == ["square-blue", "circle-red"]
    assert (made[0].cond == [0, 1, 0, 1]).all() and made[0].cond.shape == (6, 4)

    keypoints = np.random.default_rng(0).random((12, len(KEYPOINT_NAMES))).astype(np.float32)
    pose_labels = Labels("pose", list(KEYPOINT_NAMES), np.arange(12) / 10.0, keypoints)
    tails = [("walk", np.arange(4, 8)), ("run", np.arange(10, 12))]
    posed = build_requests(
        cfg, ModelLabels("pose", list(KEYPOINT_NAMES), "m"), 5.0, PoseConfig(),
        held_out=HeldOut(pose_labels, tails, stride=2),
    )  # fmt: skip
    assert [r.name for r in posed] == ["pose-heldout-walk", "pose-heldout-run"]
    # Every second stored frame of the tail; the last pose is held when the tail runs out.
    assert np.array_equal(posed[0].cond, keypoints[[4, 6, 7, 7, 7, 7]])
    assert np.array_equal(posed[1].cond, keypoints[[10, 11, 11, 11, 11, 11]])


def test_explicit_requests_are_checked_with_the_param_named():
    cfg = RenderConfig(labels=["circle,red", "shape=hexagon"])
    with pytest.raises(VdlibError) as err:
        build_requests(cfg, TIMESTAMPS, 5.0, PoseConfig())
    assert str(err.value).startswith("render.labels[1]: 'shape=hexagon' is not a label of this model")
    with pytest.raises(VdlibError, match=r"render.pose_from\[0\]: models/base is trained on timestamps"):
        build_requests(RenderConfig(pose_from=["clip.mp4"]), TIMESTAMPS, 5.0, PoseConfig())
    with pytest.raises(VdlibError, match=r"render.timelines\[0\]: .*no such timeline table"):
        build_requests(RenderConfig(timelines=["nowhere.csv"]), TIMESTAMPS, 5.0, PoseConfig())


def write_changed(tmp_path, **changes):
    return write_params_file(tmp_path / "params.yaml", changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"render.cascade": 5}, "render.cascade: expected 1 to 3"),
        ({"render.base.sampler": "heun"}, "render.base.sampler: expected ddpm | ddim | dpmsolver++"),
        ({"render.labels": ["circle,red", "blue,hexagon"]}, "render.labels[1]: 'hexagon' is not a label"),
        (
            {"render.timelines": ["labels/timelines/no.csv"]},
            "render.timelines[0]: labels/timelines/no.csv: no such",
        ),
        ({"render.pose_from": ["a.mp4"]}, "render.pose_from[0]: the model is trained on timestamps labels"),
        (
            {"labels.kind": "pose", "render.labels": ["circle,red"]},
            "render.labels[0]: the model is trained on pose labels",
        ),
        (
            {"labels.tables": ["labels/tables/missing.csv"]},
            "labels.tables[0]: labels/tables/missing.csv: no such",
        ),
        # Files outside the folders dvc.yaml tracks would be no stage's dependency.
        (
            {"labels.tables": ["labels/timelines/demo_change.csv"]},
            "labels.tables[0]: labels/timelines/demo_change.csv: expected a file under labels/tables/",
        ),
        (
            {"render.timelines": ["labels/tables/demo.csv"]},
            "render.timelines[0]: labels/tables/demo.csv: expected a file under labels/timelines/",
        ),
        ({"extract.resolution": 64}, "extract.resolution: expected at least 128"),
        (
            {"extract.aspect": "keep", "base.resolution": 36, "render.cascade": 1},
            "base.resolution: expected a multiple of 8 with extract.aspect: keep",
        ),
        ({"render.base.context": 16}, "render.base.context: expected 0 to 15"),  # window_frames 16
        (
            {"render.base.window_frames": None, "render.base.context": 8},  # the training length, 8
            "render.base.context: expected 0 to 7",
        ),
        ({"fetch.source": ["demo", "my/videos"]}, "fetch.source[1]: my/videos: no such file or folder"),
        ({"render.labels": "some"}, "render.labels: expected auto or a list"),
    ],
)
def test_params_that_cannot_work_fail_in_one_line(tmp_path, monkeypatch, changes, message):
    monkeypatch.chdir(REPO)  # the shipped tables and timelines
    with pytest.raises(VdlibError) as err:
        check_params(write_changed(tmp_path, **changes))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_shipped_params_pass_the_check(monkeypatch):
    monkeypatch.chdir(REPO)
    assert check_params()["labels"]["kind"] == "timestamps"


def test_init_picks_windows_that_fit_the_videos():
    long_clip = [Probed("a.mp4", 60.0, 30.0)]
    assert choose_fps(long_clip) == 10.0 and choose_fps([Probed("b.mp4", 9.0, 6.0)]) == 6.0
    window, skip, _ = choose_window(long_clip, 10.0, 0.05)
    assert (window, skip) == (20, 1)  # 2 s of motion in 10 frames
    window, skip, why = choose_window([Probed("short.mp4", 3.0, 25.0)], 10.0, 0.05)
    assert (window, skip) == (15, 1) and "the longest video: 30 frames" in why  # one to train, one held out
    with pytest.raises(VdlibError, match="too short: 3 frames at 10 fps"):
        choose_window([Probed("tiny.mp4", 0.3, 25.0)], 10.0, 0.05)
    assert choose_window([Probed("https://example.org/v", None, None)], 10.0, 0.05)[:2] == (20, 1)


def test_init_replaces_only_untouched_params(tmp_path):
    path = tmp_path / "params.yaml"
    assert is_untouched(path)  # no file yet
    path.write_text("fetch:\n  source: demo\n")
    assert not is_untouched(path)  # not init's, and no git history here
    with pytest.raises(VdlibError, match=r"has edits that are not committed; .* --force"):
        write_params({"fetch": {"source": "demo"}}, ["why"], path)
    assert path.read_text() == "fetch:\n  source: demo\n"
