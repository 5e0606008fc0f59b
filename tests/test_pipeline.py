"""``dvc repro`` on a short demo config in a temporary copy of the project."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import (
    assert_temporal_matches_its_plot,
    copy_project,
    dvc,
    git,
    make_git_project,
    write_params_file,
)
from vdlib.data.frames import FrameStore
from vdlib.labels import read_labels

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path):
    """The project's pipeline files in a fresh folder, with a short demo and small frames."""
    copy_project(tmp_path)
    dvc(tmp_path, "init", "--no-scm", "-q")
    write_params_file(tmp_path / "params.yaml", {"demo.seconds": 12, "demo.width": 96, "demo.height": 72})
    return tmp_path


def test_repro_builds_data_stages_and_reruns_only_what_changed(project):
    out = dvc(project, "repro", "labels")
    for stage in ("check", "fetch", "extract", "labels"):
        assert f"Running stage '{stage}'" in out
    # The shipped table covers 120 s; this 12 s demo gets a warning for each later range.
    assert "lies past the video's end" in out
    store = FrameStore.open(project / "data" / "frames")
    assert len(store) == 120 and store.size == 128
    labels = read_labels(project / "data" / "labels.parquet")
    assert len(labels) == 120 and (labels.cond.sum(1) == 2).all()
    assert (project / "reports" / "labels" / "preview.gif").exists()

    assert "Data and pipelines are up to date" in dvc(project, "repro", "labels")

    write_params_file(project / "params.yaml", {"extract.fps": 5})
    out = dvc(project, "repro", "labels")
    assert "Stage 'fetch' didn't change, skipping" in out
    assert "Running stage 'extract'" in out and "Running stage 'labels'" in out
    assert len(FrameStore.open(project / "data" / "frames")) == 60
    assert '"frames": 60' in (project / "reports" / "labels" / "summary.json").read_text()


def test_a_bad_param_fails_the_stage_with_one_line(project):
    write_params_file(project / "params.yaml", {"extract.fps": "fast"})
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    # The check stage reads every section before anything else runs.
    assert "check.py: error: params.yaml: extract.fps: expected a number, got 'fast'" in result.stderr
    assert not (project / "data" / "raw").exists() and not (project / "data" / "frames").exists()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The project in a fresh git repository (``dvc exp`` needs one) with tiny models and the demo's
    explicit render requests, after one ``dvc repro``, committed: (project, the repro's output). The
    tests below share it and run in order: each leaves the project as the next expects."""

    def demo_requests(params):
        params["render"].update({"labels": ["shape=circle,colour=red", "square,blue"]})

    project = make_git_project(tmp_path_factory.mktemp("pipeline") / "project", demo_requests)
    out = dvc(project, "repro")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "baseline run")
    return project, out


def test_repro_runs_every_stage_to_models_gifs_and_sheets(baseline):
    project, out = baseline
    for stage in ("fetch", "extract", "labels", "train_base", "train_upsampler@64", "train_upsampler@128",
                  "render", "evaluate"):  # fmt: skip
        assert f"Running stage '{stage}'" in out
    for name in ("base", "upsampler_64", "upsampler_128"):
        assert (project / "models" / name / "model.safetensors").is_file()
    assert not list((project / ".vdlib" / "resume").glob("*/state"))
    reports = project / "reports"
    for stem in ("circle-red_seed0", "square-blue_seed0", "demo_change_seed0"):
        assert (reports / "gifs" / f"{stem}.gif").is_file() and (reports / "gifs" / f"{stem}.mp4").is_file()
        assert (reports / "sheets" / f"{stem}_sheet.png").is_file()


def test_evaluate_scores_every_model_as_its_training_did(baseline):
    project, _ = baseline
    metrics = json.loads((project / "reports" / "eval" / "metrics.json").read_text())
    assert set(metrics["val_loss"]) == {"base", "upsampler_64", "upsampler_128"}
    trained_steps = {}
    for name in metrics["val_loss"]:
        trained = json.loads((project / "reports" / f"train_{name}" / "metrics.json").read_text())
        assert metrics["val_loss"][name] == pytest.approx(trained["val"]["loss"], rel=1e-4)
        trained_steps[name] = trained["step"]
    # upsampler_128 brings its input up with the fitted filter, so it trains upsampler.fitted_steps.
    assert trained_steps == {"base": 10, "upsampler_64": 10, "upsampler_128": 6}
    assert set(metrics["label_accuracy"]["generated"]) == {"shape", "colour"}
    assert set(metrics["label_gain"]) == {"base", "upsampler_64", "upsampler_128"}
    assert_temporal_matches_its_plot(project, metrics)
    assert metrics["temporal"]["border_ratio"] > 0  # 8 frames from 6-frame windows: one border each
    for name in ("upsampler_64", "upsampler_128"):
        assert metrics["upsampler"][name]["bicubic_psnr"] > 20
    # 3 base windows x 2 steps, the first of them guided (guidance_share 0.33: 2 passes), then 2
    # windows x 1 step per upsampler.
    assert metrics["sampling"]["evaluations_per_video"] == 3 * (2 + 1) + 2 * 2


def test_metrics_and_plots_are_what_dvc_shows(baseline):
    project, _ = baseline
    shown = dvc(project, "metrics", "show")
    for stage in ("train_base", "train_upsampler_64", "train_upsampler_128", "eval"):
        assert f"reports/{stage}/metrics.json" in shown
    assert "temporal.csv" in dvc(project, "plots", "show", "--json")


def test_a_remote_carries_the_run_to_a_fresh_clone_that_renders_without_training(baseline):
    """Push the run to a DVC remote (a local folder here; S3, GCS or SSH alike), clone the repository
    afresh, pull, and render from the pulled models without training anything."""
    project, _ = baseline
    dvc(project, "remote", "add", "-d", "store", str(project.parent / "remote"))
    git(project, "commit", "-q", "-am", "a DVC remote")
    dvc(project, "push")
    clone = project.parent / "clone"
    git(project.parent, "clone", "-q", str(project), str(clone))
    dvc(clone, "pull")
    assert json.loads(dvc(clone, "status", "--json")) == {}  # every output restored, nothing to run
    # Checked out as links to the DVC cache, not copies (cache.type in .dvc/config), as the queue's
    # workspaces are too.
    assert os.stat(clone / "data" / "frames" / "frames.npy").st_nlink > 1
    out = dvc(clone, "repro", "--force", "--single-item", "render")
    assert "Running stage 'render'" in out and "Running stage 'train" not in out
    assert (clone / "reports" / "gifs" / "circle-red_seed0.gif").is_file()


def test_queued_experiments_train_side_by_side(baseline):
    """Two workers: each trains in its own workspace with its share of the cores (train.threads 0)
    and ends with its own metrics (only the stages up to train_base: render and evaluate are the
    baseline's)."""
    project, _ = baseline
    for lr in ("0.001", "0.004"):
        dvc(project, "exp", "run", "--queue", "-n", f"lr{lr}", "-S", f"base.lr={lr}", "-S", "train.threads=0",
            "train_base")  # fmt: skip
    dvc(project, "exp", "run", "--run-all", "-j", "2")
    assert [line.split()[-1] for line in dvc(project, "queue", "status").splitlines()[1:3]] == ["Success"] * 2
    final_lr = {}
    for row in json.loads(dvc(project, "exp", "show", "--json")):
        for group in row.get("experiments") or []:
            data = group["revs"][0]["data"]
            lr = data["params"]["params.yaml"]["data"]["base"]["lr"]
            final_lr[lr] = data["metrics"]["reports/train_base/metrics.json"]["data"]["lr"]
    assert set(final_lr) == {0.001, 0.004} and final_lr[0.004] == pytest.approx(4 * final_lr[0.001])
    assert not list((project / ".vdlib" / "resume").glob("*/state"))


def test_a_render_setting_reruns_only_render_and_evaluate_and_plots_diff_shows_both(baseline):
    project, _ = baseline
    out = dvc(project, "exp", "run", "-S", "render.base.steps=1")
    assert "Running stage 'render'" in out and "Running stage 'evaluate'" in out
    for stage in ("train_base", "train_upsampler@64", "train_upsampler@128"):
        assert f"Stage '{stage}' didn't change, skipping" in out
    evaluations = {}
    for row in json.loads(dvc(project, "exp", "show", "--json")):
        for exp in [row, *[e for group in row.get("experiments") or [] for e in group["revs"]]]:
            data = exp.get("data") or {}
            steps = data["params"]["params.yaml"]["data"]["render"]["base"]["steps"]
            value = data["metrics"]["reports/eval/metrics.json"]["data"]["sampling"]["evaluations_per_video"]
            evaluations[steps] = value
    assert evaluations == {2: 3 * (2 + 1) + 4, 1: 3 * (1 + 1) + 4}
    # The contact sheets and training samples are image plots: the baseline's and the experiment's
    # side by side in `dvc plots diff`.
    diff = json.loads(dvc(project, "plots", "diff", "HEAD", "--json"))["data"]
    sheet = diff["reports/sheets/circle-red_seed0_sheet.png"]
    assert {e["type"] for e in sheet} == {"image"}
    assert {r for e in sheet for r in e["revisions"]} == {"HEAD", "workspace"}
    assert any(path.startswith("reports/train_base/samples/") for path in diff)


def test_cascade_one_renders_the_base_models_frames_and_evaluate_scores_every_model(baseline):
    project, _ = baseline
    out = dvc(project, "exp", "run", "-S", "render.cascade=1", "-S", "render.base.steps=1")
    assert "Running stage 'evaluate'" in out
    metrics = json.loads((project / "reports" / "eval" / "metrics.json").read_text())
    assert set(metrics["val_loss"]) == {"base", "upsampler_64", "upsampler_128"}
    assert set(metrics["upsampler"]) == {"upsampler_64", "upsampler_128"}
    assert metrics["sampling"]["evaluations_per_video"] == 3 * (1 + 1)
    with Image.open(project / "reports" / "gifs" / "circle-red_seed0.gif") as gif:
        assert gif.size == (32, 32)


def test_a_training_param_marks_only_the_stages_that_read_it(baseline):
    """check (which reads every section) and train_base. Evaluate reads each model's split and
    settings from its config.json, so it re-runs only once the model it scores changes; upsamplers
    and render are untouched."""
    project, _ = baseline
    write_params_file(project / "params.yaml", {"base.lr": 0.002})
    status = json.loads(dvc(project, "status", "--json"))
    assert set(status) == {"check", "train_base"}


def test_a_latent_base_model_makes_the_frames_without_upsamplers(baseline):
    """With autoencoder.steps above 0 the base model diffuses its latents of 64 px frames; with
    upsampler.steps 0 the upsampler stages write folders that say none was trained, and render and
    evaluate use the base model alone."""
    project, _ = baseline
    out = dvc(project, "exp", "run", "-S", "autoencoder.steps=20", "-S", "autoencoder.channels=8",
              "-S", "base.resolution=64", "-S", "upsampler.steps=0", "-S", "render.cascade=1")  # fmt: skip
    for stage in ("train_autoencoder", "train_base", "train_upsampler@64", "train_upsampler@128", "evaluate"):
        assert f"Running stage '{stage}'" in out
    coder = json.loads((project / "reports" / "train_autoencoder" / "metrics.json").read_text())
    assert coder["step"] == 20 and coder["heldout"]["psnr"] > 10
    base = json.loads((project / "models" / "base" / "config.json").read_text())
    assert base["autoencoder"]["latent_channels"] == base["unet"]["image_channels"] == 4
    for name in ("upsampler_64", "upsampler_128"):
        assert json.loads((project / "models" / name / "not_trained.json").read_text())["trained"] is False
    metrics = json.loads((project / "reports" / "eval" / "metrics.json").read_text())
    assert set(metrics["val_loss"]) == {"base"} and "upsampler" not in metrics
    with Image.open(project / "reports" / "gifs" / "circle-red_seed0.gif") as gif:
        assert gif.size == (64, 64)
