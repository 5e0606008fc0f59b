"""A small per-frame autoencoder: frames (3, H, W) in [-1, 1] to latents (C, H/f, W/f) and back.

A base model can diffuse these latents instead of pixels: a 128 px frame's latent has the 32 px
frame's positions with more channels, so the network costs about what a 32 px base model costs and
the decoder draws 128 px of detail. It is trained on the project's own frames with a weight-free
loss (L1 on the pixels and on their horizontal and vertical differences); its latents are
normalised to zero mean and unit variance per channel, measured on the training frames.

The config, with the normalisation, is saved as ``config.json`` beside ``model.safetensors``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from safetensors.torch import load_file, save_file
from torch import nn

from vdlib.core.common import VdlibError, atomic_output, is_not_trained

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class AutoencoderConfig:
    """Constructor arguments of :class:`FrameAutoencoder`, and its latents' normalisation."""

    channels: int = 32  # width at full resolution; twice that at the lower resolutions
    latent_channels: int = 4
    downsamplings: int = 2  # each halves the frame: latents are 2 ^ downsamplings times smaller
    latent_mean: tuple[float, ...] = ()  # per latent channel, on the training frames; () = not measured
    latent_std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "latent_mean", tuple(self.latent_mean))
        object.__setattr__(self, "latent_std", tuple(self.latent_std))

    @property
    def factor(self) -> int:
        """How many times smaller a latent's side is than its frame's."""
        return 2**self.downsamplings


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class FrameAutoencoder(nn.Module):
    """Encoder and decoder of single frames; clips are encoded frame by frame."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch, wide, lat = cfg.channels, 2 * cfg.channels, cfg.latent_channels
        down: list[nn.Module] = [nn.Conv2d(3, ch, 3, padding=1), _Residual(ch)]
        width = ch
        for _ in range(cfg.downsamplings):
            down += [nn.Conv2d(width, wide, 3, stride=2, padding=1), _Residual(wide)]
            width = wide
        self.encoder = nn.Sequential(*down, nn.SiLU(), nn.Conv2d(width, lat, 1))
        up: list[nn.Module] = [nn.Conv2d(lat, width, 3, padding=1), _Residual(width), _Residual(width)]
        for level in range(cfg.downsamplings):
            out = ch if level == cfg.downsamplings - 1 else wide
            up += [nn.Upsample(scale_factor=2), nn.Conv2d(width, out, 3, padding=1), _Residual(out)]
            width = out
        self.decoder = nn.Sequential(*up, nn.SiLU(), nn.Conv2d(width, 3, 3, padding=1))
        mean = torch.tensor(cfg.latent_mean or [0.0] * lat).view(1, lat, 1, 1)
        std = torch.tensor(cfg.latent_std or [1.0] * lat).view(1, lat, 1, 1)
        self.register_buffer("latent_mean", mean, persistent=False)
        self.register_buffer("latent_std", std, persistent=False)

    def encode_raw(self, frames: torch.Tensor) -> torch.Tensor:
        """Latents (N, C, H/f, W/f) of frames (N, 3, H, W), before normalisation."""
        return self.encoder(frames)

    def decode_raw(self, latents: torch.Tensor) -> torch.Tensor:
        """Frames (N, 3, H, W), unclamped, of latents before normalisation."""
        return self.decoder(latents)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalised latents of frames (N, 3, H, W) in [-1, 1]."""
        return (self.encode_raw(frames) - self.latent_mean) / self.latent_std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Frames in [-1, 1] of normalised latents (N, C, h, w)."""
        return self.decode_raw(latents * self.latent_std + self.latent_mean).clamp(-1, 1)

    def with_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> FrameAutoencoder:
        """This network with its latents normalised by per-channel ``mean`` and ``std``."""
        cfg = replace(self.cfg, latent_mean=tuple(mean.tolist()), latent_std=tuple(std.tolist()))
        model = FrameAutoencoder(cfg)
        model.load_state_dict(self.state_dict())
        return model.to(next(self.parameters()).device).train(self.training)


def reconstruction_loss(model: FrameAutoencoder, frames: torch.Tensor) -> torch.Tensor:
    """L1 of the reconstruction and of its horizontal and vertical differences (edges count as much
    as flat colour), plus a small pull of the raw latents towards zero."""
    latents = model.encode_raw(frames)
    made = model.decode_raw(latents).float()
    loss = (made - frames).abs().mean()
    for dim in (-1, -2):
        loss = loss + (made.diff(dim=dim) - frames.diff(dim=dim)).abs().mean()
    return loss + 1e-4 * latents.float().pow(2).mean()


def save_autoencoder(model: FrameAutoencoder, folder: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``folder``, atomically."""
    folder = Path(folder)
    with atomic_output(folder) as tmp:
        tmp.mkdir(parents=True)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp / WEIGHTS_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(asdict(model.cfg), indent=2) + "\n")
    return folder


def load_autoencoder(folder: str | Path, device: str | torch.device = "cpu") -> FrameAutoencoder | None:
    """Load what :func:`save_autoencoder` wrote, in eval mode; None for a folder that says no
    autoencoder was trained (:func:`vdlib.core.common.write_not_trained`). One line naming what is
    wrong with anything else."""
    folder = Path(folder)
    if is_not_trained(folder):
        return None
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise VdlibError(f"{folder}: not a vdlib autoencoder (missing {name})")
    try:
        cfg = AutoencoderConfig(**json.loads((folder / CONFIG_FILE).read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise VdlibError(f"{folder / CONFIG_FILE}: invalid autoencoder config ({exc})") from None
    return load_weights(cfg, folder / WEIGHTS_FILE, CONFIG_FILE, device)


def load_weights(
    cfg: AutoencoderConfig, path: Path, config_file: str, device: str | torch.device = "cpu"
) -> FrameAutoencoder:
    """An autoencoder of ``cfg`` holding the weights in ``path``, in eval mode; one line naming
    ``config_file`` (where ``cfg`` came from) when they do not fit it."""
    model = FrameAutoencoder(cfg)
    try:
        model.load_state_dict(load_file(path))
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise VdlibError(f"{path}: weights do not match {config_file} ({first})") from None
    return model.to(device).eval()
