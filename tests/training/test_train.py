"""Training: clip windows, overfitting, exact kill-and-resume, DDP under torchrun."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO, TINY_MODEL, make_testsrc, write_params_file
from vdlib.config import ExtractConfig, TrainConfig, section_from_dict
from vdlib.core.common import VdlibError
from vdlib.data.extract import extract_frames
from vdlib.data.frames import ClipWindows
from vdlib.labels import Labels, write_labels
from vdlib.training.kinds import kind_of
from vdlib.training.train import TrainJob, lr_at, train_model


def test_windows_take_x_frames_from_n_skipping_m():
    w = ClipWindows((100,), window=10, skip=2, val_fraction=0.05)
    assert w.frames == 4  # ceil(10 / 3)
    assert list(w.indices(5)) == [5, 8, 11, 14]
    assert len(w.val_frames) == 10 and len(w.train_frames) == 90 and list(w.train_starts) == list(range(81))
    assert all(s >= 90 and s + 10 <= 100 for s in w.val_starts(8))


def test_windows_of_many_videos_stay_inside_one_video_and_each_video_is_held_out():
    # Videos of 100, 15 (one window: held out whole), 5 (shorter than a window: left out) and 40 frames.
    w = ClipWindows((100, 15, 5, 40), window=10, skip=1, val_fraction=0.1)
    video = np.repeat(np.arange(4), [100, 15, 5, 40])
    for start in w.train_starts:
        assert len(set(video[w.indices(start)])) == 1 and video[start + 9] == video[start]
    assert set(w.train_frames) == set(range(0, 90)) | set(range(120, 150))
    assert set(w.val_frames) == set(range(90, 100)) | set(range(100, 115)) | set(range(150, 160))
    assert not set(w.train_frames) & set(w.val_frames)
    for start in w.val_starts(6):
        assert len(set(video[start : start + 10])) == 1 and set(range(start, start + 10)) <= set(w.val_frames)
    assert {int(video[s]) for s in w.val_starts(6)} == {0, 1, 3}


def test_windows_too_long_for_the_store():
    with pytest.raises(VdlibError) as err:
        ClipWindows((30,), window=20, skip=0, val_fraction=0.05).check("data/frames", "base")
    message = str(err.value)
    assert message.startswith("base.window: clips need 20 consecutive frames of one video")
    assert "the longest video in data/frames has 30 frames" in message
    assert "train.val_fraction=0.05" in message


def test_lr_warms_up_then_decays():
    cfg = section_from_dict("base", {"lr": 0.01, "warmup": 10, "steps": 100})
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.001) and lrs[9] == pytest.approx(0.01)
    assert lrs[50] < 0.01 and lrs[-1] == pytest.approx(0.001, rel=0.01)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A 2 s test-source clip at 12 fps, 16 px frames (24 frames, ~16 training clips), with labels."""
    folder = tmp_path_factory.mktemp("tinydata")
    video = make_testsrc(folder / "src.mp4", 160, 120, 2)
    store = extract_frames(video, folder / "frames", ExtractConfig(resolution=16, fps=12))
    cond = np.zeros((len(store), 2), np.float32)
    cond[: len(store) // 2, 0] = 1
    cond[len(store) // 2 :, 1] = 1
    write_labels(Labels("timestamps", ["g=a", "g=b"], store.times, cond), folder / "labels.parquet")
    return folder


def tiny_job(folder: Path, out: Path, **overrides) -> TrainJob:
    cfg = section_from_dict(
        "base",
        {"resolution": 16, "window": 4, "skip": 0, "batch": 4, "lr": 3e-3, "warmup": 10, "ema_decay": 0.9,
         "image_prob": 0.0, "diffusion": {"min_snr_gamma": 0.0}, "model": TINY_MODEL, **overrides},
    )  # fmt: skip
    train = TrainConfig(ckpt_every=50, val_every=50, log_every=10, threads=1)
    return TrainJob("base", cfg, train, 16, folder / "frames", folder / "labels.parquet", out / "model",
                    out / "reports", resume_root=out / "resume")  # fmt: skip


@pytest.mark.slow
def test_tiny_model_overfits(tiny_data, tmp_path):
    """On ~16 clips, validation loss at fixed noise falls by at least half within 300 steps."""
    wider = {**TINY_MODEL, "channels": 16}  # the 8-channel network halves its loss only by ~400 steps
    job = tiny_job(tiny_data, tmp_path, steps=300, context_prob=0.0, label_dropout=0.0, model=wider)
    train_model(job)
    rows = (job.report_dir / "plots" / "metrics" / "val" / "loss.tsv").read_text().splitlines()[1:]
    history = [float(line.split("\t")[1]) for line in rows]
    assert len(history) == 6
    assert history[-1] <= 0.5 * history[0], history
    assert (job.model_out / "model.safetensors").exists()
    meta = json.loads((job.model_out / "config.json").read_text())
    assert meta["kind"] == "base" and meta["frames"] == 4 and meta["labels"]["names"] == ["g=a", "g=b"]
    assert list((job.report_dir / "samples").glob("step_*.gif"))
    assert not job.resume_root.exists() or not any(job.resume_root.iterdir())


def write_project(root: Path, data: Path, steps: int, ckpt_every: int, **train) -> Path:
    """A project folder whose params.yaml trains the tiny base model (``train``: more train params)."""
    root.mkdir(parents=True)
    params = {
        "train": {"seed": 3, "ckpt_every": ckpt_every, "log_every": 5, "threads": 1, **train},
        "base": {"resolution": 16, "window": 4, "skip": 0, "steps": steps, "batch": 2, "lr": 2e-3,
                 "warmup": 5, "model": {**TINY_MODEL, "dropout": 0.1}},  # masks from Stream.DROPOUT
    }  # fmt: skip
    write_params_file(root / "params.yaml", base=params)
    return root


def run_stage(project: Path, data: Path, extra_env=None, launcher=None) -> subprocess.Popen:
    args = ["base", str(data / "frames"), str(data / "labels.parquet"), "models/base", "reports/train_base"]
    cmd = [*(launcher or [sys.executable]), str(REPO / "stages" / "train.py"), *args]
    env = {**os.environ, **(extra_env or {})}
    return subprocess.Popen(
        cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def weights(project: Path) -> dict[str, torch.Tensor]:
    return load_file(project / "models" / "base" / "model.safetensors")


@pytest.mark.slow
def test_kill_and_resume_ends_with_the_same_weights(tiny_data, tmp_path):
    straight = write_project(tmp_path / "straight", tiny_data, steps=60, ckpt_every=20, val_every=30)
    proc = run_stage(straight, tiny_data)
    assert proc.wait(timeout=300) == 0, proc.stdout.read()

    killed = write_project(tmp_path / "killed", tiny_data, steps=60, ckpt_every=20, val_every=30)
    proc = run_stage(killed, tiny_data)
    deadline = time.time() + 300
    state = None
    while time.time() < deadline:
        found = list((killed / ".vdlib" / "resume").glob("*/state/state.json"))
        if found and json.loads(found[0].read_text())["step"] >= 40:
            state = found[0]
            break
        time.sleep(0.05)
    assert state is not None, "no checkpoint appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "models" / "base").exists()

    proc = run_stage(killed, tiny_data)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "resuming from step" in out
    a, b = weights(straight), weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((killed / ".vdlib" / "resume").glob("*/state"))  # removed once complete
    # The metrics logged before the kill survive in the resumed run's logs.
    rows = (
        (killed / "reports" / "train_base" / "plots" / "metrics" / "train" / "loss.tsv")
        .read_text()
        .splitlines()
    )
    assert rows[0] == "step\tloss" and [int(r.split("\t")[0]) for r in rows[1:]] == list(range(5, 61, 5))
    # Validation every train.val_every steps and at the last: step 30 (before the kill) and 60.
    val = (
        (killed / "reports" / "train_base" / "plots" / "metrics" / "val" / "loss.tsv")
        .read_text()
        .splitlines()
    )
    assert [int(r.split("\t")[0]) for r in val[1:]] == [30, 60]


def test_batches_do_not_depend_on_the_number_of_workers(tiny_data):
    """Worker processes open the memory-mapped store themselves; every step's batch is the same."""
    from torch.utils.data import DataLoader

    from vdlib.labels import read_labels
    from vdlib.training.clips import BatchSpec, ClipBatches

    labels = read_labels(tiny_data / "labels.parquet")
    windows = ClipWindows((len(labels),), window=4, skip=1, val_fraction=0.05)
    spec = BatchSpec(shape=(16, 16), batch=3, flip=False, lowres=True, crop=8)
    data = ClipBatches(tiny_data / "frames", labels.cond, windows, spec, seed=5, first_step=2, last_step=8)
    serial = list(DataLoader(data, batch_size=None, num_workers=0))
    parallel = list(DataLoader(data, batch_size=None, num_workers=2))
    assert (
        len(serial) == 6
        and serial[0]["clip"].shape == (3, 3, 2, 8, 8)
        and serial[0]["cond"].shape == (3, 2, 2)
    )
    for a, b in zip(serial, parallel, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in ("clip", "cond", "lowres"))
    assert not torch.equal(serial[0]["clip"], serial[1]["clip"])


def test_kept_frames_give_the_batches_made_when_asked(tiny_data):
    """A training process keeps its model's resized frames (and an upsampler's low-res input) in
    memory when they fit: its batches are the same numbers, bit for bit, as batches whose frames are
    made when asked, for the base model, a bilinear upsampler and a fitted one."""
    from vdlib.data.frames import FrameStore
    from vdlib.labels import read_labels
    from vdlib.models.upscale import fit_upscale
    from vdlib.training.clips import BatchSpec, ModelFrames, make_batch

    labels = read_labels(tiny_data / "labels.parquet")
    store = FrameStore.open(tiny_data / "frames")
    windows = ClipWindows((len(labels),), window=4, skip=1, val_fraction=0.05)
    fitted = fit_upscale(store.frames, windows.train_frames, (16, 16))
    specs = [
        BatchSpec(shape=(8, 8), batch=3, flip=True),
        BatchSpec(shape=(16, 16), batch=3, flip=False, lowres=True, crop=8),
        BatchSpec(shape=(16, 16), batch=3, flip=False, lowres=True, upscale=fitted),
    ]
    for spec in specs:
        kept, made = ModelFrames(store, spec, keep_bytes=2**30), ModelFrames(store, spec)
        assert kept.kept is not None and made.kept is None
        assert ModelFrames(store, spec, keep_bytes=1000).kept is None  # too large to keep: made when asked
        for step in range(3):
            rows = windows.rows(windows.train_starts[[step, step + 5, 2 * step]])
            a, b = (
                make_batch(f, labels.cond, rows, torch.Generator().manual_seed(step)) for f in (kept, made)
            )
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), spec


def test_image_clips_are_unrelated_training_frames(tiny_data):
    """With base.image_prob, some clips are random frames from the training part (never the held-out
    tail), marked independent; the rest stay windows of consecutive frames."""
    from vdlib.data.frames import FrameStore
    from vdlib.labels import read_labels
    from vdlib.training.clips import BatchSpec, ClipBatches

    labels = read_labels(tiny_data / "labels.parquet")
    store = FrameStore.open(tiny_data / "frames")
    stored = torch.from_numpy(np.array(store.frames)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    windows = ClipWindows((len(labels),), window=4, skip=0, val_fraction=0.2)
    spec = BatchSpec(shape=(16, 16), batch=8, flip=False, image_prob=0.5)
    seen = {True: 0, False: 0}
    data = ClipBatches(tiny_data / "frames", labels.cond, windows, spec, seed=1, first_step=0, last_step=6)
    for batch in (data[i] for i in range(len(data))):
        for clip, independent in zip(batch["clip"], batch["independent"].tolist(), strict=True):
            rows = [int((stored - f).abs().amax(dim=(1, 2, 3)).argmin()) for f in clip.transpose(0, 1)]
            assert all(r < len(windows.train_frames) for r in rows), rows
            if not independent:
                assert rows == list(range(rows[0], rows[0] + 4))
            seen[independent] += 1
    assert seen[True] > 5 and seen[False] > 5, seen


def test_a_training_step_draws_nothing_from_torchs_global_generator(tiny_data, tmp_path):
    """Dropout masks, noise and batches come from the named streams: the global generator is left
    exactly as it was, and the same step twice gives the same loss."""
    from vdlib.training.train import start_run, train_step

    job = tiny_job(tiny_data, tmp_path, steps=2, model={**TINY_MODEL, "dropout": 0.3})
    run = start_run(job)
    batch = next(iter(run.batches()))
    state = torch.get_rng_state()
    first = train_step(run, batch)
    assert torch.equal(torch.get_rng_state(), state)
    again = start_run(job)
    torch.rand(100)  # disturbing the global generator changes nothing
    assert train_step(again, next(iter(again.batches()))) == first


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return out


@pytest.mark.slow
def test_processes_from_params_match_torchrun_and_two_machines_match_one(tiny_data, tmp_path):
    """``train.nproc: 2`` makes the stage start itself under torchrun (as ``dvc repro`` runs it): the
    weights equal a hand-started ``torchrun --nproc_per_node 2``. Two "machines" (two stages with
    ``nnodes: 2``, one process each, meeting on 127.0.0.1) end with the same weights too, written by
    node 0:
    the same two ranks draw the same batches whatever machine they are on."""
    by_hand = write_project(tmp_path / "torchrun", tiny_data, steps=10, ckpt_every=5)
    torchrun = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2"]
    out = finish(run_stage(by_hand, tiny_data, launcher=torchrun))
    assert "base: 2 ranks, weights identical" in out
    files = sorted(str(p.relative_to(by_hand)) for p in by_hand.rglob("*") if p.is_file())
    assert files == [
        "models/base/config.json",
        "models/base/model.safetensors",
        "params.yaml",
        "reports/train_base/metrics.json",
        "reports/train_base/plots/metrics/clips_per_s.tsv",
        "reports/train_base/plots/metrics/lr.tsv",
        "reports/train_base/plots/metrics/train/loss.tsv",
        "reports/train_base/plots/metrics/val/label_gain.tsv",
        "reports/train_base/plots/metrics/val/loss.tsv",
        "reports/train_base/samples/step_000010.gif",
    ]  # rank 0 alone writes, and the resumable state is gone
    assert json.loads((by_hand / "reports" / "train_base" / "metrics.json").read_text())["step"] == 10

    from_params = write_project(tmp_path / "params", tiny_data, steps=10, ckpt_every=5, nproc=2)
    out = finish(run_stage(from_params, tiny_data))
    assert "starting 2 process(es) x 1 machine(s) through torchrun" in out
    assert "base: 2 ranks, weights identical" in out

    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [
        write_project(tmp_path / f"node{rank}", tiny_data, steps=10, ckpt_every=5, nproc=1, nnodes=2,
                      node_rank=rank, rdzv_endpoint=endpoint)
        for rank in (0, 1)
    ]  # fmt: skip
    procs = [run_stage(node, tiny_data) for node in nodes]
    outs = [finish(proc) for proc in procs]
    assert any("base: 2 ranks, weights identical" in out for out in outs)
    written = [node for node in nodes if (node / "models" / "base").exists()]
    assert written == [nodes[0]]  # global rank 0, on node 0, alone writes the model

    expected = weights(by_hand)
    for project in (from_params, written[0]):
        got = weights(project)
        assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)


@pytest.mark.slow
def test_a_killed_process_stops_the_job_with_one_line_and_a_rerun_resumes(tiny_data, tmp_path):
    """Rank 1 killed mid-run takes the job down (no hang): the stage fails in one line, and running it
    again resumes from the last checkpoint to the end."""
    import psutil

    project = write_project(tmp_path / "dies", tiny_data, steps=30, ckpt_every=5, nproc=2)
    proc = run_stage(project, tiny_data)
    deadline = time.time() + 300
    while time.time() < deadline and not list((project / ".vdlib" / "resume").glob("*/state/state.json")):
        time.sleep(0.1)
    workers = [
        p for p in psutil.Process(proc.pid).children(recursive=True)
        if "train.py" in " ".join(p.cmdline()) and p.environ().get("LOCAL_RANK") == "1"
    ]  # fmt: skip
    assert len(workers) == 1, "rank 1 not found"
    workers[0].kill()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, out
    assert "train.py: error: train: a training process failed (2 process(es) x 1 machine(s)" in out

    out = finish(run_stage(project, tiny_data))
    assert "resuming from step" in out and (project / "models" / "base" / "model.safetensors").exists()


def test_pose_labels_are_drawn_as_maps_for_the_base_model_only():
    base, up = section_from_dict("base", {}), section_from_dict("upsampler", {})
    maps = kind_of(base, 32).unet_config(51, "pose")
    assert maps.keypoint_maps == 17 and not maps.skeleton  # 17 keypoints (x, y, confidence)
    assert kind_of(base, 32).unet_config(6, "timestamps").keypoint_maps == 0
    no_maps = section_from_dict("base", {"pose_input": "vector"})
    assert kind_of(no_maps, 32).unet_config(51, "pose").keypoint_maps == 0
    skeleton = kind_of(section_from_dict("base", {"pose_input": "skeleton"}), 32).unet_config(51, "pose")
    assert skeleton.keypoint_maps == 17 and len(skeleton.skeleton) == 19  # COCO's limbs
    assert (
        kind_of(up, 64).unet_config(51, "pose").keypoint_maps == 0
    )  # trained on crops: its low-res input places things


@pytest.mark.slow
def test_a_wide_store_trains_and_renders_its_own_shape(tmp_path):
    """A 16:9 clip kept 16:9 (16x28 stored): the base model trains on 8x14 clips and the upsampler on
    16x28 (random square crops of its rectangle); the cascade makes 16x28 frames from them; a store
    of another aspect is refused with one line, and so is a shape the U-Net cannot halve."""
    from vdlib.generation.cascade import load_cascade, run_model
    from vdlib.models.schedule import SamplingConfig
    from vdlib.training.train import JobData

    video = make_testsrc(tmp_path / "wide.mp4", 320, 180, 2)
    cfg = ExtractConfig(resolution=16, fps=12, aspect="keep")
    store = extract_frames(video, tmp_path / "frames", cfg)
    assert store.shape == (16, 28)
    write_labels(
        Labels("none", [], store.times, np.zeros((len(store), 0), np.float32)), tmp_path / "labels.parquet"
    )
    train = TrainConfig(ckpt_every=50, val_every=50, log_every=10, threads=1)
    inputs = (tmp_path / "frames", tmp_path / "labels.parquet")
    base_cfg = section_from_dict(
        "base", {"resolution": 8, "window": 4, "skip": 0, "steps": 3, "batch": 2, "model": TINY_MODEL}
    )
    up_cfg = section_from_dict(
        "upsampler", {"window": 4, "skip": 0, "steps": 3, "batch": 2, "crop": 8, "model": TINY_MODEL,
                      "mapping_channels": 4}
    )  # fmt: skip
    resume = tmp_path / "resume"
    jobs = [
        TrainJob("base", base_cfg, train, 8, *inputs, tmp_path / "base", tmp_path / "rb", resume),
        TrainJob("upsampler_16", up_cfg, train, 16, *inputs, tmp_path / "up", tmp_path / "ru", resume),
    ]
    for job, shape in zip(jobs, ([8, 14], [16, 28]), strict=True):
        train_model(job)
        assert json.loads((job.model_out / "config.json").read_text())["shape"] == shape

    sampling = [SamplingConfig(steps=2), SamplingConfig(steps=1)]
    cascade = load_cascade([tmp_path / "base", tmp_path / "up"], sampling, ["b", "u"], torch.device("cpu"))
    low = run_model(cascade[0], 0, None, 6, [0], torch.device("cpu")).clip
    high = run_model(cascade[1], 1, None, 6, [0], torch.device("cpu"), low).clip
    assert low.shape == (1, 3, 6, 8, 14) and high.shape == (1, 3, 6, 16, 28)

    extract_frames(video, tmp_path / "square", ExtractConfig(resolution=16, fps=12))
    with pytest.raises(
        VdlibError, match=r"base: trained on 8x14 frames, but .*square holds frames of another"
    ):
        JobData.for_model(tmp_path / "square", tmp_path / "labels.parquet", cascade[0])
    cinema = extract_frames(make_testsrc(tmp_path / "c.mp4", 320, 136, 2), tmp_path / "cinema", cfg)
    assert cinema.shape == (16, 38)
    odd = TrainJob(
        "base", base_cfg, train, 8, tmp_path / "cinema", *inputs[1:], tmp_path / "x", tmp_path / "y"
    )
    with pytest.raises(VdlibError, match=r"base.model.mults: base frames of 8x19 .* must be multiples of 2"):
        JobData.open(odd)


def dot_store(folder: Path, centres: list[tuple[int, int]]) -> tuple[Path, np.ndarray]:
    """A 64x112 store of black frames, frame i with a white 2x2 dot whose top-left pixel is
    ``centres[i]`` (y, x), and pose labels whose nose is that dot, the rest unseen."""
    from vdlib.data.frames import FrameStoreWriter

    writer = FrameStoreWriter(folder / "frames", (64, 112))
    cond = np.zeros((len(centres), 51), np.float32)
    for i, (y, x) in enumerate(centres):
        frame = np.zeros((64, 112, 3), np.uint8)
        frame[y : y + 2, x : x + 2] = 255
        writer.file.write(frame.tobytes())
        cond[i, :3] = [(x + 1) / 112, (y + 1) / 64, 1.0]  # the dot's centre, normalised per axis
    writer.close(np.arange(len(centres)) / 10.0, {"fps": 10.0})
    return folder / "frames", cond


def test_flips_and_zooms_move_pose_keypoints_with_the_picture(tmp_path):
    """The dot a nose keypoint names stays under it through random zooms (cut from the stored frames,
    so as sharp as unzoomed clips) and flips (x mirrored, left and right swapped)."""
    from vdlib.data.frames import FrameStore
    from vdlib.labels.pose import KEYPOINTS, mirror_keypoints
    from vdlib.training.clips import BatchSpec, ModelFrames, make_batch

    rng = np.random.default_rng(0)
    centres = [(int(rng.integers(24, 38)), int(rng.integers(44, 66))) for _ in range(12)]
    frames_dir, cond = dot_store(tmp_path, centres)
    store = FrameStore.open(frames_dir)
    spec = BatchSpec(shape=(32, 56), batch=6, flip=True, zoom=0.3, keypoints=True)
    unflipped = BatchSpec(shape=(32, 56), batch=6, flip=False, zoom=0.3, keypoints=True)
    rows = np.arange(12).reshape(6, 2)
    plain = make_batch(ModelFrames(store, BatchSpec(shape=(32, 56), batch=6, flip=False)), cond, rows)
    flips = moved = 0
    for step in range(4):
        batch, same_boxes = (
            make_batch(ModelFrames(store, s), cond, rows, torch.Generator().manual_seed(step))
            for s in (spec, unflipped)
        )
        assert batch["clip"].shape == (6, 3, 2, 32, 56)
        for clip, labels in zip(batch["clip"], batch["cond"], strict=True):
            for frame, keypoints in zip(clip.transpose(0, 1), labels, strict=True):
                grey = frame.mean(0)
                y, x = np.unravel_index(int(grey.argmax()), grey.shape)
                assert keypoints[2] == 1.0 and keypoints[3:].abs().max() == 0
                assert abs(x + 0.5 - keypoints[0] * 56) <= 1.0 and abs(y + 0.5 - keypoints[1] * 32) <= 1.0
                assert grey.max() >= -0.5  # the dot is there: at least a quarter of a pixel white
        for a, b in zip(batch["clip"], same_boxes["clip"], strict=True):
            assert torch.equal(a, b) or torch.equal(a, b.flip(-1))
            flips += not torch.equal(a, b)
        moved += int((batch["cond"][..., :2] - plain["cond"][..., :2]).abs().amax(-1).gt(2 / 56).sum())
    assert 4 <= flips <= 20 and moved > 12
    # Mirroring twice is no change; a left shoulder becomes a right one.
    shoulder = torch.zeros(51)
    left = 3 * KEYPOINTS.index("left_shoulder")
    shoulder[left : left + 3] = torch.tensor([0.25, 0.5, 0.9])
    mirrored = mirror_keypoints(shoulder).reshape(17, 3)
    assert mirrored[KEYPOINTS.index("right_shoulder")].tolist() == [0.75, 0.5, pytest.approx(0.9)]
    assert mirrored[KEYPOINTS.index("left_shoulder")].tolist() == [0.0, 0.0, 0.0]
    assert torch.equal(mirror_keypoints(mirror_keypoints(shoulder)), shoulder)


@pytest.mark.slow
def test_weight_neutral_keys_leave_the_weights_alone(tiny_data, tmp_path):
    """The train keys dvc.yaml does not track (WEIGHT_NEUTRAL_KEYS) give the same model bytes: a run
    that checkpoints, validates, logs and samples at other steps, with loader processes, ends where
    the plain run does."""
    plain = write_project(tmp_path / "plain", tiny_data, steps=24, ckpt_every=50)
    busy = write_project(tmp_path / "busy", tiny_data, steps=24, ckpt_every=5, workers=2, val_every=7,
                         log_every=1, sample_every=10)  # fmt: skip
    for project in (plain, busy):
        proc = run_stage(project, tiny_data)
        assert proc.wait(timeout=300) == 0, proc.stdout.read()
    model = Path("models/base/model.safetensors")
    assert (plain / model).read_bytes() == (busy / model).read_bytes()
    assert list((busy / "reports/train_base/samples").glob("step_000010.gif"))


def test_a_gpu_out_of_memory_stops_with_one_line_and_keeps_the_checkpoint(tiny_data, tmp_path, monkeypatch):
    """CUDA running out of memory mid-training (raised here at step 7 as torch raises it; a CPU cannot
    run out for real) stops with one line naming the params to lower; the checkpoint of step 5 stays,
    and the same params resume from it."""
    import dataclasses

    import vdlib.training.train

    job = tiny_job(tiny_data, tmp_path, steps=10)
    job = dataclasses.replace(job, train=dataclasses.replace(job.train, ckpt_every=5))
    real_step = vdlib.training.train.train_step

    def step_out_of_memory_at_7(run, batch):
        if run.step == 6:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_step(run, batch)

    monkeypatch.setattr(vdlib.training.train, "train_step", step_out_of_memory_at_7)
    with pytest.raises(VdlibError) as err:
        train_model(job)
    assert str(err.value) == (
        "train base: the GPU ran out of memory (CUDA out of memory. Tried to allocate 20.00 GiB): lower "
        "base.batch or base.window; the last checkpoint is kept, and a re-run with the same params "
        "resumes from it"
    )
    assert list(job.resume_root.glob("*/state/state.json"))
    monkeypatch.setattr(vdlib.training.train, "train_step", real_step)
    assert train_model(job)["steps"] == 10
