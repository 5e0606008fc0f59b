"""Stage fetch: params ``fetch`` (and ``demo``) → OUT_DIR with one ``<name>.mkv`` per video.
Usage: fetch.py OUT_DIR"""

from vdlib.config import load_section
from vdlib.core.common import run_stage
from vdlib.data.fetch import fetch_videos


def main(out_dir: str) -> None:
    cfg = load_section("fetch")
    fetch_videos(cfg.sources, out_dir, max_height=cfg.max_height, demo=load_section("demo"))


if __name__ == "__main__":
    run_stage(main)
