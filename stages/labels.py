"""Stage labels: frame store + params ``labels`` → labels Parquet, a preview GIF and a summary.
Usage: labels.py FRAMES OUT PREVIEW SUMMARY"""

from vdlib.config import load_section
from vdlib.core.common import run_stage
from vdlib.labels.labelling import label_frames


def main(frames: str, out: str, preview: str, summary: str) -> None:
    label_frames(frames, load_section("labels"), out, preview, summary)


if __name__ == "__main__":
    run_stage(main)
