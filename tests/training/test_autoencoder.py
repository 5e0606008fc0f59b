"""The autoencoder stage and the latent base model: training, resuming, the folder with none, rendering."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO, make_testsrc, write_params_file
from vdlib.check import check_latents
from vdlib.config import AutoencoderParams, ExtractConfig, TrainConfig, section_from_dict
from vdlib.core.common import VdlibError, is_not_trained
from vdlib.data.extract import extract_frames
from vdlib.evaluation.evaluate import autoencoder_fidelity
from vdlib.generation.cascade import open_model, run_model
from vdlib.labels import Labels, write_labels
from vdlib.models.autoencoder import AutoencoderConfig, FrameAutoencoder, load_autoencoder, save_autoencoder
from vdlib.models.schedule import SamplingConfig
from vdlib.training.autoencoder import AutoencoderJob, train_autoencoder
from vdlib.training.train import JobData, TrainJob, train_model

BASE = {"resolution": 32, "window": 4, "skip": 0, "batch": 2, "lr": 2e-3, "warmup": 5, "image_prob": 0.0,
        "model": {"channels": 8, "mults": [1, 2], "spatial_attn_levels": [], "heads": 2}}  # fmt: skip


@pytest.fixture(scope="module")
def wide_data(tmp_path_factory):
    """3 s of a moving test pattern at 12 fps, stored at 32x56 (16:9 kept), with two labels."""
    folder = tmp_path_factory.mktemp("latentdata")
    video = make_testsrc(folder / "src.mp4", 320, 180, 3)
    store = extract_frames(video, folder / "frames", ExtractConfig(resolution=32, fps=12, aspect="keep"))
    cond = np.zeros((len(store), 2), np.float32)
    cond[: len(store) // 2, 0] = 1
    cond[len(store) // 2 :, 1] = 1
    write_labels(Labels("timestamps", ["g=a", "g=b"], store.times, cond), folder / "labels.parquet")
    return folder


def autoencoder_job(data: Path, out: Path, steps: int, **train) -> AutoencoderJob:
    params = section_from_dict("autoencoder", {"steps": steps, "channels": 16, "batch": 8, "crop": 0})
    base = section_from_dict("base", {**BASE, "steps": 10})
    return AutoencoderJob(params, base, TrainConfig(threads=1, log_every=10, **train), data / "frames",
                          out / "autoencoder", out / "reports", resume_root=out / "resume")  # fmt: skip


@pytest.mark.slow
def test_the_autoencoder_holds_more_than_pixels_and_a_latent_base_model_renders_frames(wide_data, tmp_path):
    """The autoencoder's held-out reconstructions beat the frames brought down to its latents' size
    and back; a base model trained on its latents renders frames of the stored shape, on its own."""
    metrics = train_autoencoder(autoencoder_job(wide_data, tmp_path, steps=300), autoencoder_fidelity)
    assert metrics["steps"] == 300
    assert metrics["psnr"] > metrics["bilinear_psnr"] + 1, metrics
    assert metrics["ssim"] > metrics["bilinear_ssim"], metrics
    summary = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert summary["heldout"]["psnr"] == pytest.approx(metrics["psnr"])
    coder = load_autoencoder(tmp_path / "autoencoder")
    assert coder.cfg.factor == 4 and len(coder.cfg.latent_std) == 4

    cfg = section_from_dict("base", {**BASE, "steps": 10})
    job = TrainJob("base", cfg, TrainConfig(threads=1, ckpt_every=100), 32, wide_data / "frames",
                   wide_data / "labels.parquet", tmp_path / "base", tmp_path / "base_reports",
                   resume_root=tmp_path / "resume", autoencoder_dir=tmp_path / "autoencoder")  # fmt: skip
    train_model(job)
    assert (tmp_path / "base" / "autoencoder.safetensors").is_file()
    sampling = SamplingConfig(steps=4, guidance=2.0, context=2, windows="chain")
    model = open_model(tmp_path / "base", sampling, "render.base", torch.device("cpu"))
    assert model.card.unet.image_channels == 4 and model.card.network_shape == (8, 14)
    cond = np.tile(np.array([[1.0, 0.0]], np.float32), (1, 6, 1))
    made = run_model(model, 0, cond, 6, [0], torch.device("cpu")).clip  # two chained windows
    assert made.shape == (1, 3, 6, 32, 56) and made.abs().max() <= 1 and made.std() > 0.05
    again = run_model(model, 0, cond, 6, [0], torch.device("cpu")).clip
    assert torch.equal(made, again)
    # Evaluation reads its held-out clips as latents too.
    data = JobData.for_model(wide_data / "frames", wide_data / "labels.parquet", model)
    val = data.validation(model.diffusion, None, 0)
    assert val.batch["clip"].shape[1:] == (4, 4, 8, 14)
    assert np.isfinite(val.loss(model.net, torch.device("cpu")))


def run_autoencoder_stage(project: Path, data: Path) -> subprocess.Popen:
    cmd = [sys.executable, str(REPO / "stages" / "train_autoencoder.py"), str(data / "frames"),
           "models/autoencoder", "reports/train_autoencoder"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def autoencoder_project(root: Path, steps: int) -> Path:
    root.mkdir(parents=True)
    params = {
        "train": {"seed": 1, "ckpt_every": 10, "log_every": 5, "threads": 1},
        "base": {**BASE, "steps": 10},
        "autoencoder": {"steps": steps, "channels": 8, "batch": 4, "crop": 16},
    }
    write_params_file(root / "params.yaml", base=params)
    return root


@pytest.mark.slow
def test_a_killed_autoencoder_resumes_to_the_same_weights(wide_data, tmp_path):
    straight = autoencoder_project(tmp_path / "straight", steps=60)
    proc = run_autoencoder_stage(straight, wide_data)
    assert proc.wait(timeout=300) == 0, proc.stdout.read()

    killed = autoencoder_project(tmp_path / "killed", steps=60)
    proc = run_autoencoder_stage(killed, wide_data)
    deadline, found = time.time() + 300, []
    while time.time() < deadline and not found:
        found = [s for s in (killed / ".vdlib" / "resume").glob("*/state/state.json")
                 if json.loads(s.read_text())["step"] >= 30]  # fmt: skip
        time.sleep(0.05)
    assert found, "no checkpoint appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "models" / "autoencoder").exists()
    proc = run_autoencoder_stage(killed, wide_data)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "resuming from step" in out, out
    a = load_file(straight / "models" / "autoencoder" / "model.safetensors")
    b = load_file(killed / "models" / "autoencoder" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((killed / "models" / "autoencoder" / "config.json").read_text())
    assert config == json.loads((straight / "models" / "autoencoder" / "config.json").read_text())


def test_no_autoencoder_is_a_folder_that_says_so_and_the_base_model_diffuses_pixels(wide_data, tmp_path):
    assert train_autoencoder(autoencoder_job(wide_data, tmp_path, steps=0)) == {"steps": 0.0}
    assert is_not_trained(tmp_path / "autoencoder") and load_autoencoder(tmp_path / "autoencoder") is None
    assert json.loads((tmp_path / "reports" / "metrics.json").read_text()) == {"steps": 0}
    cfg = section_from_dict("base", {**BASE, "steps": 10})
    job = TrainJob("base", cfg, TrainConfig(), 32, wide_data / "frames", wide_data / "labels.parquet",
                   tmp_path / "base", tmp_path / "r", autoencoder_dir=tmp_path / "autoencoder")  # fmt: skip
    assert job.autoencoder is None and job.kind.unet_config(2, "timestamps").image_channels == 3


def test_an_autoencoder_folder_loads_what_was_saved_and_refuses_other_weights(tmp_path):
    torch.manual_seed(0)
    coder = FrameAutoencoder(AutoencoderConfig(channels=8, latent_mean=(0.1,) * 4, latent_std=(2.0,) * 4))
    save_autoencoder(coder, tmp_path / "a")
    loaded = load_autoencoder(tmp_path / "a")
    frames = torch.rand(2, 3, 16, 24) * 2 - 1
    assert torch.equal(loaded.encode(frames), coder.eval().encode(frames))
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    (tmp_path / "a" / "config.json").write_text(json.dumps({**config, "channels": 16}))
    with pytest.raises(VdlibError, match=r"model.safetensors: weights do not match config.json"):
        load_autoencoder(tmp_path / "a")
    with pytest.raises(VdlibError, match="not a vdlib autoencoder"):
        load_autoencoder(tmp_path / "missing")


def test_params_that_cannot_work_with_latents_fail_before_training():
    latents = AutoencoderParams(steps=100)
    base = section_from_dict("base", {**BASE, "steps": 10})
    check_latents(latents, base)  # 32 px, latents 8 px, a 2-level network: fine
    check_latents(AutoencoderParams(steps=0), section_from_dict("base", {**BASE, "flip": True}))
    with pytest.raises(VdlibError, match=r"base.flip: expected false with an autoencoder"):
        check_latents(latents, section_from_dict("base", {**BASE, "flip": True}))
    with pytest.raises(VdlibError, match=r"base.zoom: expected 0 with an autoencoder"):
        check_latents(latents, section_from_dict("base", {**BASE, "zoom": 0.5}))
    with pytest.raises(VdlibError, match=r"base.resolution: expected a multiple of 8 with an autoencoder"):
        check_latents(latents, section_from_dict("base", {**BASE, "resolution": 36}))
    with pytest.raises(VdlibError, match=r"autoencoder.crop: expected 0 \(whole frames\) or a multiple of 4"):
        section_from_dict("autoencoder", {"crop": 30})
    with pytest.raises(VdlibError, match=r"upsampler.steps: expected 0 \(none trained\) or an integer >= 1"):
        section_from_dict("upsampler", {"steps": -1})
