"""Smoke runs of the benchmarks at their smallest sizes: they run, print tables and write JSON."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def bench(*args):
    result = subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_extract_benchmark_quick(tmp_path):
    out = tmp_path / "extract.json"
    stdout = bench(REPO / "benchmarks" / "extract.py", "--quick", "--out", out)
    assert "| input | frames | vdlib frames/s | ffmpeg alone frames/s |" in stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["frames"] for r in rows] == [40, 60]
    assert all(r["vdlib_frames_per_s"] > 0 and r["ffmpeg_frames_per_s"] > 0 for r in rows)


def test_every_benchmark_quick_writes_results(tmp_path):
    out = tmp_path / "results.json"
    only = ["pose", "training", "sampling", "render", "scaling"]
    stdout = bench(REPO / "benchmarks" / "run.py", "--quick", "--only", *only, "--out", out)
    results = json.loads(out.read_text())["benchmarks"]
    assert set(results) == set(only)
    for name in only:
        assert f"## {name}" in stdout and results[name]["rows"]
    training = results["training"]["rows"][0]
    speedup = training["vdlib_clips_per_s"] / training["vdp_clips_per_s"]
    assert training["speedup"] == pytest.approx(speedup, rel=0.01)
    assert training["vdlib_peak_rss_mb"] > 200  # torch alone takes more
    sampling = {r["sampler"]: r for r in results["sampling"]["rows"]}
    assert (
        sampling["ddim 100 (original)"]["evaluations_per_clip"]
        > sampling["dpmsolver++ 20 (vdlib)"]["evaluations_per_clip"]
    )
    assert set(sampling["ddim 100 (original)"]["label_accuracy"]) == {"shape", "colour"}
    render = results["render"]
    assert [r["batch"] for r in render["rows"]] == [1, 4]
    assert render["rows"][0]["videos"] == render["rows"][1]["videos"] >= 4  # the same videos, both ways
    assert render["rows"][1]["mean_abs_difference"] < 1  # batching changes float rounding only
    assert all(r["seconds_per_video"] > 0 for r in render["rows"])
    pose = results["pose"]["rows"][0]
    assert pose["frames"] == 8 and pose["max_keypoint_difference"] < 0.05
    assert [(r["size"], r["frames"]) for r in results["scaling"]["rows"]] == [(16, 4), (16, 8)]
    assert (tmp_path / "scaling.png").stat().st_size > 1000


def test_recipe_benchmark_quick_trains_once_per_base_recipe(tmp_path):
    out = tmp_path / "recipe.json"
    stdout = bench(REPO / "benchmarks" / "recipe.py", "--quick", "--out", out)
    assert "| row | overrides | label accuracy (real) | identity |" in stdout
    rows = {r["row"]: r for r in json.loads(out.read_text())["rows"]}
    assert list(rows) == ["baseline", "guidance 4"]
    assert rows["guidance 4"]["overrides"][-1] == "render.base.guidance=4"
    for row in rows.values():
        metrics = row["metrics"]
        assert set(metrics["label_accuracy"]["generated"]) == {"shape", "colour"}
        assert metrics["temporal"]["ratio"] > 0 and metrics["sampling"]["evaluations_per_video"] > 0
    # A sampling-only change reuses the trained model: same training, same validation loss.
    assert rows["guidance 4"]["metrics"]["train_seconds"] == rows["baseline"]["metrics"]["train_seconds"]
    assert rows["guidance 4"]["metrics"]["val_loss"] == rows["baseline"]["metrics"]["val_loss"]


def test_track_benchmark_tells_smooth_motion_from_shuffled_frames(tmp_path):
    out = tmp_path / "track.json"
    stdout = bench(REPO / "benchmarks" / "track.py", "--quick", "--out", out)
    assert "| videos | count | speed mean | speed median | speed p90 | jerk |" in stdout
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    real, shuffled = rows["real held-out"], rows["real held-out, shuffled"]
    assert real["videos"] == shuffled["videos"] > 0
    # The demo's shapes drift under a pixel per frame at 32 px; shuffled, they jump about.
    assert 0 < real["speed_median"] < 1.5 and real["jerk"] < 1
    assert shuffled["jerk"] > 5 * real["jerk"] and shuffled["speed_p90"] > 3 * real["speed_p90"]


def test_the_gpu_check_says_so_in_one_line_without_a_gpu_and_counts_flops_here():
    """`make bench-gpu` on a machine without CUDA stops at once with one line; its FLOP counting (the
    MFU columns' numerator) runs here on a tiny model and doubles with the batch."""
    import torch

    script = REPO / "benchmarks" / "gpu.py"
    if not torch.cuda.is_available():
        done = subprocess.run([sys.executable, script], capture_output=True, text=True, cwd=REPO, check=False)
        assert done.returncode == 1 and done.stderr == ""
        assert done.stdout.count("\n") == 1 and done.stdout.startswith("gpu.py: no CUDA device here")
    out = bench(script, "--self-check")
    assert "self-check: a tiny model's training step counts" in out and "(2.00x)" in out
