"""Real-footage clips for measurements: slow pans and zooms over real photographs that installed
packages ship (no download), at the shapes users film in.

- ``street_16x9.mp4``: Ultralytics' ``zidane.jpg`` (two men, 1280x720), 640x360 (16:9);
- ``temple_wide.mp4``: scikit-learn's ``china.jpg`` (a temple among trees), its middle band
  640x272 (2.35:1, cinema).

Each is 20 s at 25 fps: the window drifts back and forth over the photo and zooms between about
1.1x and 1.6x, so the held-out tail shows the same scene from other framings, as footage does.

With ``--people``, the clips of a pose dataset instead: 30 s each, the window panned across the
whole photo and zoomed between 1x and 2x, so the people move across the frame and change size:

- ``men_16x9.mp4``: ``zidane.jpg`` at 640x360 (two men, large);
- ``street_portrait.mp4``: Ultralytics' ``bus.jpg`` (a bus and people on a street, 810x1080) at
  360x480 (3:4).

    python benchmarks/real_clips.py -o clips/
    python benchmarks/real_clips.py --people -o people/
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from vdlib.data.video import ffmpeg_exe

SECONDS, PEOPLE_SECONDS, RATE = 20, 30, 25
# The zoom and the window's corner drift with periods of 10, 14 and 8 s (2 pi x 40, 57, 33 frames),
# the zoom between 1.35 -+ 0.25 (the pose clips: 1.5 -+ 0.5).
PAN = "x='(iw-iw/zoom)*(0.5+0.5*sin(on/57))':y='(ih-ih/zoom)*(0.5+0.5*sin(on/33))'"
PAN_ZOOM = f"z='1.35+0.25*sin(on/40)':{PAN}"
PEOPLE_PAN_ZOOM = f"z='1.5+0.5*sin(on/40)':{PAN}"


def photo(package: str, *parts: str) -> Path:
    """A file that ``package`` ships."""
    import importlib

    return Path(importlib.import_module(package).__file__).parent.joinpath(*parts)


CLIPS = {
    "street_16x9.mp4": (photo("ultralytics", "assets", "zidane.jpg"), "", "640x360"),
    "temple_wide.mp4": (photo("sklearn", "datasets", "images", "china.jpg"), "crop=640:272:0:70,", "640x272"),
}

PEOPLE_CLIPS = {
    "men_16x9.mp4": (photo("ultralytics", "assets", "zidane.jpg"), "", "640x360"),
    "street_portrait.mp4": (photo("ultralytics", "assets", "bus.jpg"), "", "360x480"),
}


def make_clip(
    source: Path, crop: str, size: str, out: Path, pan_zoom: str = PAN_ZOOM, seconds: int = SECONDS
) -> Path:
    """``seconds`` of ``pan_zoom`` over ``source`` (first cut by the ``crop`` filter, if any)."""
    graph = f"{crop}zoompan={pan_zoom}:d=1:s={size}:fps={RATE}"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-loop", "1", "-framerate", str(RATE),
         "-t", str(seconds), "-i", str(source), "-vf", graph, "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-preset", "medium", "-crf", "18", str(out)],
        check=True,
    )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the clips")
    parser.add_argument("--people", action="store_true", help="the pose dataset's clips instead")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    clips, pan_zoom, seconds = (PEOPLE_CLIPS, PEOPLE_PAN_ZOOM, PEOPLE_SECONDS) if args.people else (
        CLIPS, PAN_ZOOM, SECONDS)  # fmt: skip
    for name, (source, crop, size) in clips.items():
        print(make_clip(source, crop, size, args.output / name, pan_zoom, seconds))


if __name__ == "__main__":
    main()
