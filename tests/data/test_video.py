"""ffmpeg wrappers: probing, streaming decode, encoding (GIF, MP4, the pipe writer) and remuxing."""

import imageio.v3 as iio
import numpy as np
import pytest

from tests.conftest import leftovers
from vdlib.core.common import VdlibError
from vdlib.data.video import (
    DecodeResult,
    FrameFit,
    VideoWriter,
    decode_frames,
    probe,
    remux,
    write_gif,
    write_mp4,
)


def ramp(frames: int = 6, size: int = 32) -> np.ndarray:
    """Frames whose brightness rises by 40 grey levels per frame, with a bright square that moves."""
    out = np.zeros((frames, size, size, 3), np.uint8)
    for i in range(frames):
        out[i] = 20 + 30 * i
        out[i, 8:16, 4 * i : 4 * i + 8] = 250
    return out


def test_probe_reads_size_rate_and_length(landscape_video):
    info = probe(landscape_video)
    assert (info.width, info.height, info.codec) == (320, 240, "h264")
    assert info.fps == pytest.approx(25) and info.duration_s == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize(
    ("name", "message"),
    [("nothing.mp4", r"nothing\.mp4: no such file"), ("clips", r"clips: is a folder, expected a video file")],
)
def test_probe_errors_name_the_path(tmp_path, name, message):
    (tmp_path / "clips").mkdir()
    with pytest.raises(VdlibError, match=message):
        probe(tmp_path / name)


def test_decoding_streams_square_frames_in_bounded_chunks(landscape_video):
    result = DecodeResult()
    chunks = list(decode_frames(landscape_video, FrameFit.square(48), fps=10, chunk=4, result=result))
    assert [len(c) for c in chunks] == [4, 4, 4, 4, 4] and result.frames == 20
    assert chunks[0].shape[1:] == (48, 48, 3) and result.returncode == 0
    # 320x240 in a 48 px square: 36 rows of picture, 6 rows of black padding above and below.
    frame = chunks[0][0].astype(int)
    assert frame[:5].max() == 0 and frame[-5:].max() == 0 and frame[6:42].mean() > 30


def test_mp4_round_trip_keeps_frames_and_rate(tmp_path):
    frames = ramp()
    path = write_mp4(frames, tmp_path / "clip.mp4", fps=5)
    back = np.concatenate(list(decode_frames(path, FrameFit.square(32), fps=5)))
    assert back.shape == frames.shape and probe(path).fps == pytest.approx(5)
    assert np.abs(back.astype(int) - frames).mean() < 4  # H.264 at high quality
    assert write_mp4(frames, tmp_path / "again.mp4", fps=5).read_bytes() == path.read_bytes()


def test_gif_keeps_every_frame_and_its_duration(tmp_path):
    frames = ramp()
    path = write_gif(frames, tmp_path / "clip.gif", fps=4)
    back = iio.imread(path)
    assert back.shape[:3] == frames.shape[:3]
    assert np.abs(back[..., :3].astype(int) - frames).mean() < 6  # palette quantisation
    assert iio.immeta(path, index=0)["duration"] == 250  # ms per frame at 4 fps
    assert leftovers(tmp_path) == []


def test_writer_pipes_frames_and_remux_copies_them(tmp_path):
    frames = ramp(frames=5)
    with VideoWriter(tmp_path / "piped.mkv", 32, 32, fps=10) as writer:
        writer.write(frames[:2])
        for frame in frames[2:]:
            writer.write(frame)
    remux(tmp_path / "piped.mkv", tmp_path / "copy.mp4")
    info = probe(tmp_path / "copy.mp4")
    assert (info.width, info.height, info.codec) == (32, 32, "h264")
    back = np.concatenate(list(decode_frames(tmp_path / "copy.mp4", FrameFit.square(32), fps=10)))
    assert len(back) == 5 and np.abs(back.astype(int) - frames).mean() < 4
