"""Stage render: models + params ``render`` → GIF/MP4 videos, contact sheets, ``generated.npz`` and
``videos.json`` in OUT_DIR (``auto`` requests come from the frame store and labels).
Usage: render.py FRAMES LABELS OUT_DIR BASE [UPSAMPLER ...]"""

from vdlib.common import run_stage
from vdlib.config import load_section
from vdlib.render import render_videos


def main(frames: str, labels: str, out_dir: str, *models: str) -> None:
    render_videos(load_section("render"), list(models), out_dir, load_section("labels").pose, frames, labels)


if __name__ == "__main__":
    run_stage(main)
