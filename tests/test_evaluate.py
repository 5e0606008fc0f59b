"""Metrics: PSNR/SSIM, temporal consistency, the label classifier, upsampler fidelity."""

import math
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFilter

from vdlib.config import DemoConfig, EvaluateConfig, ExtractConfig
from vdlib.demo import demo_schedule, render_demo_video, write_schedule_csv
from vdlib.evaluate import (
    RealReference,
    frame_differences,
    label_accuracy,
    psnr,
    ssim,
    temporal_consistency,
    train_classifier,
)
from vdlib.extract import extract_frames
from vdlib.frames import ClipWindows
from vdlib.render import Rendered
from vdlib.tables import LabelRangeWarning, timestamp_labels


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
    cfg = DemoConfig(width=96, height=72)
    video = render_demo_video(cfg, folder / "demo.mkv")
    store = extract_frames(video, folder / "frames", ExtractConfig(size=32, fps=10))
    write_schedule_csv(demo_schedule(DemoConfig()), folder / "demo.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelRangeWarning)
        labels = timestamp_labels(store, [folder / "demo.csv"])
    return store, labels


def rendered_from(clips: dict[str, np.ndarray], borders: list[int]) -> Rendered:
    videos = [{"name": n, "request": "labels", "borders": borders, "seconds": [1.0], "evaluations": [4]}
              for n in clips]  # fmt: skip
    return Rendered({"videos": videos, "models": [{"folder": "models/base", "size": 32}]}, clips, {})


def test_temporal_consistency_is_one_for_real_clips_and_zero_for_frozen(demo_store):
    store, _ = demo_store
    ref = RealReference(store, ClipWindows.for_store(store, window=4, skip=1, val_fraction=0.05))
    real = ref.temporal_difference(32)
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
    steps = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 50)])
    np.testing.assert_array_equal(frame_differences(steps), [10.0, 30.0])


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
    # Asking for other labels than the frames show scores low: the metric can fail.
    wrong = np.roll(labels.cond[split:], 1, axis=1)  # every label moved to its neighbour's slot
    assert label_accuracy(classifier, store.frames[split:], wrong, labels.names, 32)["colour"] < 0.3
