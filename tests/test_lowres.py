"""The upsampler's low-res input: augmentation levels, residual targets and their inverse."""

import pytest
import torch

from vdlib.config import DiffusionConfig
from vdlib.diffusion import Diffusion
from vdlib.lowres import Residual, augmentation_timesteps, lowres_inputs


def test_augmentation_levels_round_to_the_nearest_timestep():
    # 0.1 * 999 = 99.9: training once floored this to 99 while rendering rounded it to 100.
    levels = torch.tensor([0.0, 0.0995, 0.1, 1.0])
    assert augmentation_timesteps(levels, 1000).tolist() == [0, 99, 100, 999]


def test_inputs_are_noised_to_each_level_and_reproducible():
    diffusion = Diffusion(DiffusionConfig())
    clip = torch.zeros(2, 3, 2, 8, 8)
    level = torch.tensor([0.0, 0.9])
    a = lowres_inputs(diffusion, clip, level, torch.Generator().manual_seed(1))
    b = lowres_inputs(diffusion, clip, level, torch.Generator().manual_seed(1))
    assert torch.equal(a["lowres"], b["lowres"]) and torch.equal(a["aug_level"], level)
    assert a["lowres"][0].abs().max() < 0.05  # level 0 keeps the input
    assert a["lowres"][1].std() > 0.5  # level 0.9 is mostly noise


@pytest.mark.parametrize("scale", [0.0, 3.0])
def test_residual_target_and_frames_invert_each_other(scale):
    gen = torch.Generator().manual_seed(0)
    clip = torch.rand(1, 3, 2, 8, 8, generator=gen) * 2 - 1
    upscaled = torch.rand(1, 3, 2, 8, 8, generator=gen) * 2 - 1
    residual = Residual(scale)
    target = residual.target(clip, upscaled)
    assert torch.allclose(residual.frames(target, upscaled), clip, atol=1e-6)
    assert target.abs().max() <= residual.bound
    if scale:
        assert torch.allclose(target, (clip - upscaled) * scale)
    else:
        assert torch.equal(target, clip)
