"""Real-footage clips for measurements: slow pans and zooms over real photographs that installed
packages ship (no download), at the shapes users film in.

- ``street_16x9.mp4``: Ultralytics' ``zidane.jpg`` (two men, 1280x720), 640x360 (16:9);
- ``temple_wide.mp4``: scikit-learn's ``china.jpg`` (a temple among trees), its middle band
  640x272 (2.35:1, cinema).

Each is 20 s at 25 fps: the window drifts back and forth over the photo and zooms between about
1.1x and 1.6x, so the held-out tail shows the same scene from other framings, as footage does.

    python benchmarks/real_clips.py -o clips/
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from vdlib.data.video import ffmpeg_exe

SECONDS, RATE = 20, 25
# The zoom and the window's corner drift with periods of 10, 14 and 8 s (2 pi x 40, 57, 33 frames).
PAN_ZOOM = (
    "z='1.35+0.25*sin(on/40)':x='(iw-iw/zoom)*(0.5+0.5*sin(on/57))':y='(ih-ih/zoom)*(0.5+0.5*sin(on/33))'"
)


def photo(package: str, *parts: str) -> Path:
    """A file that ``package`` ships."""
    import importlib

    return Path(importlib.import_module(package).__file__).parent.joinpath(*parts)


CLIPS = {
    "street_16x9.mp4": (photo("ultralytics", "assets", "zidane.jpg"), "", "640x360"),
    "temple_wide.mp4": (photo("sklearn", "datasets", "images", "china.jpg"), "crop=640:272:0:70,", "640x272"),
}


def make_clip(source: Path, crop: str, size: str, out: Path) -> Path:
    """``SECONDS`` of pan and zoom over ``source`` (first cut by the ``crop`` filter, if any)."""
    graph = f"{crop}zoompan={PAN_ZOOM}:d=1:s={size}:fps={RATE}"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-loop", "1", "-framerate", str(RATE),
         "-t", str(SECONDS), "-i", str(source), "-vf", graph, "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-preset", "medium", "-crf", "18", str(out)],
        check=True,
    )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the clips")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    for name, (source, crop, size) in CLIPS.items():
        print(make_clip(source, crop, size, args.output / name))


if __name__ == "__main__":
    main()
