"""Stage fetch: params ``fetch`` (and ``demo``) → the raw video file."""

from vdlib.config import load_section
from vdlib.fetch import fetch
from vdlib.stage import run_stage


def main(out: str) -> None:
    cfg = load_section("fetch")
    fetch(cfg.source, out, max_height=cfg.max_height, demo=load_section("demo"))


if __name__ == "__main__":
    run_stage(main)
