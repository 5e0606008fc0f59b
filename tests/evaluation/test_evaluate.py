"""Metrics: PSNR/SSIM, temporal consistency, the label classifier, upsampler fidelity."""

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from tests.conftest import cascade, labelled_demo
from vdlib.config import DemoConfig, EvaluateConfig
from vdlib.data.demo import render_demo_video
from vdlib.data.frames import ClipWindows
from vdlib.evaluation.classifier import identity_stability, label_accuracy, predict, targets, train_classifier
from vdlib.evaluation.evaluate import RealReference, psnr, ssim, temporal_consistency
from vdlib.evaluation.motion import (
    frame_differences,
    mean_difference,
    motion_distance,
    pixel_changes,
    video_pixel_changes,
)
from vdlib.generation.render import Rendered
from vdlib.training.train import JobData


def test_psnr_and_ssim_on_known_images():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    assert psnr(a, a) == math.inf and ssim(a, a) == pytest.approx(1.0)
    flat = np.zeros((2, 16, 16, 3), np.uint8)
    assert psnr(flat, flat + 16) == pytest.approx(20 * math.log10(255 / 16), rel=1e-5)
    noisy = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    very_noisy = np.clip(a + rng.normal(0, 60, a.shape), 0, 255).astype(np.uint8)
    assert 0 < ssim(a, very_noisy) < ssim(a, noisy) < 1
    assert psnr(a, very_noisy) < psnr(a, noisy)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """The whole 120 s demo (each shape in every colour), 32 px frames at 10 fps, with its labels."""
    folder = tmp_path_factory.mktemp("evaluate")
    video = render_demo_video(DemoConfig(width=96, height=72), folder / "demo.mkv")
    return labelled_demo(video, folder, resolution=32)


def rendered_from(clips: dict[str, np.ndarray], borders: list[int]) -> Rendered:
    videos = [{"name": n, "request": "labels", "borders": borders, "seconds": [1.0], "evaluations": [4]}
              for n in clips]  # fmt: skip
    return Rendered({"videos": videos, "models": [{"folder": "models/base", "size": 32}]}, clips, {})


def test_temporal_consistency_is_one_for_real_clips_and_zero_for_frozen(demo_store):
    store, _ = demo_store
    ref = RealReference(store, ClipWindows.for_store(store, window=4, skip=1, val_fraction=0.05))
    real = mean_difference(*ref.pairs((32, 32)))
    starts = range(0, len(store) - 40, 13)
    clips = {f"v{s}": np.asarray(store.frames[s : s + 32 : 2]) for s in starts}
    ratio, per_pair = temporal_consistency(rendered_from(clips, [8]), real)
    assert ratio["ratio"] == pytest.approx(1.0, abs=0.15)
    assert len(per_pair) == 15
    frozen = {k: np.repeat(v[:1], 16, axis=0) for k, v in clips.items()}
    assert temporal_consistency(rendered_from(frozen, [8]), real)[0]["ratio"] == 0.0
    flicker = {k: np.where(np.arange(16)[:, None, None, None] % 2, 255 - v, v) for k, v in clips.items()}
    flickering = temporal_consistency(rendered_from(flicker, [8]), real)[0]
    assert flickering["ratio"] > 5 and flickering["border_ratio"] > 5
    one_window = temporal_consistency(rendered_from(flicker, []), real)[0]  # no borders: no border ratio
    assert one_window["ratio"] == flickering["ratio"] and np.isnan(one_window["border_ratio"])
    steps = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 50)])
    np.testing.assert_array_equal(frame_differences(steps), [10.0, 30.0])


def test_motion_distance_is_small_for_real_clips_and_large_for_shuffled_or_boiling_ones(demo_store):
    """The mean frame difference cannot tell smooth motion from frames in the wrong order or noise
    that boils in place; the distribution of per-pixel changes can."""
    store, _ = demo_store
    reference = pixel_changes(*RealReference(store, ClipWindows.for_store(store, 4, 1, 0.05)).pairs((32, 32)))
    rng = np.random.default_rng(0)
    clips = [np.asarray(store.frames[s : s + 32 : 2]) for s in range(0, len(store) - 40, 13)]
    shuffled = [clip[rng.permutation(len(clip))] for clip in clips]
    jumping = [np.asarray(store.frames[np.sort(rng.choice(len(store), 16, replace=False))]) for _ in clips]
    boiling = [np.clip(c + rng.normal(0, 6, c.shape), 0, 255).astype(np.uint8) for c in clips]
    distance = {
        name: motion_distance(video_pixel_changes(videos), reference)
        for name, videos in [
            ("real", clips),
            ("shuffled", shuffled),
            ("jumping", jumping),
            ("boiling", boiling),
        ]
    }
    assert distance["real"] < 0.5
    for name in ("shuffled", "jumping", "boiling"):
        assert distance[name] > 4 * distance["real"] + 1, distance


@pytest.mark.slow
def test_label_classifier_reads_shape_and_colour_of_held_out_frames(demo_store):
    store, labels = demo_store
    split = int(len(store) * 0.9)
    classifier = train_classifier(
        store.frames[:split], labels.cond[:split], labels.names, EvaluateConfig(classifier_steps=800)
    )
    real = np.asarray(store.frames[split:])
    held_out = label_accuracy(classifier, real, labels.cond[split:], labels.names, 32)
    assert held_out["shape"] >= 0.75 and held_out["colour"] >= 0.95  # chance: 1/3
    # A shape drawn a little larger or softer is the same shape: the classifier must not tell circles
    # from squares by their area (the demo's squares circumscribe its circles) or by edge sharpness.
    zoomed = np.stack([np.asarray(Image.fromarray(f).resize((35, 35), Image.BICUBIC)) for f in real])
    zoomed = zoomed[:, 1:33, 1:33]  # 1.09x
    blurred = np.stack([np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(0.8))) for f in real])
    for changed in (zoomed, blurred):
        assert label_accuracy(classifier, changed, labels.cond[split:], labels.names, 32)["shape"] >= 0.75
    # Identity: consecutive held-out frames (at the clips' rate) keep their label; the same labels
    # asked of frames picked at random from the whole video do not.
    sequences = [np.arange(split, len(store))[offset::2] for offset in (0, 1)]
    truth = [targets(labels.cond[rows], labels.names) for rows in sequences]
    read = [predict(classifier, np.asarray(store.frames[rows]), 32) for rows in sequences]
    stable = identity_stability(read, truth, labels.names)
    rng = np.random.default_rng(0)
    jumbled = [
        predict(classifier, np.asarray(store.frames[rng.choice(split, len(rows))]), 32) for rows in sequences
    ]
    unstable = identity_stability(jumbled, truth, labels.names)
    assert min(stable.values()) >= 0.9 and max(unstable.values()) < 0.6
    # Asking for other labels than the frames show scores low: the metric can fail.
    wrong = np.roll(labels.cond[split:], 1, axis=1)  # every label moved to its neighbour's slot
    assert label_accuracy(classifier, store.frames[split:], wrong, labels.names, 32)["colour"] < 0.3


def test_label_gain_is_zero_for_a_model_blind_to_its_labels(models):
    """``label_gain`` compares the held-out loss with and without the labels: a model whose label
    pathway gives every frame the null embedding gains exactly nothing; the trained one does differ."""
    base = cascade(models)[0]
    validation = JobData.for_model(models / "frames", models / "labels.parquet", base).validation(
        base.diffusion, None, 0
    )
    net = base.net
    assert validation.loss(net, "cpu", labels=False) != validation.loss(net, "cpu")
    assert validation.label_gain(net, "cpu") != 0
    with torch.no_grad():  # labels now map to the null embedding: the model cannot read them
        last = net.cond_mlp[-1]
        last.weight.zero_()
        last.bias.copy_(net.null_cond)
    assert validation.loss(net, "cpu", labels=False) == validation.loss(net, "cpu")
    assert validation.label_gain(net, "cpu") == 0
