"""Pictures for people: the labels preview GIF, pose skeletons, contact sheets."""

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw

from vdlib.labels import Labels
from vdlib.labels.pose import KEYPOINT_NAMES
from vdlib.labels.preview import draw_skeleton, label_caption, write_contact_sheet, write_preview


def test_captions_name_the_active_labels():
    cond = np.array([[1, 0, 1], [0, 0, 0]], np.float32)
    labels = Labels("timestamps", ["shape=circle", "shape=square", "colour=red"], np.arange(2.0), cond)
    assert label_caption(labels, 0) == "circle red" and label_caption(labels, 1) == "-"
    poses = Labels("pose", list(KEYPOINT_NAMES), np.arange(2.0), np.zeros((2, 51)), person=np.array([1, 0]))
    assert label_caption(poses, 0) == "person" and label_caption(poses, 1) == "no person"


def test_preview_shows_frames_with_a_caption_band(small_store, tmp_path):
    n = len(small_store)
    labels = Labels("timestamps", ["g=a"], small_store.times, np.ones((n, 1)))
    path = write_preview(small_store, labels, tmp_path / "preview.gif", max_frames=10, scale=2)
    frames = iio.imread(path)
    assert frames.shape[:3] == (10, 64, 64)
    band = frames[:, -14:, :, :3].astype(int)
    assert (band == 0).mean() > 0.5 and band.max() > 200  # white text on a black band


def test_skeleton_is_drawn_where_the_keypoints_are():
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[5] = [0.25, 0.5, 0.9]  # left shoulder
    keypoints[6] = [0.75, 0.5, 0.9]  # right shoulder: a limb between them
    keypoints[0] = [0.5, 0.1, 0.1]  # the nose, too unsure to draw
    image = Image.new("RGB", (100, 100))
    draw_skeleton(ImageDraw.Draw(image), keypoints, (100, 100))
    pixels = np.asarray(image).astype(int)
    assert pixels[50, 50].sum() > 200  # on the limb
    assert pixels[10, 50].sum() == 0 and pixels[90, 50].sum() == 0


def test_contact_sheet_tiles_every_frame_enlarged(tmp_path):
    frames = np.zeros((10, 16, 16, 3), np.uint8)
    frames[3] = 255
    path = write_contact_sheet(frames, tmp_path / "sheet.png", "caption", columns=4, min_size=48)
    sheet = np.asarray(Image.open(path))
    tile, gap, top = 48, 2, 16
    assert sheet.shape[1] == 4 * (tile + gap) + gap and sheet.shape[0] == top + 3 * (tile + gap + 12)
    x = gap + 3 * (tile + gap)
    assert sheet[top + 5 : top + tile - 5, x + 5 : x + tile - 5].min() == 255  # frame 3, fourth tile
    assert sheet[top + 5, gap + 5].max() == 0  # frame 0 is black
