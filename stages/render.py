"""Stage render: models + params ``render`` → GIF/MP4 videos, contact sheets, ``generated.npz`` and
``videos.json`` in OUT_DIR. Usage: render.py OUT_DIR BASE [UPSAMPLER ...]"""

from vdlib.config import load_section
from vdlib.render import render_videos
from vdlib.stage import run_stage


def main(out_dir: str, *models: str) -> None:
    render_videos(load_section("render"), list(models), out_dir, load_section("labels").pose)


if __name__ == "__main__":
    run_stage(main)
