"""ffmpeg I/O: find the binary, probe a file, decode to RGB frames of a set shape, encode frames to video.

Scaling, padding and fps sampling happen inside ffmpeg's filter graph; Python only sees raw RGB bytes.
Probing parses ffmpeg's own input header, so it needs no ``ffprobe`` (``imageio-ffmpeg`` ships only
``ffmpeg``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import BinaryIO

import ffmpeg
import numpy as np

from vdlib.core.common import VdlibError, atomic_output, progress


@cache
def ffmpeg_exe() -> str:
    """The ``ffmpeg`` on PATH if there is one, else the binary that ``imageio-ffmpeg`` ships."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg reports about a file's container and first video stream."""

    path: Path
    container: str
    codec: str
    width: int
    height: int
    fps: float | None
    duration_s: float | None
    sar: float = 1.0  # sample (pixel) aspect ratio
    rotation: int = 0  # display rotation in degrees (ffmpeg turns the frames upright when decoding)

    @property
    def display_aspect(self) -> float:
        """Width over height as the video is shown: pixel aspect and rotation applied."""
        aspect = self.width * self.sar / self.height
        return 1 / aspect if self.rotation % 180 == 90 else aspect


_INPUT_RE = re.compile(r"^Input #0, (?P<container>[^ ]+), from ", re.M)
_DURATION_RE = re.compile(r"Duration: (?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+)")
_VIDEO_RE = re.compile(r"Stream #0:\d+.*?: Video: (?P<codec>\w+)(?P<rest>.*)$", re.M)
_SIZE_RE = re.compile(r"\b(?P<w>\d{2,5})x(?P<h>\d{2,5})\b")
_SAR_RE = re.compile(r"\bSAR (?P<num>\d+):(?P<den>\d+)")
_ROTATION_RE = re.compile(r"rotation of (?P<deg>-?[\d.]+) degrees")
_FPS_RE = re.compile(r"(?P<fps>[\d.]+k?) (?:fps|tbr)\b")
_IMAGE_CONTAINERS = ("image2", "_pipe", "gif", "apng", "webp")


_NOISE = ("at least one output file", "error opening input")


def _strip_tags(line: str) -> str:
    """``[mov @ 0x1] [error] message`` → ``message``."""
    line = line.strip()
    while line.startswith("[") and "]" in line:
        line = line[line.index("]") + 1 :].lstrip()
    return line


def _last_error_line(stderr: str) -> str:
    """The most telling line of ffmpeg's complaint (``moov atom not found`` over ``Error opening...``)."""
    lines = [_strip_tags(ln) for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.lower().startswith(_NOISE)]
    if useful:
        return useful[-1]
    return lines[-1] if lines else "ffmpeg reported nothing"


def parse_header(path: Path, stderr: str) -> VideoInfo:
    """The input's video stream from ffmpeg's stderr (its ``Input #0`` header and any error lines);
    raise ``VdlibError`` naming ``path`` if it is not a readable video."""
    header = stderr.split("\nOutput #", 1)[0].split("\nStream mapping:", 1)[0]
    container = _INPUT_RE.search(header)
    stream = _VIDEO_RE.search(header)
    if container is None:
        raise VdlibError(f"{path}: not a readable video (ffmpeg: {_last_error_line(stderr)})")
    if stream is None:
        raise VdlibError(f"{path}: not a video (no video stream in this {container['container']} file)")
    if any(tag in container["container"] for tag in _IMAGE_CONTAINERS):
        raise VdlibError(f"{path}: is a still image ({container['container']}), expected a video")
    size = _SIZE_RE.search(stream["rest"])
    if size is None:
        raise VdlibError(f"{path}: cannot read the video's frame size from ffmpeg's header")
    fps_match = _FPS_RE.search(stream["rest"])
    fps = None
    if fps_match:
        text = fps_match["fps"]
        fps = float(text[:-1]) * 1000 if text.endswith("k") else float(text)
    sar_match, rotation = _SAR_RE.search(stream["rest"]), _ROTATION_RE.search(header)
    sar = int(sar_match["num"]) / int(sar_match["den"]) if sar_match and int(sar_match["num"]) else 1.0
    duration = _DURATION_RE.search(header)
    duration_s = None
    if duration:
        duration_s = int(duration["h"]) * 3600 + int(duration["m"]) * 60 + float(duration["s"])
    return VideoInfo(
        path=path,
        container=container["container"],
        codec=stream["codec"],
        width=int(size["w"]),
        height=int(size["h"]),
        fps=fps,
        duration_s=duration_s,
        sar=sar,
        rotation=round(float(rotation["deg"])) % 360 if rotation else 0,
    )


def check_path(path: Path) -> None:
    """Raise the one-line error for a missing path or a folder."""
    if not path.exists():
        raise VdlibError(f"{path}: no such file")
    if path.is_dir():
        raise VdlibError(f"{path}: is a folder, expected a video file")


def probe(path: str | Path) -> VideoInfo:
    """Probe ``path`` and return its video stream; raise ``VdlibError`` if it is not a readable video."""
    path = Path(path)
    check_path(path)
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    return parse_header(path, proc.stderr)


FIT_MODES = ("pad", "crop")


@dataclass(frozen=True)
class FrameFit:
    """The decoded frames' shape, and how a video of another aspect fits it: ``pad`` scales the
    picture to fit inside and pads the rest centred; ``crop`` scales it to cover and cuts the rest
    centred."""

    height: int
    width: int
    mode: str = "pad"

    @classmethod
    def square(cls, side: int, mode: str = "pad") -> FrameFit:
        """Square frames of ``side`` pixels."""
        return cls(side, side, mode)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return self.height, self.width

    @property
    def frame_bytes(self) -> int:
        """Bytes of one RGB frame."""
        return self.height * self.width * 3

    def filter_args(self, fps: float, pad_color: str) -> list[tuple[str, dict]]:
        """The filter chain: sample at ``fps``, area-scale as the video is shown, then pad or crop
        centred to ``height`` x ``width``.

        The fit uses the display aspect ``iw * sar / ih``: a clip with non-square pixels (sample aspect
        ratio, SAR) keeps the shape it has on screen. Display rotation needs no filter here: ffmpeg
        turns rotated clips upright before the graph (``autorotate``, on by default).
        """
        h, w = self.height, self.width
        # Wider than the frame (by display aspect): with pad the width fills it, with crop the height.
        wider = f"gte(iw*sar*{h},ih*{w})"
        fit_w, fit_h = f"max(1,round({h}*iw*sar/ih))", f"max(1,round({w}*ih/(iw*sar)))"
        if self.mode == "crop":
            scale = {"w": f"if({wider},{fit_w},{w})", "h": f"if({wider},{h},{fit_h})"}
            place = ("crop", {"w": w, "h": h, "x": "(iw-ow)/2", "y": "(ih-oh)/2"})
        else:
            scale = {"w": f"if({wider},{w},{fit_w})", "h": f"if({wider},{fit_h},{h})"}
            place = ("pad", {"w": w, "h": h, "x": "(ow-iw)/2", "y": "(oh-ih)/2", "color": pad_color})
        return [("fps", {"fps": fps}), ("scale", {**scale, "flags": "area"}), place, ("setsar", {"sar": 1})]


def decode_command(
    path: str | Path,
    fit: FrameFit,
    fps: float,
    pad_color: str = "black",
    start: float | None = None,
    end: float | None = None,
    output: str = "pipe:",
    output_format: str = "rawvideo",
    header: bool = False,
) -> list[str]:
    """The ffmpeg command line that decodes ``path`` to RGB frames of ``fit``'s shape at ``fps``.

    ``header``: also log the input header (level-tagged, so errors stay apart from it), which saves a
    separate probe.
    """
    input_args: dict = {}
    if start:
        input_args["ss"] = start
    if end is not None:
        input_args["t"] = end - (start or 0.0)
    stream = ffmpeg.input(str(path), **input_args).video
    for name, kwargs in fit.filter_args(fps, pad_color):
        stream = stream.filter(name, **kwargs)
    out = ffmpeg.output(stream, output, format=output_format, pix_fmt="rgb24", an=None)
    cmd = ffmpeg.compile(out, cmd=ffmpeg_exe())
    loglevel = ["-loglevel", "level+info"] if header else ["-v", "error"]
    return [cmd[0], "-hide_banner", "-nostdin", "-nostats", *loglevel, *cmd[1:]]


_LEVEL_RE = re.compile(r"\[(info|warning|error|fatal|panic)\]")


class _StderrTail:
    """Collect ffmpeg's stderr in a background thread so the pipe never fills up.

    Error lines go to ``lines`` (the last 50); with level-tagged logging, info lines (the input
    header) go to ``header`` (the first 200) and warnings are dropped.
    """

    def __init__(self, stream, header: list[str] | None = None) -> None:
        self.lines: deque[str] = deque(maxlen=50)
        self.header = header if header is not None else []
        self.count = 0
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line.strip():
                continue
            level = _LEVEL_RE.search(line)
            if level is None or level[1] in ("error", "fatal", "panic"):
                self.lines.append(_strip_tags(line) if level else line.strip())
                self.count += 1
            elif level[1] == "info" and len(self.header) < 200:
                self.header.append(_strip_tags(line))

    def wait(self, timeout: float) -> bool:
        """Block until ffmpeg closes stderr (it is exiting) or ``timeout`` passes; True if closed."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def join(self) -> list[str]:
        self._thread.join(timeout=10)
        return list(self.lines)


def _widen_pipe(stream) -> None:
    """Ask Linux for a 1 MiB pipe buffer (default 64 KiB): fewer context switches per frame."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass  # not Linux, or the limit in /proc/sys/fs/pipe-max-size is lower: keep the default


@dataclass
class DecodeResult:
    """Filled in when a :func:`decode_frames` generator finishes."""

    frames: int = 0
    returncode: int | None = None
    errors: list[str] | None = None
    header: list[str] = field(default_factory=list)  # the input header, filled while ffmpeg runs

    def info(self, path: Path) -> VideoInfo:
        """The input's video stream from the header ffmpeg logged; the probe's one-line errors."""
        return parse_header(path, "\n".join([*self.header, *(self.errors or [])]))


def _finish(proc: subprocess.Popen, tail: _StderrTail, result: DecodeResult) -> None:
    if proc.poll() is None:
        proc.terminate()
    result.returncode = proc.wait()
    result.errors = tail.join()


def decode_frames(
    path: str | Path,
    fit: FrameFit,
    fps: float,
    pad_color: str = "black",
    start: float | None = None,
    end: float | None = None,
    chunk: int = 64,
    result: DecodeResult | None = None,
) -> Iterator[np.ndarray]:
    """Yield uint8 arrays of shape (n <= chunk, height, width, 3), streaming from an ffmpeg pipe.

    Memory stays bounded by ``chunk`` frames. When the generator is exhausted, ``result`` (if given)
    holds the frame count, ffmpeg's return code and its error lines.
    """
    result = result if result is not None else DecodeResult()
    cmd = decode_command(path, fit, fps, pad_color, start, end, header=True)
    frame_bytes = fit.frame_bytes
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _widen_pipe(proc.stdout)
    tail = _StderrTail(proc.stderr, result.header)
    try:
        while True:
            # A buffered pipe's read(n) returns fewer than n bytes only at the end of the stream.
            buf = proc.stdout.read(frame_bytes * chunk)
            n = len(buf) // frame_bytes
            if n:
                result.frames += n
                yield np.frombuffer(buf, dtype=np.uint8, count=n * frame_bytes).reshape(n, *fit.shape, 3)
            if len(buf) < frame_bytes * chunk:
                break
    finally:
        proc.stdout.close()
        _finish(proc, tail, result)


def decode_to_file(
    path: str | Path,
    fh: BinaryIO,
    fit: FrameFit,
    fps: float,
    pad_color: str = "black",
    start: float | None = None,
    end: float | None = None,
    result: DecodeResult | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> DecodeResult:
    """Decode straight into the open binary file ``fh`` from its current position.

    ffmpeg writes the raw RGB frames itself, so Python never copies a frame and memory use does not
    grow with the video. A trailing partial frame is cut off. ``on_progress(frames_so_far)`` is
    called a few times a second.
    """
    result = result if result is not None else DecodeResult()
    cmd = decode_command(path, fit, fps, pad_color, start, end, header=True)
    frame_bytes = fit.frame_bytes
    fh.flush()
    offset = fh.tell()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.PIPE)
    tail = _StderrTail(proc.stderr, result.header)

    def written() -> int:
        return (os.fstat(fh.fileno()).st_size - offset) // frame_bytes

    try:
        # Popen.wait(timeout) polls with sleeps; a thread join wakes the moment ffmpeg exits.
        while not tail.wait(0.25):
            if on_progress:
                on_progress(written())
    finally:
        _finish(proc, tail, result)
    result.frames = written()
    fh.truncate(offset + result.frames * frame_bytes)
    fh.seek(0, os.SEEK_END)
    if on_progress:
        on_progress(result.frames)
    return result


class VideoWriter:
    """Encode RGB frames (H, W, 3 uint8) into a video file through an ffmpeg pipe.

    The codec follows the extension: VP9 for ``.webm``, H.264 otherwise. Output is bit-exact for the
    same frames (no muxer timestamps or version strings).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 18) -> None:
        path = Path(path)
        codec = "libvpx-vp9" if path.suffix.lower() == ".webm" else "libx264"
        fmt = {".mkv": "matroska", ".webm": "webm", ".mp4": "mp4", ".mov": "mov"}.get(
            path.suffix.lower(), "matroska"
        )
        stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=fps)
        out_args = {
            "vcodec": codec,
            "pix_fmt": "yuv420p",
            "crf": crf,
            "format": fmt,
            "fflags": "+bitexact",
            "flags:v": "+bitexact",
            "g": max(1, round(fps * 2)),
        }
        if codec == "libvpx-vp9":
            out_args["b:v"] = 0
        else:
            out_args["preset"] = "medium"
        cmd = ffmpeg.compile(
            ffmpeg.output(stream, str(path), **out_args), cmd=ffmpeg_exe(), overwrite_output=True
        )
        cmd = [cmd[0], "-hide_banner", "-nostdin", "-v", "error", *cmd[1:]]
        self.path = path
        self.shape = (height, width, 3)
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self._tail = _StderrTail(self._proc.stderr)

    def write(self, frame: np.ndarray) -> None:
        """Append one frame (or a batch of frames with a leading axis)."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if frame.shape[-3:] != self.shape:
            raise ValueError(f"frame shape {frame.shape} does not match the video's {self.shape}")
        self._proc.stdin.write(frame.tobytes())

    def close(self) -> None:
        """Finish the file; raise ``VdlibError`` with ffmpeg's message if encoding failed."""
        self._proc.stdin.close()
        code = self._proc.wait()
        errors = self._tail.join()
        if code != 0:
            raise VdlibError(f"{self.path}: ffmpeg could not encode the video ({' | '.join(errors[-2:])})")

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._proc.kill()
            self._proc.wait()


def remux(src: str | Path, dst: str | Path) -> None:
    """Copy all streams of ``src`` into the container that ``dst``'s extension names (no re-encoding)."""
    cmd = ffmpeg.compile(
        ffmpeg.output(ffmpeg.input(str(src)), str(dst), c="copy", map=0),
        cmd=ffmpeg_exe(),
        overwrite_output=True,
    )
    proc = subprocess.run(
        [cmd[0], "-hide_banner", "-nostdin", "-v", "error", *cmd[1:]],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if proc.returncode != 0:
        raise VdlibError(
            f"{src}: cannot store its streams in a {Path(dst).suffix} file "
            f"({_last_error_line(proc.stderr)}); use an output ending in .mkv"
        )


def write_gif(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Write (F, H, W, 3) uint8 frames as a looping GIF, atomically."""
    import imageio.v3 as iio

    path = Path(path)
    with atomic_output(path) as tmp:
        iio.imwrite(
            tmp, np.asarray(frames, dtype=np.uint8), extension=".gif", duration=round(1000 / fps), loop=0
        )
    return path


def write_video(
    frames: Iterable[np.ndarray],
    path: str | Path,
    width: int,
    height: int,
    fps: float,
    total: int | None = None,
    desc: str | None = None,
) -> Path:
    """Encode (H, W, 3) uint8 ``frames`` (arrays of one or more frames) into ``path`` with
    :class:`VideoWriter`, atomically; with ``desc``, a progress bar over ``total`` frames."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp_video = tmp.with_suffix(path.suffix)
        try:
            with VideoWriter(tmp_video, width, height, fps) as writer:
                for frame in progress(frames, total=total, desc=desc, unit="frame", disable=desc is None):
                    writer.write(frame)
            tmp_video.rename(tmp)
        finally:
            tmp_video.unlink(missing_ok=True)
    return path


def write_mp4(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Write (F, H, W, 3) uint8 frames as an H.264 MP4 (bit-exact for the same frames), atomically.

    H.264 with 4:2:0 chroma needs even sides; odd frames are padded by one pixel.
    """
    frames = np.asarray(frames, dtype=np.uint8)
    _, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return write_video([frames], path, frames.shape[2], frames.shape[1], fps)
