"""Stage extract: the fetched videos (a file or a folder of them) + params ``extract`` → the frame
store. Usage: extract.py VIDEOS OUT"""

from vdlib.config import load_section
from vdlib.core.common import run_stage
from vdlib.data.extract import extract_frames


def main(video: str, out: str) -> None:
    extract_frames(video, out, load_section("extract"))


if __name__ == "__main__":
    run_stage(main)
