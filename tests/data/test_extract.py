import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from tests.conftest import leftovers, make_testsrc
from vdlib.config import ExtractConfig
from vdlib.core.common import VdlibError
from vdlib.data.extract import PartialVideoWarning, extract_frames, extract_png_folders
from vdlib.data.frames import FrameStore
from vdlib.data.video import ffmpeg_exe


def test_landscape_is_padded_top_and_bottom(tmp_path, landscape_video):
    store = extract_frames(landscape_video, tmp_path / "frames", ExtractConfig(resolution=64, fps=10))
    assert len(store) == 20 and store.frames.shape == (20, 64, 64, 3)
    assert isinstance(store.frames, np.memmap)
    np.testing.assert_allclose(store.times, np.arange(20) / 10)
    # 320x240 -> 64x48 picture, 8 rows of black padding above and below.
    frame = np.asarray(store.frames[5]).astype(int)
    assert frame[:7].max() <= 2 and frame[-7:].max() <= 2
    assert frame[9:55].std() > 20  # the test pattern itself
    assert store.meta["source_size"] == [320, 240] and store.fps == 10


def test_portrait_is_padded_left_and_right_with_the_pad_colour(tmp_path, portrait_video):
    store = extract_frames(
        portrait_video, tmp_path / "frames", ExtractConfig(resolution=32, fps=5, pad_color="white")
    )
    assert len(store) == 10
    frame = np.asarray(store.frames[0]).astype(int)
    # 120x240 -> 16x32 picture in the middle, 8 white columns each side.
    assert frame[:, :7].min() >= 250 and frame[:, -7:].min() >= 250
    assert frame[:, 9:23].std() > 20


def test_trim_and_timestamps(tmp_path, landscape_video):
    store = extract_frames(
        landscape_video, tmp_path / "frames", ExtractConfig(resolution=16, fps=10, start=0.5, end=1.5)
    )
    assert len(store) == 10
    np.testing.assert_allclose(store.times, 0.5 + np.arange(10) / 10)
    assert store.span_s == pytest.approx((0.5, 1.5))


def test_extract_is_deterministic(tmp_path, landscape_video):
    a = extract_frames(landscape_video, tmp_path / "a", ExtractConfig(resolution=32, fps=10))
    b = extract_frames(landscape_video, tmp_path / "b", ExtractConfig(resolution=32, fps=10))
    assert np.array_equal(a.frames, b.frames)


def test_rerun_replaces_an_existing_store(tmp_path, landscape_video):
    out = tmp_path / "frames"
    extract_frames(landscape_video, out, ExtractConfig(resolution=16, fps=10))
    store = extract_frames(landscape_video, out, ExtractConfig(resolution=16, fps=5))
    assert len(store) == 10 and leftovers(tmp_path) == []


def test_png_folders_like_the_original_project(tmp_path, landscape_video):
    count = extract_png_folders(
        landscape_video, tmp_path / "pngs", ExtractConfig(resolution=24, fps=10), max_file_count=8
    )
    assert count == 20
    folders = sorted(p.name for p in (tmp_path / "pngs").iterdir())
    assert folders == ["0000", "0001", "0002"]
    assert [len(list((tmp_path / "pngs" / f).iterdir())) for f in folders] == [8, 8, 4]
    image = Image.open(tmp_path / "pngs" / "0002" / "00000019.png")
    assert image.size == (24, 24) and image.mode == "RGB"


def test_missing_file(tmp_path):
    with pytest.raises(VdlibError, match=r"nope\.mp4: no such file"):
        extract_frames(tmp_path / "nope.mp4", tmp_path / "frames", ExtractConfig())
    assert not (tmp_path / "frames").exists()


def test_not_a_video(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    with pytest.raises(VdlibError, match=r"notes\.mp4: not a readable video \(ffmpeg: "):
        extract_frames(text, tmp_path / "frames", ExtractConfig())
    image = tmp_path / "photo.png"
    Image.new("RGB", (64, 48)).save(image)
    with pytest.raises(VdlibError, match=r"photo\.png: is a still image"):
        extract_frames(image, tmp_path / "frames", ExtractConfig())
    assert leftovers(tmp_path) == [] and not (tmp_path / "frames").exists()


def test_audio_only_and_empty_container(tmp_path):
    audio = tmp_path / "audio.mka"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", str(audio)], check=True
    )
    with pytest.raises(VdlibError, match=r"audio\.mka: not a video \(no video stream"):
        extract_frames(audio, tmp_path / "frames", ExtractConfig())
    empty = tmp_path / "empty.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=1",
            "-vf",
            "select=0",
            str(empty),
        ],
        check=True,
    )
    with pytest.raises(VdlibError, match=r"empty\.mp4: not a video \(no video stream"):
        extract_frames(empty, tmp_path / "frames", ExtractConfig())


def test_zero_frames_decoded(tmp_path, landscape_video):
    with pytest.raises(VdlibError, match=r"no frames decoded"):
        extract_frames(landscape_video, tmp_path / "frames", ExtractConfig(resolution=16, start=30.0))
    assert not (tmp_path / "frames").exists() and leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def truncated_video(tmp_path_factory):
    """A 4 s MKV cut in half: the header still promises 4 s."""
    full = make_testsrc(tmp_path_factory.mktemp("trunc") / "full.mkv", 160, 120, 4)
    data = full.read_bytes()
    cut = full.with_name("cut.mkv")
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_truncated_video_fails_clearly_and_leaves_nothing(tmp_path, truncated_video):
    with pytest.raises(VdlibError) as err:
        extract_frames(truncated_video, tmp_path / "frames", ExtractConfig(resolution=16, fps=10))
    message = str(err.value)
    assert "cut.mkv: truncated or corrupt: decoded" in message and "of 40 expected frames" in message
    assert "allow_partial" in message and "\n" not in message
    assert not (tmp_path / "frames").exists() and leftovers(tmp_path) == []


def test_truncated_video_with_allow_partial_keeps_what_decodes(tmp_path, truncated_video):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = extract_frames(
            truncated_video, tmp_path / "frames", ExtractConfig(resolution=16, fps=10, allow_partial=True)
        )
    assert 5 < len(store) < 38
    partial = [w for w in caught if issubclass(w.category, PartialVideoWarning)]
    assert len(partial) == 1 and f"decoded {len(store)} of 40" in str(partial[0].message)


@pytest.mark.slow
def test_memory_stays_bounded_for_a_long_video(tmp_path):
    """Peak RSS while extracting a ~200 MB store stays far below the store's size."""
    video = make_testsrc(tmp_path / "long.mp4", 160, 120, 40)
    script = (
        "import resource, sys\n"
        "from vdlib.config import ExtractConfig\n"
        "from vdlib.data.extract import extract_frames\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "extract_frames(sys.argv[1], sys.argv[2], ExtractConfig(resolution=256, fps=25))\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print((after - before) // 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(video), str(tmp_path / "frames")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    grown_mb = int(out.stdout.strip().splitlines()[-1])
    store = FrameStore.open(tmp_path / "frames")
    store_mb = store.frames.nbytes // 2**20
    assert len(store) == 1000 and store_mb >= 180
    assert grown_mb < 60, f"RSS grew by {grown_mb} MB for a {store_mb} MB store"


def test_frame_store_errors(tmp_path):
    with pytest.raises(VdlibError, match=r"no frame store here"):
        FrameStore.open(tmp_path / "missing")
    (tmp_path / "half").mkdir()
    np.save(tmp_path / "half" / "frames.npy", np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(VdlibError, match=r"half: not a frame store \(missing index\.parquet\)"):
        FrameStore.open(tmp_path / "half")


def _white_clip(path, size, vf=None, rotation=None, seconds=1):
    """A white clip of ``size`` (storage pixels), with an optional filter and display rotation."""
    ff = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y"]
    args = ["-f", "lavfi", "-i", f"color=c=white:size={size}:rate=25:duration={seconds}"]
    args += ["-vf", vf] if vf else []
    stored = path.with_name(f"stored-{path.name}")
    subprocess.run([*ff, *args, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(stored)], check=True)
    rotate = ["-display_rotation", str(rotation)] if rotation is not None else []
    subprocess.run([*ff, *rotate, "-i", str(stored), "-c", "copy", str(path)], check=True)
    return path


def _picture_box(store, index=0):
    """(rows, columns) of frame ``index`` that are picture (white), not padding."""
    frame = np.asarray(store.frames[index], dtype=np.float32).mean(2)
    return int((frame.mean(1) > 128).sum()), int((frame.mean(0) > 128).sum())


def test_non_square_pixels_keep_the_display_aspect(tmp_path):
    # 176x144 storage pixels that are 128:117 wide are shown as about 192x144 (4:3).
    video = _white_clip(tmp_path / "sar.mp4", "176x144", vf="setsar=128/117")
    store = extract_frames(video, tmp_path / "frames", ExtractConfig(resolution=128, fps=5))
    rows, cols = _picture_box(store)
    assert cols == 128 and abs(rows - 96) <= 1  # 75% of the height, not the 82% of square pixels


def test_a_rotated_phone_clip_comes_out_upright(tmp_path):
    # Stored landscape 160x90 with a 90 degree display rotation: shown portrait, padded left and right.
    video = _white_clip(tmp_path / "phone.mp4", "160x90", rotation=90)
    store = extract_frames(video, tmp_path / "frames", ExtractConfig(resolution=128, fps=5))
    rows, cols = _picture_box(store)
    assert rows == 128 and abs(cols - 72) <= 1
    kept = extract_frames(video, tmp_path / "kept", ExtractConfig(resolution=128, fps=5, aspect="keep"))
    assert kept.shape == (224, 128) and _picture_box(kept) == (224, 126)  # portrait: 2 columns of bars


def test_many_videos_go_into_one_store_with_their_ids(tmp_path, landscape_video, portrait_video):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(landscape_video.read_bytes())
    (folder / "b.mkv").write_bytes(portrait_video.read_bytes())
    (folder / "notes.txt").write_text("not a video")
    store = extract_frames(folder, tmp_path / "frames", ExtractConfig(resolution=32, fps=5))
    assert store.video_names == ["a", "b"] and store.video_lengths == [10, 10]
    assert list(store.videos) == [0] * 10 + [1] * 10
    assert np.allclose(store.times, np.tile(np.arange(10) / 5, 2))  # time within each video
    assert [v["source_size"] for v in store.meta["videos"]] == [[320, 240], [120, 240]]
    with pytest.raises(VdlibError, match="no video files in this folder"):
        extract_frames(tmp_path / "frames", tmp_path / "other", ExtractConfig(resolution=32, fps=5))


def picture_share(store, index=0) -> tuple[float, float]:
    """The share of frame ``index``'s rows and of its columns that hold picture, not padding."""
    rows, columns = _picture_box(store, index)
    return rows / store.shape[0], columns / store.shape[1]


@pytest.mark.parametrize(
    ("size", "sar", "shape"),
    [
        ("640x272", "1", (128, 304)),  # 2.35:1 cinema
        ("320x180", "1", (128, 224)),  # 16:9
        ("180x320", "1", (224, 128)),  # 9:16 phone
        ("320x240", "1", (128, 176)),  # 4:3 (11/8: 3% padding, 10/8: 6%)
        ("480x480", "1", (128, 128)),
        ("360x270", "4/3", (128, 224)),  # anamorphic: 4:3 pixels shown 16:9
    ],
)
def test_keep_stores_the_videos_own_shape_and_fills_it(tmp_path, size, sar, shape):
    video = _white_clip(tmp_path / "clip.mp4", size, vf=f"setsar={sar}")
    store = extract_frames(video, tmp_path / "frames", ExtractConfig(resolution=128, fps=5, aspect="keep"))
    assert store.shape == shape and store.size == 128 and store.meta["aspect"] == "keep"
    rows, columns = picture_share(store)
    assert rows >= 0.95 and columns >= 0.95
    # Every model size of the cascade (a multiple of 8) is whole pixels at this aspect, doubling exactly.
    assert [store.shape_at(side) for side in (32, 64)] == [
        (shape[0] // 4, shape[1] // 4), (shape[0] // 2, shape[1] // 2)
    ]  # fmt: skip


def test_pad_and_crop_make_squares(tmp_path):
    video = _white_clip(tmp_path / "clip.mp4", "320x180")
    padded = extract_frames(video, tmp_path / "pad", ExtractConfig(resolution=64, fps=5, aspect="pad"))
    cropped = extract_frames(video, tmp_path / "crop", ExtractConfig(resolution=64, fps=5, aspect="crop"))
    assert padded.shape == cropped.shape == (64, 64)
    assert _picture_box(padded) == (36, 64) and _picture_box(cropped) == (64, 64)


def test_mixed_aspects_share_one_shape_padding_only_the_difference(tmp_path):
    wide = _white_clip(tmp_path / "wide.mp4", "320x180", seconds=3)  # 16:9, the longer video
    old = _white_clip(tmp_path / "old.mp4", "320x240", seconds=1)  # 4:3
    cfg = ExtractConfig(resolution=64, fps=5, aspect="keep")
    store = extract_frames([wide, old], tmp_path / "frames", cfg)
    assert store.shape == (64, 112) and store.video_lengths == [15, 5]
    assert min(picture_share(store)) >= 0.95
    # The 4:3 video keeps its rows and is padded at the sides: 85 of 112 columns.
    assert _picture_box(store, len(store) - 1) == (64, 85)


def test_a_store_of_one_shape_gives_the_shape_of_each_model(tmp_path):
    video = _white_clip(tmp_path / "clip.mp4", "640x272")
    store = extract_frames(video, tmp_path / "frames", ExtractConfig(resolution=128, fps=5, aspect="keep"))
    assert store.shape_at(32) == (32, 76)
    with pytest.raises(VdlibError, match=r"base: 12 px frames of the stored 128x304 .* are not whole pixels"):
        store.shape_at(12, "base")
