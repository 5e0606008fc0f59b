"""Typed configuration: each ``params.yaml`` section maps 1:1 to a dataclass, validated at load time.

Errors name the file and the key (``params.yaml: extract.fps: expected a positive number, got 'ten'``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vdlib.core.common import ConfigError, fail
from vdlib.models.schedule import DiffusionConfig, SamplingConfig

PRECISIONS = ("auto", "fp32", "bf16")  # autocast choices of training and rendering

T = TypeVar("T")


DEVICES = "auto, cpu, cuda or cuda:N"


def is_device(value: str) -> bool:
    """Whether a device param names one: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    return value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())


def clip_frames(window: int, skip: int) -> int:
    """X, the frames of a clip taken from ``window`` consecutive frames keeping one, skipping ``skip``."""
    return -(-window // (skip + 1))


PARAMS_FILE = Path("params.yaml")
# The folders dvc.yaml tracks for the files params name: the labels stage depends on its tables, the
# render stage on its timelines and pose sources. The check stage refuses files outside them.
TABLES_DIR = Path("labels/tables")  # labels.tables: timestamp tables of the training videos
TIMELINES_DIR = Path("labels/timelines")  # render.timelines: labels over time of generated videos
POSES_DIR = Path("labels/poses")  # render.pose_from: videos or pose labels files driving poses


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchConfig:
    """Where the videos come from: ``demo``, a page or playlist URL (yt-dlp), a direct http(s) URL, a
    local video file or folder of videos, or a list of these (one dataset of many videos)."""

    source: str | list[str] = "demo"
    max_height: int = 720

    @property
    def sources(self) -> list[str]:
        """The sources as a list."""
        return [self.source] if isinstance(self.source, str) else list(self.source)

    def source_key(self, i: int) -> str:
        """How messages name source ``i``: ``fetch.source``, or ``fetch.source[i]`` in a list."""
        return "fetch.source" if isinstance(self.source, str) else f"fetch.source[{i}]"

    def validate(self, where: str) -> None:
        if not self.sources:
            fail(where, "fetch.source", "a source or a non-empty list of sources", self.source)
        for i, item in enumerate(self.sources):
            if not item.strip():
                fail(where, self.source_key(i), "'demo', a URL, or a local video file or folder", item)
        if self.max_height < 16:
            fail(where, "fetch.max_height", "an integer >= 16 (pixels)", self.max_height)


@dataclass(frozen=True)
class DemoConfig:
    """The built-in procedural demo video (used when ``fetch.source`` is ``demo``)."""

    seconds: float = 120.0
    fps: int = 10
    width: int = 192
    height: int = 144
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.seconds <= 0:
            fail(where, "demo.seconds", "a positive number of seconds", self.seconds)
        if self.fps < 1:
            fail(where, "demo.fps", "an integer >= 1", self.fps)
        for key, value in (("width", self.width), ("height", self.height)):
            if value < 32 or value % 2:
                fail(where, f"demo.{key}", "an even integer >= 32", value)


ASPECTS = ("keep", "pad", "crop")


@dataclass(frozen=True)
class ExtractConfig:
    """Frame extraction: frame shape (``resolution``, the shorter side, and ``aspect``), sampling rate,
    padding colour and optional trim."""

    resolution: int = 128
    aspect: str = "pad"  # keep: the videos' own shape | pad: square with bars | crop: square, centre cut
    fps: float = 10.0
    pad_color: str = "black"
    start: float | None = None
    end: float | None = None
    allow_partial: bool = False

    def validate(self, where: str) -> None:
        if self.resolution < 8:
            fail(where, "extract.resolution", "an integer >= 8 (pixels)", self.resolution)
        if self.aspect not in ASPECTS:
            fail(where, "extract.aspect", " | ".join(ASPECTS), self.aspect)
        if self.aspect == "keep" and self.resolution % 8:
            fail(where, "extract.resolution", "a multiple of 8 with extract.aspect: keep", self.resolution)
        if self.fps <= 0:
            fail(where, "extract.fps", "a positive number of frames per second", self.fps)
        if self.start is not None and self.start < 0:
            fail(where, "extract.start", "null or seconds >= 0", self.start)
        if self.end is not None and self.end <= (self.start or 0.0):
            fail(where, "extract.end", "null or seconds after extract.start", self.end)


POSE_RUNTIMES = ("auto", "onnx", "torch")


@dataclass(frozen=True)
class PoseConfig:
    """Ultralytics pose labelling."""

    model: str = "yolo11n-pose.pt"
    batch: int = 32
    imgsz: int = 320
    conf: float = 0.25
    device: str = "cpu"
    runtime: str = "auto"  # auto (onnx on CPU, torch on CUDA) | onnx | torch

    def validate(self, where: str) -> None:
        if self.runtime not in POSE_RUNTIMES:
            fail(where, "labels.pose.runtime", " | ".join(POSE_RUNTIMES), self.runtime)
        if self.batch < 1:
            fail(where, "labels.pose.batch", "an integer >= 1", self.batch)
        if self.imgsz < 32 or self.imgsz % 32:
            fail(where, "labels.pose.imgsz", "a multiple of 32 (pixels)", self.imgsz)
        if not 0.0 <= self.conf <= 1.0:
            fail(where, "labels.pose.conf", "a confidence between 0 and 1", self.conf)


LABEL_KINDS = ("none", "timestamps", "pose")
# base.pose_input: pose labels also given as a Gaussian map per keypoint (input channels), as a
# skeleton image read by a pose encoder, or through their embedding alone
POSE_INPUTS = ("maps", "skeleton", "vector")


@dataclass(frozen=True)
class LabelsConfig:
    """Per-frame labels: none, from timestamp tables, or from pose keypoints."""

    kind: str = "timestamps"
    tables: list[str] = field(default_factory=lambda: ["labels/tables/demo.csv"])
    pose: PoseConfig = field(default_factory=PoseConfig)

    def validate(self, where: str) -> None:
        if self.kind not in LABEL_KINDS:
            fail(where, "labels.kind", " | ".join(LABEL_KINDS), self.kind)
        if self.kind == "timestamps" and not self.tables:
            fail(where, "labels.tables", "at least one CSV table when labels.kind is timestamps", self.tables)
        self.pose.validate(where)


@dataclass(frozen=True)
class ModelParams:
    """The U-Net's size; the rest of its config (label size, upsampler or not) comes from the data."""

    channels: int = 32
    mults: list[int] = field(default_factory=lambda: [1, 2, 2])
    res_blocks: int = 1
    spatial_attn_levels: list[int] = field(default_factory=lambda: [2])
    heads: int = 4
    dropout: float = 0.0
    temporal_conv: bool = False  # a residual convolution over time after every ResNet block
    temporal_attn_levels: list[int] | None = None  # levels with temporal attention (+ middle); None = all
    patch: int = 1  # P x P pixels read as one position: every level runs at 1/P of the frame's side

    @property
    def size_multiple(self) -> int:
        """Frame sizes (and crops) must be multiples of this: the patch, then each level after the first
        halves H and W."""
        return self.patch * 2 ** (len(self.mults) - 1)

    def validate(self, where: str, prefix: str) -> None:
        if not self.mults or min(self.mults) < 1:
            fail(where, f"{prefix}.mults", "a non-empty list of integers >= 1", self.mults)
        if self.channels < 4 or self.heads < 1 or any((self.channels * m) % self.heads for m in self.mults):
            fail(
                where,
                f"{prefix}.channels",
                f"channels x every mult divisible by heads ({self.heads})",
                self.channels,
            )
        for key, levels, null in [
            ("spatial_attn_levels", self.spatial_attn_levels, ""),
            ("temporal_attn_levels", self.temporal_attn_levels or [], "null (all) or "),
        ]:
            bad = [lv for lv in levels if not 0 <= lv < len(self.mults)]
            if bad:
                fail(where, f"{prefix}.{key}", f"{null}levels between 0 and {len(self.mults) - 1}", bad)
        if self.res_blocks < 1:
            fail(where, f"{prefix}.res_blocks", "an integer >= 1", self.res_blocks)
        if self.patch not in (1, 2, 4):
            fail(where, f"{prefix}.patch", "1, 2 or 4 (pixels per side of one position)", self.patch)
        if not 0.0 <= self.dropout < 1.0:
            fail(where, f"{prefix}.dropout", "a probability in [0, 1)", self.dropout)


# Train keys that cannot change a model's weights (logging, checkpoint, validation and sample cadence,
# loader processes, which machine this is): dvc.yaml's train stages do not track them, so changing one
# re-runs no training. tests/training/test_train.py trains with and without each change to the same bytes.
WEIGHT_NEUTRAL_KEYS = ("workers", "ckpt_every", "val_every", "log_every", "sample_every", "node_rank",
                       "rdzv_endpoint")  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Settings shared by every training stage."""

    seed: int = 0
    val_fraction: float = 0.05  # held-out tail of the frame store, for validation
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # CPU threads for torch; 0 = this process's share (cores // vdlib processes running)
    workers: int = 0  # DataLoader worker processes reading the frame store
    ckpt_every: int = 100  # steps between resumable checkpoints
    val_every: int = 1000  # steps between validation losses and label gains (and at the last step)
    log_every: int = 10
    sample_every: int = 0  # steps between sample GIFs; 0 = only at the end
    compile: bool = False  # torch.compile (CUDA only)
    precision: str = "auto"  # auto (bf16 where the hardware computes it natively) | fp32 | bf16
    # Processes, through PyTorch elastic (torchrun) when more than one: see vdlib/training/launch.py.
    nproc: int | str = "auto"  # training processes on this machine; auto = the visible GPUs (1 on CPU)
    nnodes: int = 1  # machines taking part
    node_rank: int = 0  # this machine's number, 0 to nnodes - 1
    rdzv_endpoint: str = ""  # host:port where the machines meet (c10d); empty = this machine alone

    def validate(self, where: str) -> None:
        if not (self.nproc == "auto" or (isinstance(self.nproc, int) and self.nproc >= 1)):
            fail(where, "train.nproc", "auto or an integer >= 1", self.nproc)
        if self.nnodes < 1:
            fail(where, "train.nnodes", "an integer >= 1", self.nnodes)
        if not 0 <= self.node_rank < self.nnodes:
            fail(where, "train.node_rank", f"0 to {self.nnodes - 1} (train.nnodes - 1)", self.node_rank)
        host, _, port = self.rdzv_endpoint.rpartition(":")
        if self.rdzv_endpoint and not (host and port.isdigit()):
            fail(where, "train.rdzv_endpoint", "host:port, or empty for one machine", self.rdzv_endpoint)
        if self.nnodes > 1 and not self.rdzv_endpoint:
            fail(
                where, "train.rdzv_endpoint", "host:port of node 0 when train.nnodes > 1", self.rdzv_endpoint
            )
        if self.precision not in PRECISIONS:
            fail(where, "train.precision", " | ".join(PRECISIONS), self.precision)
        if not 0.0 < self.val_fraction < 0.5:
            fail(where, "train.val_fraction", "a fraction in (0, 0.5)", self.val_fraction)
        for key in ("ckpt_every", "val_every", "log_every"):
            if getattr(self, key) < 1:
                fail(where, f"train.{key}", "an integer >= 1", getattr(self, key))
        for key in ("threads", "workers", "sample_every"):
            if getattr(self, key) < 0:
                fail(where, f"train.{key}", "an integer >= 0", getattr(self, key))
        if not is_device(self.device):
            fail(where, "train.device", DEVICES, self.device)


@dataclass(frozen=True)
class ModelTrainConfig:
    """What the base model and the upsamplers share: clip windows, optimisation, model, diffusion."""

    window: int = 16  # N consecutive stored frames per clip...
    skip: int = 1  # ...taking one, skipping M: X = ceil(N / (M + 1)) frames per clip
    steps: int = 1000
    batch: int = 4
    lr: float = 1e-3
    warmup: int = 50
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    label_dropout: float = 0.1  # labels replaced by the null embedding (classifier-free guidance)
    context_prob: float = 0.5  # clips trained with a random number of given leading frames
    image_prob: float = 0.0  # clips made of unrelated random frames (joint image-video training)
    flip: bool = False  # random horizontal flips (pose keypoints mirrored; off for text or left/right labels)
    model: ModelParams = field(default_factory=ModelParams)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)

    @property
    def frames(self) -> int:
        """X, the frames per clip."""
        return clip_frames(self.window, self.skip)

    def validate(self, where: str, prefix: str) -> None:
        if self.window < 2:
            fail(where, f"{prefix}.window", "an integer >= 2 (consecutive frames per clip)", self.window)
        if self.skip < 0:
            fail(where, f"{prefix}.skip", "an integer >= 0", self.skip)
        if self.frames < 2:
            fail(where, f"{prefix}.skip", f"at most {self.window - 2} so a clip has 2+ frames", self.skip)
        if self.batch < 1:
            fail(where, f"{prefix}.batch", "an integer >= 1", self.batch)
        if self.steps < 1 and not (self.steps == 0 and isinstance(self, UpsamplerConfig)):
            expected = "0 (none trained) or an integer >= 1" if isinstance(self, UpsamplerConfig) else None
            fail(where, f"{prefix}.steps", expected or "an integer >= 1", self.steps)
        if self.lr <= 0:
            fail(where, f"{prefix}.lr", "a positive learning rate", self.lr)
        if self.warmup < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            fail(where, f"{prefix}.warmup", "warmup, grad_clip and weight_decay >= 0", self.warmup)
        if not 0.0 <= self.ema_decay < 1.0:
            fail(where, f"{prefix}.ema_decay", "a decay in [0, 1)", self.ema_decay)
        for key in ("label_dropout", "context_prob", "image_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                fail(where, f"{prefix}.{key}", "a probability in [0, 1]", getattr(self, key))
        self.model.validate(where, f"{prefix}.model")
        self.diffusion.validate(where, f"{prefix}.diffusion")


@dataclass(frozen=True)
class BaseConfig(ModelTrainConfig):
    """The base model: clips at ``resolution`` pixels. Defaults are the CPU recipe of the shipped params."""

    resolution: int = 32
    steps: int = 3600
    batch: int = 2
    context_prob: float = 0.1  # joint windows need no given frames; chained ones learn from this share
    image_prob: float = 0.25
    model: ModelParams = field(
        default_factory=lambda: ModelParams(channels=24, temporal_conv=True, temporal_attn_levels=[1, 2])
    )
    diffusion: DiffusionConfig = field(default_factory=lambda: DiffusionConfig(min_snr_gamma=5.0))
    pose_input: str = "maps"  # how pose labels reach the network besides their embedding (POSE_INPUTS)
    label_maps: bool = False  # timestamp labels also given as constant input channels, one per label
    zoom: float = 0.0  # clips cut to a random box up to 1 + zoom times smaller and scaled back; 0 = none

    def validate(self, where: str, prefix: str = "base") -> None:
        super().validate(where, prefix)
        if not 0.0 <= self.zoom <= 1.0:
            fail(where, f"{prefix}.zoom", "a share in [0, 1] (0 = no zoom)", self.zoom)
        if self.pose_input not in POSE_INPUTS:
            fail(where, f"{prefix}.pose_input", " | ".join(POSE_INPUTS), self.pose_input)
        step = self.model.size_multiple
        if self.resolution < 8 or self.resolution % step:
            expected = f"a multiple of {step} (2 ^ levels-1), >= 8"
            fail(where, f"{prefix}.resolution", expected, self.resolution)


@dataclass(frozen=True)
class UpsamplerConfig(ModelTrainConfig):
    """The 2x upsamplers (one per output size in dvc.yaml), trained on real low-res/high-res pairs."""

    steps: int = 1000
    batch: int = 2
    lr: float = 0.002
    context_prob: float = 0.25
    model: ModelParams = field(
        default_factory=lambda: ModelParams(channels=16, spatial_attn_levels=[], temporal_attn_levels=[1, 2])
    )
    # x0: one sampling step from the noise's mean is the network's estimate of the frames, and x0
    # training fits that estimate directly; with lr 0.002 it adds detail above the fitted filter on
    # real footage (reports/ablations.md, "Upsamplers that predict the frames")
    diffusion: DiffusionConfig = field(default_factory=lambda: DiffusionConfig(prediction="x0"))
    crop: int = 32  # train on random crops of this many pixels (0: whole frames); sampling is full-size
    noise_aug: float = 0.3  # the low-res clip is noised to a level drawn from [0, noise_aug] in training
    sample_aug: float = 0.1  # ...and to this level when sampling
    mapping_channels: int = 16
    residual_std: float = 0.5  # diffuse (frames - upscaled input), scaled to this std; 0 = the frames
    # Output sizes from this one up bring their low-res input up with a linear filter fitted to the
    # training frames (vdlib.training.clips.Upscale); smaller ones, and all when None, bilinearly.
    fitted_upscale_from: int | None = 128
    # Training steps of those upsamplers: the filter already does most of their work. None = steps.
    fitted_steps: int | None = 250

    def fitted(self, size: int) -> bool:
        """Whether the upsampler to ``size`` px brings its input up with the fitted filter."""
        return self.fitted_upscale_from is not None and size >= self.fitted_upscale_from

    def for_size(self, size: int) -> UpsamplerConfig:
        """This config as the upsampler to ``size`` px trains it: ``fitted_steps`` where it is fitted
        (and none with ``steps: 0``)."""
        if self.steps and self.fitted(size) and self.fitted_steps is not None:
            return dataclasses.replace(self, steps=self.fitted_steps)
        return self

    def validate(self, where: str, prefix: str = "upsampler") -> None:
        super().validate(where, prefix)
        step = self.model.size_multiple
        if self.crop < 0 or self.crop % step:
            fail(where, f"{prefix}.crop", f"0 or a multiple of {step}", self.crop)
        for key in ("noise_aug", "sample_aug"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                fail(where, f"{prefix}.{key}", "a level in [0, 1]", getattr(self, key))
        if self.mapping_channels < 1:
            fail(where, f"{prefix}.mapping_channels", "an integer >= 1", self.mapping_channels)
        if self.residual_std < 0:
            fail(where, f"{prefix}.residual_std", "0 (off) or a standard deviation > 0", self.residual_std)
        if self.fitted_upscale_from is not None and self.fitted_upscale_from < 1:
            expected = "null (bilinear for every size) or an output size in pixels"
            fail(where, f"{prefix}.fitted_upscale_from", expected, self.fitted_upscale_from)
        if self.fitted_steps is not None and self.fitted_steps < 1:
            expected = "null (the same as steps) or an integer >= 1"
            fail(where, f"{prefix}.fitted_steps", expected, self.fitted_steps)


CASCADE = ("base", "upsampler_64", "upsampler_128")  # the models of dvc.yaml, in order
BASE_SAMPLING = SamplingConfig(  # render.base's default
    steps=30, guidance=2.0, guidance_share=0.33, context=4, windows="joint",
    shared_noise=0.3, window_frames=16,
)  # fmt: skip
UPSAMPLER_SAMPLING = SamplingConfig(  # both upsamplers' default: one step from the noise's mean
    steps=1, context=0, window_frames=16, temperature=0.0
)
VIDEO_FORMATS = ("gif", "mp4")
AUTO = "auto"


def is_auto(value: str | list[str]) -> bool:
    """True for a render request list left to ``auto`` (requests that fit the model's labels)."""
    return isinstance(value, str)


@dataclass(frozen=True)
class RenderConfig:
    """The render stage: which videos to generate, how long, and how each model samples."""

    cascade: int = 3  # how many of base → upsampler_64 → upsampler_128 to run (1 = base only)
    seeds: list[int] = field(default_factory=lambda: [0])
    frames: int = 16  # K frames per video; longer than a window is made in overlapping windows
    fps: float = 0.0  # playback rate; 0 = the base model's frame rate
    formats: list[str] = field(default_factory=lambda: ["gif", "mp4"])
    # What to render, each 'auto' (what fits the model's labels) or an explicit list:
    labels: str | list[str] = AUTO  # one video per entry and seed: "shape=circle,colour=red"
    timelines: str | list[str] = AUTO  # timestamp tables in output time: a video each
    pose_from: str | list[str] = AUTO  # videos or pose label files: a video each
    count: int = 10  # at most this many 'auto' videos per seed
    batch: int | str = AUTO  # videos sampled together; auto = 1 on CPU, 8 on CUDA (see batch_size)
    device: str = "auto"
    base: SamplingConfig = field(default_factory=lambda: BASE_SAMPLING)
    upsampler_64: SamplingConfig = field(default_factory=lambda: UPSAMPLER_SAMPLING)
    upsampler_128: SamplingConfig = field(default_factory=lambda: UPSAMPLER_SAMPLING)

    def batch_size(self, device_type: str) -> int:
        """Videos sampled together on a device of ``device_type``. ``auto``: 8 on CUDA; 1 on CPU, where
        a batch is memory-bound and costs more per video than one video at a time (measured:
        ``benchmarks/render.py``)."""
        if self.batch != AUTO:
            return int(self.batch)
        return 1 if device_type == "cpu" else 8

    def sampling(self) -> list[SamplingConfig]:
        """The sampling settings of the models that run, in cascade order."""
        return [getattr(self, name) for name in CASCADE[: self.cascade]]

    def validate(self, where: str) -> None:
        if not 1 <= self.cascade <= len(CASCADE):
            fail(where, "render.cascade", f"1 to {len(CASCADE)} ({' → '.join(CASCADE)})", self.cascade)
        if not self.seeds:
            fail(where, "render.seeds", "a non-empty list of integers", self.seeds)
        for key in ("labels", "timelines", "pose_from"):
            value = getattr(self, key)
            if isinstance(value, str) and value != AUTO:
                fail(where, f"render.{key}", "auto or a list (one video per entry)", value)
        if self.count < 1:
            fail(where, "render.count", "an integer >= 1 (videos per seed for 'auto' requests)", self.count)
        if self.frames < 1:
            fail(where, "render.frames", "an integer >= 1", self.frames)
        if not (self.batch == AUTO or (isinstance(self.batch, int) and self.batch >= 1)):
            fail(where, "render.batch", "auto or an integer >= 1 (videos sampled together)", self.batch)
        if self.fps < 0:
            fail(where, "render.fps", "frames per second > 0, or 0 for the model's rate", self.fps)
        bad = [f for f in self.formats if f not in VIDEO_FORMATS]
        if bad or not self.formats:
            fail(where, "render.formats", f"a list of {' and '.join(VIDEO_FORMATS)}", self.formats)
        if not is_device(self.device):
            fail(where, "render.device", DEVICES, self.device)
        for name in CASCADE:
            getattr(self, name).validate(where, f"render.{name}")


@dataclass(frozen=True)
class AutoencoderParams:
    """The autoencoder (stage train_autoencoder): with ``steps`` above 0 the base model diffuses its
    latents of the frames instead of the frames' pixels (:mod:`vdlib.models.autoencoder`)."""

    steps: int = 0  # training steps; 0 = no autoencoder: the base model diffuses pixels
    channels: int = 32  # width at full resolution; twice that at the lower resolutions
    latent_channels: int = 4
    downsamplings: int = 2  # each halves the frame: latents 2 ^ downsamplings times smaller
    batch: int = 16  # crops per step
    crop: int = 64  # square training crops (pixels); 0 = whole frames
    lr: float = 0.002

    @property
    def enabled(self) -> bool:
        """Whether an autoencoder is trained (and the base model diffuses its latents)."""
        return self.steps > 0

    @property
    def factor(self) -> int:
        """How many times smaller a latent's side is than its frame's."""
        return 2**self.downsamplings

    @property
    def warmup(self) -> int:
        """Steps of linear learning-rate warm-up (then cosine decay, as every model)."""
        return min(50, self.steps // 4)

    def validate(self, where: str) -> None:
        if self.steps < 0:
            fail(where, "autoencoder.steps", "0 (no autoencoder) or an integer >= 1", self.steps)
        for key in ("channels", "latent_channels", "batch"):
            if getattr(self, key) < 1:
                fail(where, f"autoencoder.{key}", "an integer >= 1", getattr(self, key))
        if not 1 <= self.downsamplings <= 4:
            fail(
                where,
                "autoencoder.downsamplings",
                "1 to 4 (latents 2 to 16 times smaller)",
                self.downsamplings,
            )
        if self.crop < 0 or self.crop % self.factor:
            fail(where, "autoencoder.crop", f"0 (whole frames) or a multiple of {self.factor}", self.crop)
        if self.lr <= 0:
            fail(where, "autoencoder.lr", "a positive learning rate", self.lr)


@dataclass(frozen=True)
class EvaluateConfig:
    """The evaluate stage: the label classifier and how many held-out clips to score."""

    classifier_size: int = 32  # frames are scored at this size
    classifier_steps: int = 800
    fidelity_clips: int = 4  # held-out clips per upsampler for PSNR/SSIM
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.classifier_size < 8:
            fail(where, "evaluate.classifier_size", "an integer >= 8 (pixels)", self.classifier_size)
        for key in ("classifier_steps", "fidelity_clips"):
            if getattr(self, key) < 1:
                fail(where, f"evaluate.{key}", "an integer >= 1", getattr(self, key))


SECTIONS: dict[str, type] = {
    "fetch": FetchConfig,
    "demo": DemoConfig,
    "extract": ExtractConfig,
    "labels": LabelsConfig,
    "train": TrainConfig,
    "autoencoder": AutoencoderParams,
    "base": BaseConfig,
    "upsampler": UpsamplerConfig,
    "render": RenderConfig,
    "evaluate": EvaluateConfig,
}


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, where: str, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where, key)
            except ConfigError:
                continue
        fail(where, key, _type_name(tp), value)
    if origin is list:
        if not isinstance(value, list):
            fail(where, key, _type_name(tp), value)
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, key)
    if tp is bool:
        if not isinstance(value, bool):
            fail(where, key, "true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(where, key, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail(where, key, "a number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail(where, key, "a string", value)
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")


# Params renamed since a release: the old name gets a one-line pointer to the new one.
# old key: (new key, why)
RENAMED = {
    "extract.size": ("extract.resolution", "DVC's run cache ignores params named size"),
    "base.size": ("base.resolution", "DVC's run cache ignores params named size"),
    "base.keypoint_maps": ("base.pose_input", "true is maps, false is vector; skeleton is new"),
}


def _build(cls: type[T], data: Any, where: str, prefix: str) -> T:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        fail(where, prefix, "a mapping of keys", data)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - fields)
    if unknown and f"{prefix}.{unknown[0]}" in RENAMED:
        old = f"{prefix}.{unknown[0]}"
        new, why = RENAMED[old]
        raise ConfigError(f"{where}: {old}: renamed {new} ({why})")
    if unknown:
        raise ConfigError(
            f"{where}: {prefix}.{unknown[0]}: unknown key (valid keys: {', '.join(sorted(fields))})"
        )
    kwargs = {name: _coerce(data[name], hints[name], where, f"{prefix}.{name}") for name in data}
    return cls(**kwargs)


def section_from_dict(name: str, data: Any, where: str = "params") -> Any:
    """Build and validate the dataclass for section ``name`` from a plain mapping."""
    if name not in SECTIONS:
        raise ConfigError(f"{where}: {name}: unknown section (valid: {', '.join(SECTIONS)})")
    cfg = _build(SECTIONS[name], data, where, name)
    cfg.validate(where)
    return cfg


def read_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read ``params.yaml`` as a mapping, with a clear error when it is missing or malformed."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (run from the project root)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load_section(name: str, path: str | Path = PARAMS_FILE) -> Any:
    """Load one validated section of ``params.yaml`` (missing keys take their defaults)."""
    return section_from_dict(name, read_params(path).get(name), where=str(path))
