import hashlib
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np

from tests.conftest import REPO, SHORT_DEMO
from vdlib.config import DemoConfig
from vdlib.data.demo import COLOURS, SHAPES, demo_schedule, render_demo_video, write_schedule_csv
from vdlib.data.video import FrameFit, decode_frames, probe
from vdlib.labels.tables import read_table


def test_schedule_covers_every_pair_and_the_whole_clip():
    segments = demo_schedule(DemoConfig())
    assert segments[0].start == 0 and segments[-1].end == 120
    assert all(a.end == b.start for a, b in itertools.pairwise(segments))
    assert all(3.0 <= s.end - s.start <= 6.0 for s in segments[:-1])
    assert {(s.shape, s.colour) for s in segments} == {(s, c) for s in SHAPES for c in COLOURS}
    assert all((a.shape, a.colour) != (b.shape, b.colour) for a, b in itertools.pairwise(segments))


def test_schedule_is_prefix_stable_and_seeded():
    long = demo_schedule(DemoConfig(seconds=120))
    short = demo_schedule(DemoConfig(seconds=20))
    assert [(s.shape, s.colour, s.start) for s in short] == [
        (s.shape, s.colour, s.start) for s in long[: len(short)]
    ]
    assert demo_schedule(DemoConfig(seed=1)) != long


def test_shipped_table_is_the_default_schedule(tmp_path):
    out = tmp_path / "demo.csv"
    write_schedule_csv(demo_schedule(DemoConfig()), out)
    assert out.read_text() == (REPO / "labels" / "tables" / "demo.csv").read_text()
    rows = read_table(REPO / "labels" / "tables" / "demo.csv")
    assert {r.group for r in rows} == {"shape", "colour"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_video_is_deterministic_and_seeded(tmp_path, demo_video):
    again = render_demo_video(SHORT_DEMO, tmp_path / "again.mkv")
    other = render_demo_video(replace(SHORT_DEMO, seed=3), tmp_path / "other.mkv")
    assert _sha(again) == _sha(demo_video)
    assert _sha(other) != _sha(demo_video)
    info = probe(demo_video)
    assert (info.width, info.height, info.fps) == (96, 72, 10.0)
    assert abs(info.duration_s - 8.0) < 0.2


def test_video_shows_the_scheduled_colour(demo_video):
    """The dominant saturated colour of each frame is the colour the schedule names."""
    frames = np.concatenate(list(decode_frames(demo_video, FrameFit.square(96), fps=10)))
    segments = demo_schedule(SHORT_DEMO)
    rgb = {name: np.array(c) for name, c in COLOURS.items()}
    hits = 0
    for i, frame in enumerate(frames):
        t = i / 10
        expected = next(s for s in segments if s.start <= t < s.end).colour
        pixels = frame.reshape(-1, 3).astype(int)
        saturated = pixels[(pixels.max(1) - pixels.min(1)) > 100]
        votes = {name: int((np.abs(saturated - c).sum(1) < 90).sum()) for name, c in rgb.items()}
        hits += max(votes, key=votes.get) == expected
    assert hits >= len(frames) - 2  # one frame of codec blur allowed at each change
