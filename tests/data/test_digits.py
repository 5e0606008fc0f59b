"""The fine-grained dataset: real handwritten digit scans drifting over a dark background."""

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import REPO
from vdlib.config import ExtractConfig
from vdlib.data.digits import (
    DigitsConfig,
    digits_schedule,
    load_scans,
    render_digits_frames,
    write_digits_table,
)
from vdlib.data.extract import extract_frames
from vdlib.labels.tables import timestamp_labels


def test_schedule_uses_every_digit_each_cycle_and_never_a_scan_twice():
    _, digits = load_scans()
    segments = digits_schedule(DigitsConfig(), digits)
    assert segments[0].start == 0 and segments[-1].end == 240
    assert all(a.end == b.start for a, b in itertools.pairwise(segments))
    assert all(2.0 <= s.end - s.start <= 4.0 for s in segments[:-1])
    assert all(set(s.digit for s in segments[i : i + 10]) == set(range(10)) for i in range(0, 50, 10))
    assert all(a.digit != b.digit for a, b in itertools.pairwise(segments))
    assert len({s.scan for s in segments}) == len(segments)
    assert all(digits[s.scan] == s.digit for s in segments)
    assert digits_schedule(DigitsConfig(seed=1), digits) != segments


def _bright_crop_as_scan(frame: np.ndarray) -> np.ndarray:
    """The ink of a frame (bright pixels) in its bounding square, shrunk back to 8x8 in [0, 1]."""
    grey = frame.astype(np.float32).mean(axis=2)
    ys, xs = np.nonzero(grey > 90)
    side = max(np.ptp(ys), np.ptp(xs)) + 1
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    crop = grey[max(0, cy - side // 2) : cy + side // 2 + 1, max(0, cx - side // 2) : cx + side // 2 + 1]
    small = np.asarray(Image.fromarray(crop).resize((8, 8), Image.BOX))
    return (small - small.min()) / (small.max() - small.min())


def test_frames_show_the_scheduled_scan_moving_smoothly():
    cfg = DigitsConfig(seconds=6)
    scans, digits = load_scans()
    segments = digits_schedule(cfg, digits)
    frames = list(render_digits_frames(cfg, segments, scans))
    assert len(frames) == 60 and frames[0].shape == (144, 192, 3)
    for i in (5, 35):  # mid-segment frames: the scan drawn is the one the schedule names
        segment = next(s for s in segments if s.start <= i / cfg.fps < s.end)
        seen = _bright_crop_as_scan(frames[i]).ravel()
        nearest = np.argsort([np.abs(seen - s.ravel() / max(s.max(), 1e-6)).mean() for s in scans])[:5]
        assert digits[nearest[0]] == segment.digit, (i, segment, nearest)
    # One object drifting: its ink's centre moves a few pixels per frame, never jumps.
    centres = []
    for frame in frames:
        ys, xs = np.nonzero(frame.mean(axis=2) > 90)
        centres.append(((ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2))
    steps = np.hypot(*np.diff(np.array(centres), axis=0).T)
    within = [
        steps[i - 1] for i in range(1, len(frames))
        if not any(abs(i / cfg.fps - s.end) < 0.15 for s in segments)
    ]  # fmt: skip
    assert 0.3 < np.median(within) < 6 and max(within) < 12


def test_command_writes_a_clip_whose_table_labels_every_frame(tmp_path):
    video, table = tmp_path / "digits.mkv", tmp_path / "digits.csv"
    vdlib = Path(sys.executable).parent / "vdlib"
    done = subprocess.run([vdlib, "digits-video", "-o", video, "--table", table, "--seconds", "8"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    store = extract_frames(video, tmp_path / "frames", ExtractConfig(resolution=32, fps=10))
    assert len(store) == 80
    labels = timestamp_labels(store, [table])
    assert set(labels.names) <= {f"digit={d}" for d in range(10)}
    assert np.array_equal(labels.cond.sum(axis=1), np.ones(len(store)))  # one digit on every frame
    bad = subprocess.run([vdlib, "digits-video", "-o", tmp_path / "x.mkv", "--width", "8"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].endswith(
        "digits clip: width: expected at least 32 pixels, got 8"
    )
    assert not (tmp_path / "x.mkv").exists()


def test_shipped_table_is_the_default_schedule(tmp_path):
    out = tmp_path / "digits.csv"
    write_digits_table(digits_schedule(DigitsConfig(), load_scans()[1]), out)
    assert out.read_text() == (REPO / "labels" / "tables" / "digits.csv").read_text()
