"""Stage render: models + params ``render`` → GIF/MP4 videos, ``generated.npz`` and ``videos.json`` in
OUT_DIR, and a contact sheet per video in SHEETS_DIR (DVC image plots: ``dvc plots diff`` puts the
experiments' sheets side by side). ``auto`` requests come from the frame store and labels.
Usage: render.py FRAMES LABELS OUT_DIR SHEETS_DIR BASE [UPSAMPLER ...]"""

from vdlib.config import load_section
from vdlib.core.common import run_stage
from vdlib.generation.render import render_videos


def main(frames: str, labels: str, out_dir: str, sheets_dir: str, *models: str) -> None:
    render_videos(
        load_section("render"), list(models), out_dir, load_section("labels").pose, frames, labels,
        sheets_dir=sheets_dir,
    )  # fmt: skip


if __name__ == "__main__":
    run_stage(main)
