"""Rendering: label, timeline and pose requests, the files written, determinism, the generate CLI."""

import json
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from tests.conftest import cascade
from vdlib.cli import main as cli
from vdlib.config import PoseConfig
from vdlib.core.common import VdlibError
from vdlib.data.video import probe
from vdlib.generation.conditions import parse_labels, pose_cond, timeline_cond
from vdlib.labels import Labels, ModelLabels, write_labels
from vdlib.labels.pose import KEYPOINT_NAMES
from vdlib.labels.tables import LabelRangeWarning


def test_label_requests_are_checked_against_the_models_names(models):
    labels = cascade(models)[0].labels
    vector = parse_labels("shape=square, blue", labels)
    assert [n for n, v in zip(labels.names, vector, strict=True) if v] == ["shape=square", "colour=blue"]
    with pytest.raises(VdlibError) as err:
        parse_labels("shape=hexagon", labels)
    assert "'shape=hexagon' is not a label of this model (valid labels: shape=" in str(err.value)
    assert "colour=red" in str(err.value)
    unlabelled = ModelLabels("none", [], "models/plain")
    with pytest.raises(VdlibError, match="models/plain is trained without labels"):
        parse_labels("shape=circle", unlabelled)


def test_timeline_gives_per_frame_labels(tmp_path, models):
    labels = cascade(models)[0].labels
    table = tmp_path / "timeline.csv"
    table.write_text("start,end,label,group\n0,1,circle,shape\n1,2,square,shape\n0,2,red,colour\n")
    cond = timeline_cond(table, labels, frames=10, fps=5)
    names = [[n for n, v in zip(labels.names, row, strict=True) if v] for row in cond]
    assert names[0] == ["shape=circle", "colour=red"] and names[4] == ["shape=circle", "colour=red"]
    assert names[5] == ["shape=square", "colour=red"] and names[9] == ["shape=square", "colour=red"]
    with pytest.warns(LabelRangeWarning, match="outside the 4 frames"):
        timeline_cond(table, labels, frames=4, fps=5)
    table.write_text("start,end,label,group\n0,1,circle,shape\n0,1,pink,colour\n")
    with pytest.raises(
        VdlibError, match=r"timeline.csv:3: colour=pink is not a label of .* \(valid labels: "
    ):
        timeline_cond(table, labels, frames=4, fps=5)


def test_pose_requests_from_a_pose_labels_file(tmp_path):
    times = np.arange(20) / 10.0
    keypoints = np.random.default_rng(0).random((20, len(KEYPOINT_NAMES))).astype(np.float32)
    write_labels(
        Labels("pose", list(KEYPOINT_NAMES), times, keypoints, person=np.ones(20, np.int8)),
        tmp_path / "pose.parquet",
    )
    model = ModelLabels("pose", list(KEYPOINT_NAMES), "models/pose")
    cond = pose_cond(tmp_path / "pose.parquet", model, frames=6, fps=5, pose=PoseConfig())
    assert np.array_equal(cond, keypoints[[0, 2, 4, 6, 8, 10]])  # 5 fps from a 10 fps file
    with pytest.raises(VdlibError, match="too short for 30 frames at 5 fps"):
        pose_cond(tmp_path / "pose.parquet", model, frames=30, fps=5, pose=PoseConfig())
    with pytest.raises(VdlibError, match="trained on timestamps labels, not poses"):
        pose_cond(tmp_path / "pose.parquet", ModelLabels("timestamps", ["a=b"], "m"), 6, 5, PoseConfig())


def run_cli(*args):
    return cli([str(a) for a in args])


def test_generate_writes_gif_mp4_and_contact_sheet(models, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_cli(
        "generate", models / "base", models / "upsampler_32", "--params", tmp_path / "none.yaml",
        "--frames", 10, "--labels", "shape=triangle,colour=green", "--formats", "gif,mp4",
        "--steps", "3,2", "--context", "2,0", "-n", 2, "--seed", 5, "--out-dir", out, "--window-frames", 4,
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    for seed in (5, 6):
        stem = out / f"triangle-green_seed{seed}"
        gif = iio.imread(f"{stem}.gif", index=None)
        assert gif.shape[:3] == (10, 32, 32)
        info = probe(f"{stem}.mp4")
        assert (info.width, info.height) == (32, 32)
        sheet = Image.open(f"{stem}_sheet.png")
        assert sheet.width > 8 * 32  # 8 enlarged frames per row
    manifest = json.loads((out / "videos.json").read_text())
    assert [v["name"] for v in manifest["videos"]] == ["triangle-green_seed5", "triangle-green_seed6"]
    # Windows of 4 frames (the models' training length): the base model's joint windows 0-3, 2-5,
    # 4-7, 6-9 start or end at 2, 4, 6 and 8 (render.base.windows: joint, the default), the
    # upsampler's chained ones at 4 and 8.
    assert manifest["videos"][0]["borders"] == [2, 4, 6, 8]
    # Base: 4 windows x 3 steps, the first (guidance_share 0.33 of 3) in 2 passes (guidance 2);
    # upsampler: 3 windows x 2 steps x 1 pass.
    assert manifest["videos"][0]["evaluations"] == [4 * (3 + 1), 3 * 2]
    # The default (window_frames 16): each model makes the 10 frames in one window.
    code = run_cli(
        "generate", models / "base", models / "upsampler_32", "--params", tmp_path / "none.yaml",
        "--frames", 10, "--labels", "shape=triangle,colour=green", "--formats", "gif",
        "--steps", "3,2", "--out-dir", tmp_path / "one",
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    video = json.loads((tmp_path / "one" / "videos.json").read_text())["videos"][0]
    assert video["borders"] == [] and video["evaluations"] == [3 + 1, 2]


def test_same_seed_same_bytes_other_seed_differs(models, tmp_path):
    def make(seed, folder):
        args = ["generate", models / "base", models / "upsampler_32", "--params", tmp_path / "none.yaml",
                "--frames", 6, "--labels", "circle,red", "--steps", "2", "--guidance", "2.0,1.0",
                "--context", 2, "--formats", "gif,mp4", "--seed", seed, "--out-dir", folder]  # fmt: skip
        assert run_cli(*args) == 0
        return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".gif", ".mp4", ".png")}

    first, again, other = make(3, tmp_path / "a"), make(3, tmp_path / "b"), make(4, tmp_path / "c")
    assert first == again
    assert first["circle-red_seed3.gif"] != other["circle-red_seed4.gif"]


def test_videos_rendered_in_one_batch_match_videos_rendered_one_by_one(models, tmp_path):
    """``--batch`` changes how many videos share a network pass, not what any video shows."""
    from vdlib.generation.render import Rendered

    def make(batch, folder):
        args = ["generate", models / "base", models / "upsampler_32", "--params", tmp_path / "none.yaml",
                "--frames", 6, "--labels", "circle,red", "--labels", "square,blue", "-n", 2, "--steps", "3,2",
                "--context", "2,0", "--formats", "gif", "--batch", batch, "--out-dir", folder]  # fmt: skip
        assert run_cli(*args) == 0
        return Rendered.open(folder)

    alone, together = make(1, tmp_path / "alone"), make(2, tmp_path / "together")
    assert (alone.manifest["batch"], together.manifest["batch"]) == (1, 2)
    assert sorted(together.frames) == sorted(alone.frames) and len(alone.frames) == 4
    for stem, frames in alone.frames.items():
        diff = np.abs(frames.astype(int) - together.frames[stem].astype(int))
        assert diff.mean() < 0.5 and diff.max() <= 8, stem  # float rounding, not other videos
    assert np.abs(alone.frames["circle-red_seed0"].astype(int) - alone.frames["circle-red_seed1"]).mean() > 5


def test_generate_errors_are_one_line(models, tmp_path, capsys):
    code = run_cli("generate", models / "base", "--params", tmp_path / "none.yaml", "--labels", "shape=star",
                   "--context", 1, "--out-dir", tmp_path / "o")  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "--labels: 'shape=star' is not a label of this model (valid labels: shape=" in err
    code = run_cli("generate", models / "base", "--params", tmp_path / "none.yaml", "--steps", "3,2",
                   "--context", 1, "--out-dir", tmp_path / "o")  # fmt: skip
    assert code == 2 and "--steps: 2 values for 1 models" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.gif"))


def test_unconditioned_request_when_empty_lists_are_asked_for(models, tmp_path):
    params = tmp_path / "empty.yaml"
    params.write_text("render:\n  labels: []\n  timelines: []\n  pose_from: []\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # ours; not third-party deprecations
        assert run_cli("generate", models / "base", "--params", params, "--frames", 4,
                       "--steps", 2, "--context", 1, "--out-dir", tmp_path) == 0  # fmt: skip
    assert (tmp_path / "unconditioned_seed0.gif").is_file()
