"""What a trained model folder says about itself: its network, its kind, the clips and the split it
trained on, its frames' size and rate, its labels and, for an upsampler, how it reads its low-res
input. Written once (``config.json`` beside ``model.safetensors``) and read here only."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from vdlib.core.common import VdlibError, atomic_output
from vdlib.models.autoencoder import AutoencoderConfig, FrameAutoencoder, load_weights
from vdlib.models.schedule import DiffusionConfig
from vdlib.models.unet import UNet3D, UNetConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
AUTOENCODER_FILE = "autoencoder.safetensors"  # a latent base model's autoencoder, beside its network
KINDS = ("base", "upsampler")
# What a folder must record; everything else has a default for folders written before it existed.
REQUIRED = ("unet", "kind", "size", "frames", "window", "skip", "diffusion", "fps", "val_fraction", "seed")


@dataclass(frozen=True)
class ModelCard:
    """A trained model's ``config.json``, typed. Defaults are what older folders lacked: square
    frames, no labels, a bilinear upscale, no low-res noise or residual scale."""

    unet: UNetConfig
    kind: str  # base | upsampler
    size: int  # the shorter side of the frames it makes (64 for upsampler_64)
    diffusion: DiffusionConfig
    frames: int  # X, the frames of a training clip...
    window: int  # ...taken from N consecutive stored frames...
    skip: int  # ...skipping M between them
    val_fraction: float  # the held-out tail of every video it never trained on
    seed: int
    fps: float  # its frames' rate
    shape: tuple[int, int] | None = None  # (height, width) of its frames; None: size x size
    crop: int = 0  # an upsampler's training crops (0: whole frames)
    label_kind: str = "none"  # none | timestamps | pose
    label_names: tuple[str, ...] = ()
    sample_aug: float | None = None  # upsampler: noise level of its low-res input when sampling
    residual_scale: float | None = None  # upsampler: the scale of the residual it diffuses
    upscale: tuple[tuple[float, ...], ...] | None = None  # upsampler: fitted filter; None = bilinear
    autoencoder: AutoencoderConfig | None = None  # a latent base model: the autoencoder of its latents

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(height, width) of the frames it makes."""
        return self.shape or (self.size, self.size)

    @property
    def is_upsampler(self) -> bool:
        return self.kind == "upsampler"

    @property
    def network_shape(self) -> tuple[int, int]:
        """(height, width) the network works at: its frames', or a latent base model's latents'."""
        factor = self.autoencoder.factor if self.autoencoder is not None else 1
        return self.frame_shape[0] // factor, self.frame_shape[1] // factor

    def to_json(self) -> dict[str, Any]:
        """The ``config.json`` mapping, in the order vdlib has always written it."""
        card: dict[str, Any] = {
            "unet": asdict(self.unet),
            "kind": self.kind,
            "size": self.size,
            "shape": list(self.frame_shape),
            "diffusion": asdict(self.diffusion),
            "frames": self.frames,
            "window": self.window,
            "skip": self.skip,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "crop": self.crop,
            "fps": self.fps,
            "labels": {"kind": self.label_kind, "names": list(self.label_names)},
        }
        if self.is_upsampler:
            card["sample_aug"] = self.sample_aug if self.sample_aug is not None else 0.0
            card["residual_scale"] = self.residual_scale if self.residual_scale is not None else 0.0
            if self.upscale is not None:
                card["upscale"] = [list(row) for row in self.upscale]
        if self.autoencoder is not None:
            card["autoencoder"] = asdict(self.autoencoder)
        return card

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> ModelCard:
        """The card of a ``config.json`` mapping read from ``where``; one line naming what is missing."""
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise VdlibError(f"{where}: missing {missing[0]!r} (a model folder of another vdlib: retrain it)")
        if data["kind"] not in KINDS:
            raise VdlibError(f"{where}: kind: expected {' | '.join(KINDS)}, got {data['kind']!r}")
        labels = data.get("labels", {})
        shape = data.get("shape")
        upscale = data.get("upscale")
        autoencoder = data.get("autoencoder")
        try:
            return cls(
                unet=UNetConfig(**data["unet"]),
                kind=data["kind"],
                size=int(data["size"]),
                diffusion=DiffusionConfig(**data["diffusion"]),
                frames=int(data["frames"]),
                window=int(data["window"]),
                skip=int(data["skip"]),
                val_fraction=float(data["val_fraction"]),
                seed=int(data["seed"]),
                fps=float(data["fps"]),
                shape=(int(shape[0]), int(shape[1])) if shape else None,
                crop=int(data.get("crop", 0)),
                label_kind=labels.get("kind", "none"),
                label_names=tuple(labels.get("names", [])),
                sample_aug=data.get("sample_aug"),
                residual_scale=data.get("residual_scale"),
                upscale=tuple(tuple(float(v) for v in row) for row in upscale) if upscale else None,
                autoencoder=AutoencoderConfig(**autoencoder) if autoencoder else None,
            )
        except (TypeError, ValueError, IndexError) as exc:
            raise VdlibError(f"{where}: invalid model config ({exc})") from None


def save_model(
    model: UNet3D, card: ModelCard, folder: str | Path, autoencoder: FrameAutoencoder | None = None
) -> Path:
    """Write ``model.safetensors`` and the card as ``config.json`` into ``folder``, atomically; a
    latent base model's ``autoencoder`` beside them, so the folder renders on its own."""
    if card.unet != model.cfg:
        raise ValueError("the card's network config is not the model's")
    if card.autoencoder != (autoencoder.cfg if autoencoder is not None else None):
        raise ValueError("the card's autoencoder config is not the autoencoder's")
    folder = Path(folder)
    with atomic_output(folder) as tmp:
        tmp.mkdir(parents=True)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp / WEIGHTS_FILE)
        if autoencoder is not None:
            coder = {k: v.detach().cpu().contiguous() for k, v in autoencoder.state_dict().items()}
            save_file(coder, tmp / AUTOENCODER_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(card.to_json(), indent=2) + "\n")
    return folder


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> tuple[UNet3D, ModelCard]:
    """Load a model saved by :func:`save_model`: (the network in eval mode, its card). Refuses a
    card/weights mismatch with a one-line error; reads no pickle."""
    folder = Path(folder)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise VdlibError(f"{folder}: not a vdlib model (missing {name})")
    try:
        data = json.loads((folder / CONFIG_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise VdlibError(f"{folder / CONFIG_FILE}: invalid model config ({exc})") from None
    card = ModelCard.from_json(data, str(folder / CONFIG_FILE))
    model = UNet3D(card.unet)
    state = load_file(folder / WEIGHTS_FILE, device=str(device))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        if missing:
            detail = f"missing {missing[:2]}"
        elif unexpected:
            detail = f"unexpected {unexpected[:2]}"
        else:
            key = wrong[0]
            detail = f"shape of {key} is {tuple(state[key].shape)}, config says {tuple(expected[key].shape)}"
        raise VdlibError(f"{folder / WEIGHTS_FILE}: weights do not match {CONFIG_FILE} ({detail})")
    model.load_state_dict(state)
    return model.to(device).eval(), card


def load_model_autoencoder(
    folder: str | Path, card: ModelCard, device: str | torch.device = "cpu"
) -> FrameAutoencoder | None:
    """The autoencoder a latent base model's folder holds beside its network (None for others)."""
    if card.autoencoder is None:
        return None
    path = Path(folder) / AUTOENCODER_FILE
    if not path.is_file():
        raise VdlibError(f"{folder}: a latent base model without its {AUTOENCODER_FILE}; retrain it")
    return load_weights(card.autoencoder, path, f"the autoencoder in {CONFIG_FILE}", device)
