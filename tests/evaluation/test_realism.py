"""The realism measure tells new footage (about 1) from copies of the training frames (0) and from
frames unlike the footage: noise, or the footage's own patches shuffled (far above 1)."""

import numpy as np
import pytest

from tests.conftest import photo_video, ultralytics_asset
from vdlib.config import ExtractConfig
from vdlib.data.extract import extract_frames
from vdlib.evaluation.realism import nearest_distances, realism, thumbnails


@pytest.fixture(scope="module")
def bus_store(tmp_path_factory):
    """8 s of a slow zoom into a real street photo, kept 16:9 at 32 px (32x56, 80 frames)."""
    folder = tmp_path_factory.mktemp("realism")
    video = photo_video(ultralytics_asset("bus.jpg"), folder / "bus.mp4", seconds=8, fps=10, size="320x180")
    return extract_frames(video, folder / "frames", ExtractConfig(resolution=32, fps=10, aspect="keep"))


def shuffled_patches(frames: np.ndarray, patch: int, rng: np.random.Generator) -> np.ndarray:
    """Each frame cut into ``patch``-pixel squares, put back in a random order: the footage's own
    colours and textures, not its layout."""
    out = frames.copy()
    h, w = frames.shape[1:3]
    corners = [(y, x) for y in range(0, h, patch) for x in range(0, w, patch)]
    for frame, original in zip(out, frames, strict=True):
        for (y, x), k in zip(corners, rng.permutation(len(corners)), strict=True):
            sy, sx = corners[k]
            frame[y : y + patch, x : x + patch] = original[sy : sy + patch, sx : sx + patch]
    return out


def test_held_out_footage_copies_noise_and_shuffled_patches_are_told_apart(bus_store):
    frames, rng = bus_store.frames, np.random.default_rng(0)
    training, held_out = np.arange(60), np.arange(60, 80)
    reference, unseen = held_out[::2], held_out[1::2]  # the held-out frames split in two, interleaved

    def ratio(videos: dict[str, np.ndarray]) -> dict:
        return realism(videos, frames, training, reference)

    real = ratio({"unseen": np.asarray(frames[unseen])})
    assert 0.8 < real["ratio"] < 1.25
    copies = ratio({"copies": np.asarray(frames[rng.choice(training, 10)])})
    assert copies["ratio"] < 1e-4 and copies["generated_distance"] < 1e-3  # 0 up to float rounding
    noise = ratio({"noise": rng.integers(0, 256, (10, *bus_store.shape, 3), dtype=np.uint8)})
    scrambled = ratio({"shuffled": shuffled_patches(np.asarray(frames[unseen]), 8, rng)})
    assert noise["ratio"] > 3 and scrambled["ratio"] > 3
    # Per video, and at another size of the same aspect (the upsampled frames): the same scale.
    both = ratio({"unseen": np.asarray(frames[unseen]), "copies": np.asarray(frames[training[:10]])})
    assert both["per_video"] == pytest.approx({"unseen": real["ratio"], "copies": 0.0}, abs=1e-4)
    assert both["real_heldout_distance"] == real["real_heldout_distance"] > 0


def test_thumbnails_keep_the_aspect_and_distances_are_rms_grey_levels():
    frames = np.zeros((2, 64, 112, 3), np.uint8)
    frames[1] = 10
    thumbs = thumbnails(frames)
    assert thumbs.shape == (2, 3 * 16 * 28)
    assert nearest_distances(thumbs[1:], thumbs[:1]) == pytest.approx([10.0], rel=1e-4)
