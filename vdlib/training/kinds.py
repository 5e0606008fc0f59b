"""What the base model and the upsamplers train differently, said once. Each kind answers the same
questions (its network, its batches, its low-res input, what its model card adds), so the training
loop, validation, samples and ``vdlib init``'s speed probe never ask which kind they hold."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from vdlib.config import BaseConfig, ModelTrainConfig, UpsamplerConfig
from vdlib.data.frames import ClipWindows, FrameStore, evenly_spaced
from vdlib.labels.pose import SKELETON
from vdlib.models.autoencoder import FrameAutoencoder
from vdlib.models.lowres import Residual
from vdlib.models.unet import UNetConfig
from vdlib.models.upscale import Shape, Upscale, fit_upscale
from vdlib.training.clips import BatchSpec, ModelFrames, make_batch

UPSCALE_FRAMES = 256  # evenly spaced training frames a fitted upscale is fitted on


class ModelKind(Protocol):
    """The questions whose answers tell a base model from an upsampler."""

    section: str  # its params section and card kind: base | upsampler
    memory_hint: str  # the params to lower when a GPU runs out of memory

    def unet_config(self, cond_dim: int, label_kind: str) -> UNetConfig:
        """Its network's config for labels of ``cond_dim`` values of ``label_kind``."""
        ...

    def batch_spec(self, shape: Shape, label_kind: str, upscale: Upscale) -> BatchSpec:
        """What its training batches hold, for frames of ``shape``."""
        ...

    def upscale(self, store: FrameStore, windows: ClipWindows, shape: Shape) -> Upscale:
        """How its low-res input is brought up to ``shape`` (bilinear where nothing is fitted)."""
        ...

    def residual(
        self, store: FrameStore, cond: np.ndarray, windows: ClipWindows, spec: BatchSpec
    ) -> Residual:
        """What it diffuses: the frames, or their difference from the upscaled low-res input."""
        ...

    @property
    def noise_aug(self) -> float | None:
        """The largest noise level of its low-res input in training; None: it has none."""
        ...

    @property
    def sample_aug(self) -> float | None:
        """The noise level of its low-res input when sampling and validating; None: it has none."""
        ...

    def card_fields(self, residual: Residual, upscale: Upscale) -> dict[str, Any]:
        """What its model card records beyond what every model records."""
        ...


@dataclass(frozen=True)
class BaseKind:
    """The base model: clips from noise, labels (and pose keypoint maps) as its conditioning; with an
    autoencoder, clips of its latents of the frames."""

    cfg: BaseConfig
    autoencoder: FrameAutoencoder | None = None
    section: str = "base"
    memory_hint: str = "base.batch or base.window"

    def unet_config(self, cond_dim: int, label_kind: str) -> UNetConfig:
        pose_input = self.cfg.pose_input if label_kind == "pose" else "vector"
        maps = cond_dim // 3 if pose_input != "vector" else 0  # (x, y, conf) each
        label_maps = label_kind == "timestamps" and self.cfg.label_maps
        channels = self.autoencoder.cfg.latent_channels if self.autoencoder is not None else 3
        return UNetConfig(
            **asdict(self.cfg.model), image_channels=channels, cond_dim=cond_dim, keypoint_maps=maps,
            label_maps=label_maps, skeleton=SKELETON if pose_input == "skeleton" else (),
        )  # fmt: skip

    def batch_spec(self, shape: Shape, label_kind: str, upscale: Upscale) -> BatchSpec:
        return _batch_spec(
            self.cfg, shape, label_kind, upscale, zoom=self.cfg.zoom, autoencoder=self.autoencoder
        )

    def upscale(self, store: FrameStore, windows: ClipWindows, shape: Shape) -> Upscale:
        return Upscale()

    def residual(
        self, store: FrameStore, cond: np.ndarray, windows: ClipWindows, spec: BatchSpec
    ) -> Residual:
        return Residual()

    @property
    def noise_aug(self) -> float | None:
        return None

    @property
    def sample_aug(self) -> float | None:
        return None

    def card_fields(self, residual: Residual, upscale: Upscale) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class UpsamplerKind:
    """A 2x upsampler: the low-res clip, noised, through a mapping network into every block; it
    diffuses the residual over the low-res clip's upscale, on random crops."""

    cfg: UpsamplerConfig
    size: int  # the shorter side of the frames it makes
    section: str = "upsampler"
    memory_hint: str = "upsampler.batch or upsampler.crop"

    def unet_config(self, cond_dim: int, label_kind: str) -> UNetConfig:
        return UNetConfig(
            **asdict(self.cfg.model),
            cond_dim=cond_dim,
            lowres=True,
            mapping_channels=self.cfg.mapping_channels,
        )

    def batch_spec(self, shape: Shape, label_kind: str, upscale: Upscale) -> BatchSpec:
        return _batch_spec(self.cfg, shape, label_kind, upscale, lowres=True, crop=self.cfg.crop)

    def upscale(self, store: FrameStore, windows: ClipWindows, shape: Shape) -> Upscale:
        if not self.cfg.fitted(self.size):
            return Upscale()
        frames = evenly_spaced(windows.train_frames, UPSCALE_FRAMES)  # never the held-out tail
        return fit_upscale(store.frames, frames, shape)

    def residual(
        self, store: FrameStore, cond: np.ndarray, windows: ClipWindows, spec: BatchSpec
    ) -> Residual:
        return Residual(measure_residual_scale(store, cond, windows, spec, self.cfg.residual_std))

    @property
    def noise_aug(self) -> float | None:
        return self.cfg.noise_aug

    @property
    def sample_aug(self) -> float | None:
        return self.cfg.sample_aug

    def card_fields(self, residual: Residual, upscale: Upscale) -> dict[str, Any]:
        return {
            "sample_aug": self.cfg.sample_aug,
            "residual_scale": residual.scale,
            "upscale": upscale.weights,
        }


def _batch_spec(
    cfg: ModelTrainConfig, shape: Shape, label_kind: str, upscale: Upscale, **kind: Any
) -> BatchSpec:
    """What every model's batches hold, and what its ``kind`` adds (low-res input, crops, zoom)."""
    return BatchSpec(shape=shape, batch=cfg.batch, flip=cfg.flip, image_prob=cfg.image_prob, upscale=upscale,
                     keypoints=label_kind == "pose", **kind)  # fmt: skip


def kind_of(cfg: ModelTrainConfig, size: int, autoencoder: FrameAutoencoder | None = None) -> ModelKind:
    """The kind of model ``cfg`` trains, making frames whose shorter side is ``size`` (a base model
    with ``autoencoder``: its latents of them)."""
    return UpsamplerKind(cfg, size) if isinstance(cfg, UpsamplerConfig) else BaseKind(cfg, autoencoder)


def measure_residual_scale(
    store: FrameStore, cond: np.ndarray, windows: ClipWindows, spec: BatchSpec, target_std: float
) -> float:
    """The scale that gives the high-res minus upscaled residual of training clips the standard
    deviation ``target_std`` (0: no residual). Deterministic: evenly spaced clips."""
    if not target_std:
        return 0.0
    starts = evenly_spaced(windows.train_starts, 32)
    batch = make_batch(
        ModelFrames(store, BatchSpec(spec.shape, spec.batch, False, lowres=True, upscale=spec.upscale)),
        cond,
        windows.rows(starts),
    )
    std = float((batch["clip"] - batch["lowres"]).std())
    return round(target_std / max(std, 1e-3), 4)
