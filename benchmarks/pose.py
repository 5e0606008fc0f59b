"""Pose labelling throughput: vdlib's batched pass over the frame store (ONNX Runtime on CPU) vs a plain
per-frame Ultralytics ``predict`` loop in PyTorch, same model (the bundled ``yolo11n-pose.pt``), image
size and confidence. The same batches in PyTorch are timed too, to show what batching alone gives.

Frames: a slow zoom into Ultralytics' ``bus.jpg`` (people in every frame), extracted to 128 px.
Interleaved runs after a warm-up; medians. Also checks that both find the same keypoints.

    python benchmarks/pose.py
    python benchmarks/pose.py --quick     # 8 frames (smoke test)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import bench_main, markdown_table

TARGET_SPEEDUP = 1.5


def _frames(work: Path, seconds: float) -> Path:
    import ultralytics

    from vdlib.config import ExtractConfig
    from vdlib.data.extract import extract_frames
    from vdlib.data.video import ffmpeg_exe

    photo = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
    video = work / "bus.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-loop", "1", "-i", str(photo), "-vf",
         "zoompan=z='1+0.003*on':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=1:fps=10:s=640x480",
         "-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", str(video)],
        check=True,
    )  # fmt: skip
    extract_frames(video, work / "frames", ExtractConfig(resolution=128, fps=10))
    return work / "frames"


def run(quick: bool = False, repeats: int = 3) -> dict:
    """Time vdlib's labelling (default runtime), the same batches in PyTorch, and a per-frame loop."""
    from vdlib.config import PoseConfig
    from vdlib.data.frames import FrameStore
    from vdlib.device import resolve_device
    from vdlib.labels.pose import detect_poses, load_pose_model, pose_labels

    resolve_device("cpu", "benchmark")  # every core, as the stage gets
    repeats = 1 if quick else repeats
    cfg = PoseConfig(batch=32)  # runtime auto: ONNX Runtime on CPU
    torch_cfg = PoseConfig(batch=32, runtime="torch")
    with tempfile.TemporaryDirectory(prefix="vdlib-bench-") as tmp:
        store = FrameStore.open(_frames(Path(tmp), 0.8 if quick else 9.6))
        frames = np.asarray(store.frames)
        model = load_pose_model(torch_cfg)
        for warm in (model, load_pose_model(cfg)):  # the one-off ONNX export, model fuse, first-call set-up
            detect_poses(warm, frames[:1], cfg)
        ours, batched, looped = [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            labels = pose_labels(store, cfg)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            pose_labels(store, torch_cfg)
            batched.append(time.perf_counter() - start)
            start = time.perf_counter()
            loop_kp = []
            for frame in frames:
                result = model.predict(np.ascontiguousarray(frame[..., ::-1]), imgsz=cfg.imgsz, conf=cfg.conf,
                                       device=cfg.device, verbose=False)[0]  # fmt: skip
                best = int(result.boxes.conf.argmax()) if len(result.boxes) else -1
                loop_kp.append(result.keypoints.xyn[best].numpy() if best >= 0 else np.zeros((17, 2)))
            looped.append(time.perf_counter() - start)
    n = len(frames)
    vdlib_fps, torch_fps, loop_fps = (n / statistics.median(t) for t in (ours, batched, looped))
    agreement = float(np.abs(labels.cond.reshape(n, 17, 3)[:, :, :2] - np.stack(loop_kp)).max())
    row = {
        "frames": n,
        "imgsz": cfg.imgsz,
        "batch": cfg.batch,
        "vdlib_runtime": "onnx",
        "vdlib_frames_per_s": round(vdlib_fps, 2),
        "torch_batched_frames_per_s": round(torch_fps, 2),
        "loop_frames_per_s": round(loop_fps, 2),
        "speedup": round(vdlib_fps / loop_fps, 3),
        "batching_alone_speedup": round(torch_fps / loop_fps, 3),
        "max_keypoint_difference": round(agreement, 5),
        "target_met": vdlib_fps / loop_fps >= TARGET_SPEEDUP,
    }
    table = markdown_table(
        ["frames", "vdlib (ONNX Runtime, batch 32) frames/s", "PyTorch batch 32 frames/s",
         "per-frame loop frames/s", "speedup", "max keypoint diff", f"target >= {TARGET_SPEEDUP}x"],
        [[n, row["vdlib_frames_per_s"], row["torch_batched_frames_per_s"], row["loop_frames_per_s"],
          row["speedup"], row["max_keypoint_difference"], row["target_met"]]],
    )  # fmt: skip
    return {"rows": [row], "table": table, "repeats": repeats}


def main(argv: list[str] | None = None) -> int:
    return bench_main("pose", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
