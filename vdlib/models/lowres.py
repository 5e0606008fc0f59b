"""How an upsampler sees its low-res input: one path for training, validation, training samples and
rendering.

1. The low-res clip is brought up to the output size by the model's :class:`vdlib.training.clips.Upscale`: the
   linear filter that best rebuilds the training frames from their downscaled copies (least squares,
   fitted before training and saved with the model), or bilinear.
2. It is noise-augmented: diffused to level ``a`` in [0, 1] of the noise schedule (timestep
   ``round(a * (T - 1))``), and ``a`` is given to the network too, so it learns how far to trust its
   input. Training draws ``a`` uniformly from [0, ``upsampler.noise_aug``]; validation, training
   samples and rendering use ``upsampler.sample_aug``.
3. A residual upsampler (``residual_scale`` > 0) diffuses ``(frames - upscaled input) * scale``
   rather than the frames, so an untrained one already gives the upscaled input and its noise
   levels span the detail it adds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vdlib.core.randomness import Generators, randn
from vdlib.models.diffusion import Diffusion


def augmentation_timesteps(level: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Noise-augmentation levels (B,) in [0, 1] → the schedule's timesteps, rounded to the nearest."""
    return torch.round(level * (timesteps - 1)).long()


def lowres_inputs(
    diffusion: Diffusion, upscaled: torch.Tensor, level: torch.Tensor, gen: Generators
) -> dict[str, torch.Tensor]:
    """The network's low-res inputs for upscaled clips (B, 3, F, H, W) at augmentation levels (B,):
    ``lowres`` (the clips diffused to those levels with noise from ``gen``, one generator or one per
    clip) and ``aug_level``."""
    noise = randn(upscaled.shape, gen)
    noisy = diffusion.add_noise(upscaled, noise, augmentation_timesteps(level, diffusion.cfg.timesteps))
    return {"lowres": noisy, "aug_level": level}


@dataclass(frozen=True)
class Residual:
    """What a model diffuses: the frames (``scale`` 0, base models and plain upsamplers) or a residual
    upsampler's scaled difference from its upscaled input."""

    scale: float = 0.0

    def target(self, clip: torch.Tensor, upscaled: torch.Tensor | None) -> torch.Tensor:
        """Frames in [-1, 1] → what the model diffuses."""
        if not self.scale:
            return clip
        assert upscaled is not None, "a residual upsampler needs its upscaled input"
        return (clip - upscaled) * self.scale

    def frames(self, made: torch.Tensor, upscaled: torch.Tensor | None) -> torch.Tensor:
        """What the model made → frames in [-1, 1]."""
        if not self.scale:
            return made.clamp(-1, 1)
        assert upscaled is not None, "a residual upsampler needs its upscaled input"
        return (made / self.scale + upscaled).clamp(-1, 1)

    @property
    def bound(self) -> float:
        """The largest value the diffused signal can take (samplers clip their estimate to it): frames
        and their upscale both lie in [-1, 1]."""
        return 2.0 * self.scale if self.scale else 1.0
