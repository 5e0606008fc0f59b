"""``dvc repro`` on a short demo config in a temporary copy of the project."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from vdlib.frames import FrameStore
from vdlib.labels import read_labels

pytestmark = pytest.mark.slow


def dvc(project, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def set_params(project, **changes):
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def project(tmp_path):
    """The project's pipeline files in a fresh folder, with a short demo and small frames."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    for folder in ("stages", "vdlib", "labels"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    dvc(tmp_path, "init", "--no-scm", "-q")
    set_params(tmp_path, demo__seconds=12, demo__width=96, demo__height=72, extract__size=32)
    return tmp_path


def test_repro_builds_data_stages_and_reruns_only_what_changed(project):
    out = dvc(project, "repro", "labels")
    for stage in ("fetch", "extract", "labels"):
        assert f"Running stage '{stage}'" in out
    # The shipped table covers 120 s; this 12 s demo gets a warning for each later range.
    assert "lies past the video's end" in out
    store = FrameStore.open(project / "data" / "frames")
    assert len(store) == 120 and store.size == 32
    labels = read_labels(project / "data" / "labels.parquet")
    assert len(labels) == 120 and (labels.cond.sum(1) == 2).all()
    assert (project / "reports" / "labels" / "preview.gif").exists()

    assert "Data and pipelines are up to date" in dvc(project, "repro", "labels")

    set_params(project, extract__fps=5)
    out = dvc(project, "repro", "labels")
    assert "Stage 'fetch' didn't change, skipping" in out
    assert "Running stage 'extract'" in out and "Running stage 'labels'" in out
    assert len(FrameStore.open(project / "data" / "frames")) == 60
    assert '"frames": 60' in (project / "reports" / "labels" / "summary.json").read_text()


def test_a_bad_param_fails_the_stage_with_one_line(project):
    set_params(project, extract__fps="fast")
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
    assert (
        "extract.py: error: params.yaml: extract.fps: expected a number, got 'fast'"
        in result.stderr + result.stdout
    )
    assert not (project / "data" / "frames").exists()


TINY_MODEL = {"channels": 8, "mults": [1, 2], "res_blocks": 1, "spatial_attn_levels": [1], "heads": 2}


def test_repro_trains_the_cascade_and_base_lr_reruns_only_train_base(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["extract"]["size"] = 128
    params["train"].update({"ckpt_every": 10, "log_every": 5, "threads": 1})
    params["base"].update({"size": 16, "window": 6, "skip": 1, "steps": 10, "batch": 2, "model": TINY_MODEL})
    params["upsampler"].update({"window": 4, "skip": 0, "steps": 10, "batch": 2, "crop": 16,
                                "model": TINY_MODEL,
                                "mapping_channels": 4})  # fmt: skip
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = dvc(project, "repro")
    for stage in ("fetch", "extract", "labels", "train_base", "train_upsampler@64", "train_upsampler@128"):
        assert f"Running stage '{stage}'" in out
    for name in ("base", "upsampler_64", "upsampler_128"):
        assert (project / "models" / name / "model.safetensors").is_file()
    assert not list((project / ".vdlib" / "resume").glob("*/state"))
    metrics = dvc(project, "metrics", "show")
    for stage in ("train_base", "train_upsampler_64", "train_upsampler_128"):
        assert f"reports/{stage}/metrics.json" in metrics

    set_params(project, base__lr=0.002)
    status = json.loads(dvc(project, "status", "--json"))
    assert set(status) == {"train_base"}
    out = dvc(project, "repro")
    assert "Running stage 'train_base'" in out
    for stage in ("fetch", "extract", "labels", "train_upsampler@64", "train_upsampler@128"):
        assert f"Stage '{stage}' didn't change, skipping" in out
