"""A user's own footage, end to end: ``dvc repro`` through ``evaluate`` from params alone, for every
labels kind and for a dataset of several videos, on clips nobody tuned the project for."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import (
    assert_temporal_matches_its_plot,
    copy_project,
    dvc,
    git,
    make_git_project,
    photo_video,
    ultralytics_asset,
    write_params_file,
)
from vdlib.data.frames import ClipWindows, FrameStore
from vdlib.data.video import ffmpeg_exe
from vdlib.labels import read_labels

pytestmark = pytest.mark.slow


def make_clip(path: Path, size: str, rate: int, seconds: float, pattern: str = "testsrc2", audio=False):
    """A generated H.264 clip (``pattern`` is an ffmpeg test source), with a sine tone if ``audio``."""
    args = ["-f", "lavfi", "-i", f"{pattern}=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    args += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", str(path)]
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *args], check=True)
    return path


def evaluate_outputs(project: Path) -> list[Path]:
    """Every metrics and plots file that dvc.yaml declares for the evaluate stage."""
    stage = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["evaluate"]
    return [project / next(iter(entry)) for entry in stage["metrics"] + stage["plots"]]


CASCADE = ("base", "upsampler_64", "upsampler_128")


def repro_and_check(project: Path, gifs: list[str], models: tuple[str, ...] = CASCADE) -> dict:
    """``dvc repro`` the whole pipeline; check the GIFs asked for and every declared evaluate output
    exist (plot tables at least with their header), and that evaluate scored the ``models`` trained;
    return the metrics."""
    out = dvc(project, "repro")
    assert "Running stage 'evaluate'" in out
    assert "Mean of empty slice" not in out and "RuntimeWarning" not in out
    made = sorted(p.name for p in (project / "reports" / "gifs").glob("*.gif"))
    assert made == sorted(f"{g}_seed0.gif" for g in gifs)
    for path in evaluate_outputs(project):
        assert path.is_file(), path
        if path.suffix == ".csv":
            assert path.read_text().splitlines()[0].count(",") >= 2
    metrics = json.loads((project / "reports" / "eval" / "metrics.json").read_text())
    assert set(metrics["val_loss"]) == set(metrics["train_loss"]) == set(models)
    assert_temporal_matches_its_plot(project, metrics)
    realism = metrics["realism"]  # a few training steps make frames unlike the footage: far above 1
    assert realism["ratio"] > 1 and realism["real_heldout_distance"] > 0
    assert sorted(realism["per_video"]) == sorted(f"{g}_seed0" for g in gifs)
    # A few training steps make noise that boils; real held-out clips move as the rest of the video.
    temporal = metrics["temporal"]
    assert temporal["motion_distance_real_heldout"] < temporal["motion_distance"]
    for name in models[1:]:
        assert metrics["upsampler"][name]["bicubic_psnr"] > 10 and metrics["upsampler"][name]["psnr"] > 5
    assert ("upsampler" in metrics) is (len(models) > 1)
    sampling = metrics["sampling"]
    per_model = sum(m["seconds"] for m in sampling["per_model"].values())
    assert sampling["seconds_per_video"] == pytest.approx(per_model, abs=0.01) and per_model > 0
    return metrics


def assert_outputs_have_shape(project: Path, shape: tuple[int, int], models: int = 3) -> None:
    """Every GIF, generated frame and contact sheet tile of the run, and the label preview (2x), is
    (height, width) ``shape``; the ``models`` of the cascade each make half the side of the next."""
    from PIL import Image

    gifs = sorted((project / "reports" / "gifs").glob("*.gif"))
    assert gifs and all(Image.open(gif).size == shape[::-1] for gif in gifs)
    preview = Image.open(project / "reports" / "labels" / "preview.gif")  # the stored frames, 2x
    assert preview.size == (2 * shape[1], 2 * shape[0])
    with np.load(project / "reports" / "gifs" / "generated.npz") as arrays:
        made = [arrays[k] for k in arrays.files if k.startswith("frames/")]
    assert {m.shape[1:3] for m in made} == {shape}
    # A sheet is a grid of up to 8 tiles a row, each frame enlarged until its shorter side is >= 96.
    frames, (h, w) = len(made[0]), shape
    scale, columns = -(-96 // min(h, w)), min(8, frames)
    rows = -(-frames // columns)
    sheets = sorted((project / "reports" / "sheets").glob("*.png"))
    sizes = {Image.open(sheet).size for sheet in sheets}
    assert sizes == {(columns * (w * scale + 2) + 2, 16 + rows * (h * scale + 14))}
    manifest = json.loads((project / "reports" / "gifs" / "videos.json").read_text())
    scales = [2**k for k in reversed(range(models))]
    assert [m["shape"] for m in manifest["models"]] == [[shape[0] // k, shape[1] // k] for k in scales]


def test_init_then_repro_without_labels(tmp_path):
    """`vdlib init clip.mp4` writes params that validate: for unlabelled footage a base model over the
    latents of an autoencoder trained on the clip; `dvc repro` runs them to unconditioned GIFs of the
    clip's own wide shape (2.35:1), not squares, made by the base model alone."""
    project = make_git_project(tmp_path)
    make_clip(project / "clip.mp4", "320x136", 25, 6)
    vdlib = Path(sys.executable).parent / "vdlib"
    done = subprocess.run([vdlib, "init", "clip.mp4", "--minutes", "0.2"], cwd=project,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "base.window = 20, base.skip = 1" in done.stdout and "s/step measured here" in done.stdout
    assert "extract.aspect = keep: 128x304 (height x width)" in done.stdout
    assert "1% of each frame is padding, against 57% in a square" in done.stdout
    assert "base.resolution = 128 from 32x76 latents" in done.stdout
    moved = re.search(r"shared_noise = 0.15: the footage's frames change by ([0-9.]+) grey", done.stdout)
    assert moved, done.stdout  # testsrc2's pattern moves
    assert "(the default for labels: none; --no-latent for a 32 px base model and upsamplers)" in done.stdout
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["autoencoder"]["steps"] >= 20 and params["upsampler"]["steps"] == 0
    assert params["extract"]["aspect"] == "keep"
    assert params["labels"]["kind"] == "none" and params["fetch"]["source"] == "clip.mp4"
    assert params["render"]["labels"] == "auto" and params["base"]["steps"] >= 20
    # A second init leaves the untouched file replaceable, but an edited one needs --force.
    (project / "params.yaml").write_text((project / "params.yaml").read_text() + "# my note\n")
    again = subprocess.run([vdlib, "init", "clip.mp4"], cwd=project, capture_output=True, text=True,
                           check=False)  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stderr and again.stderr.count("\n") == 1
    assert (project / "params.yaml").read_text().endswith("# my note\n")

    # Fewer and shorter videos than the written params ask for keep the test short.
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "init")
    params["render"].update({"count": 1, "frames": 8})
    params["render"]["base"]["steps"] = 4
    params["evaluate"]["fidelity_clips"] = 1
    write_params_file(project / "params.yaml", base=params)
    metrics = repro_and_check(project, ["unconditioned-0"], models=("base",))
    assert FrameStore.open(project / "data" / "frames").shape == (128, 304)
    assert_outputs_have_shape(project, (128, 304), models=1)
    coder = json.loads((project / "reports" / "train_autoencoder" / "metrics.json").read_text())
    assert coder["step"] == params["autoencoder"]["steps"] and coder["heldout"]["bilinear_psnr"] > 10
    assert metrics["labels"] == "none" and "label_accuracy" not in metrics and "pose" not in metrics
    # init measured the change evaluate reports for the real frames (init decodes as extract does).
    assert float(moved[1]) == pytest.approx(metrics["temporal"]["real_difference"], abs=0.5)
    assert "label_gain" not in metrics  # nothing to gain from labels a model never had
    table = project / "reports" / "eval" / "plots" / "label_accuracy.csv"
    assert table.read_text() == "group,generated,real_heldout,identity_generated,identity_real_heldout\n"


def test_timestamps_from_a_table_alone(tmp_path):
    """Only the table is set: render asks for the label combinations the frames carry; a tall phone
    clip (9:16) keeps its shape through every stage and the label classifier."""
    table = "start,end,label,group\n0,3,red,colour\n3,6,blue,colour\n0,2,left,place\n2,6,right,place\n"

    def own_clip(params):
        params["fetch"]["source"] = "clip.mp4"
        params["extract"]["aspect"] = "keep"
        params["labels"].update({"kind": "timestamps", "tables": ["labels/tables/mine.csv"]})

    project = make_git_project(tmp_path, own_clip, {"labels/tables/mine.csv": table})
    make_clip(project / "clip.mp4", "144x256", 25, 6)
    # Frames at 10 fps: blue+right covers 3-6 s (30 frames), red+right 2-3 s, red+left 0-2 s (20).
    metrics = repro_and_check(project, ["blue-right", "red-left"])
    assert_outputs_have_shape(project, (224, 128))
    assert set(metrics["label_accuracy"]["generated"]) == {"colour", "place"}
    assert set(metrics["label_accuracy"]["real_heldout"]) <= {"colour", "place"}
    assert set(metrics["identity_stability"]["generated"]) == {"colour", "place"}
    rows = (project / "reports" / "eval" / "plots" / "label_accuracy.csv").read_text().splitlines()
    assert rows[0] == "group,generated,real_heldout,identity_generated,identity_real_heldout"
    assert len(rows) == 3


def test_pose_with_a_real_person_and_auto_requests(tmp_path):
    """Poses found by YOLO on a panned photo of people; render driven by the held-out poses."""

    def pose_clip(params):
        params["fetch"]["source"] = "zidane.mp4"
        params["extract"]["aspect"] = "keep"  # 16:9 frames: keypoints normalised per axis
        params["labels"]["kind"] = "pose"
        params["labels"]["pose"]["batch"] = 8

    project = make_git_project(tmp_path, pose_clip)
    photo_video(ultralytics_asset("zidane.jpg"), project / "zidane.mp4", seconds=3, fps=10, size="320x180")
    metrics = repro_and_check(project, ["pose-heldout-zidane"])
    assert_outputs_have_shape(project, (128, 224))
    pose = metrics["pose"]
    assert pose["frames_asking"] == 7 and 0.0 <= pose["person_found"] <= 1.0
    ceiling, at_base = pose["real_heldout"], pose["real_heldout_at_base"]
    assert ceiling["person_found"] >= 0.9 and ceiling["keypoint_distance"] < 0.02
    assert at_base["frames_asking"] == ceiling["frames_asking"] > 0
    rows = (project / "reports" / "eval" / "plots" / "pose.csv").read_text().splitlines()
    assert rows[0] == "video,keypoint_distance,person_found"
    names = [r.split(",")[0] for r in rows[1:]]
    assert names == ["pose-heldout-zidane_seed0", "real_heldout", "real_heldout_at_base"]
    models = ("base", "upsampler_64", "upsampler_128")
    unet = {m: json.loads((project / "models" / m / "config.json").read_text())["unet"] for m in models}
    assert unet["base"]["keypoint_maps"] == 17  # the poses drawn as maps: the base model only
    assert unet["upsampler_64"]["keypoint_maps"] == unet["upsampler_128"]["keypoint_maps"] == 0


def test_three_videos_in_one_dataset(tmp_path):
    """A folder of three videos of different sizes, rates and lengths (one with sound) and one
    table with a video column: windows stay inside a video, every video is held out, labels follow
    their video."""

    def dataset(params):
        params["fetch"]["source"] = "videos"
        params["extract"].update({"fps": 5, "aspect": "keep"})
        params["labels"].update({"kind": "timestamps", "tables": ["labels/tables/videos.csv"]})

    table = (
        "video,start,end,label,group\n"
        "street,0,4,outdoor,place\ntall,0,3,indoor,place\nwide,0,2,outdoor,place\nwide,2,5,indoor,place\n"
    )
    project = make_git_project(tmp_path, dataset, {"labels/tables/videos.csv": table})
    videos = project / "videos"
    videos.mkdir()
    make_clip(videos / "street.mp4", "160x120", 25, 4, audio=True)
    make_clip(videos / "tall.mp4", "96x128", 15, 3, pattern="testsrc")
    make_clip(videos / "wide.mkv", "200x100", 30, 5, pattern="rgbtestsrc")
    repro_and_check(project, ["indoor", "outdoor"])

    store = FrameStore.open(project / "data" / "frames")
    # 4:3 for 4 s, 3:4 for 3 s, 2:1 for 5 s: the wide shape that pads them least (11:8).
    assert store.shape == (128, 176)
    assert_outputs_have_shape(project, (128, 176))
    assert store.video_names == ["street", "tall", "wide"] and store.video_lengths == [20, 15, 25]
    assert [v["source_size"] for v in store.meta["videos"]] == [[160, 120], [96, 128], [200, 100]]
    windows = ClipWindows.for_store(store, window=6, skip=1, val_fraction=0.05)
    for start in windows.train_starts:
        assert len(set(store.videos[windows.indices(start)])) == 1
    assert set(store.videos[windows.val_frames]) == {0, 1, 2}
    labels = read_labels(project / "data" / "labels.parquet")
    place = dict(zip(labels.names, labels.cond.T, strict=True))
    indoor = place["place=indoor"] > 0
    expected = (store.videos == 1) | ((store.videos == 2) & (store.times >= 2))
    assert np.array_equal(indoor, expected) and np.array_equal(place["place=outdoor"] > 0, ~expected)


def test_a_wrong_render_label_stops_before_any_work(tmp_path):
    project = make_git_project(tmp_path, lambda p: p["render"].update({"labels": ["circle,red", "hexagon"]}))
    out = dvc(project, "repro", check=False)
    assert "Running stage 'check'" in out and "Running stage 'fetch'" not in out
    errors = [line for line in out.splitlines() if "error:" in line and "check.py" in line]
    assert errors == [
        "check.py: error: render.labels[1]: 'hexagon' is not a label of this model (valid labels: "
        "shape=square, shape=circle, shape=triangle, colour=green, colour=blue, colour=red)"
    ]
    assert not (project / "data" / "raw").exists()
    for change, message in (
        ("render.cascade=5", "render.cascade: expected 1 to 3"),
        (
            "base.resolution=64",
            "render.cascade: expected 1 with base.resolution 64 (the upsamplers make 64 px and 128 px",
        ),
        ("render.base.sampler=heun", "render.base.sampler: expected ddpm | ddim | dpmsolver++"),
        ("labels.kind=none", "render.labels[0]: the model is trained without labels (labels.kind: none)"),
    ):
        out = dvc(project, "exp", "run", "-S", change, check=False)
        assert message in out and "Running stage 'fetch'" not in out, out
        git(project, "checkout", "params.yaml")  # a failed experiment leaves its -S in the workspace


def test_a_repository_without_a_commit_stops_at_check_with_the_fix(tmp_path):
    copy_project(tmp_path)
    git(tmp_path, "init", "-q")
    dvc(tmp_path, "init", "-q")
    out = dvc(tmp_path, "repro", check=False)
    errors = [line for line in out.splitlines() if "error:" in line and "check.py" in line]
    assert errors == [
        f"check.py: error: {tmp_path.resolve()}: git repository without a commit; training logs to the "
        "current commit, so commit first: git add -A && git commit -m init"
    ]
    assert "Traceback" not in out and "Running stage 'fetch'" not in out
