"""The upsampler's low-res input: augmentation levels, residual targets and their inverse."""

import pytest
import torch

from vdlib.models.diffusion import Diffusion
from vdlib.models.lowres import Residual, augmentation_timesteps, lowres_inputs
from vdlib.models.schedule import DiffusionConfig


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


def test_fitted_upscale_rebuilds_held_out_frames_better_than_bilinear(small_store):
    """The least-squares upscale, fitted on the first frames, rebuilds later frames from their
    downscaled copies far better than bilinear; it survives the model's config.json, and a config
    without one (a model trained before) upscales bilinearly."""
    import json

    import numpy as np

    from vdlib.evaluation.evaluate import psnr
    from vdlib.models.upscale import Upscale, fit_upscale, resize_clip, to_model_range

    store = small_store
    fitted = fit_upscale(store.frames, np.arange(60), (32, 32))
    held_out = to_model_range(np.asarray(store.frames[60:]))[None]  # (1, 3, 20, 32, 32)
    low = resize_clip(held_out, (16, 16))

    def score(upscale: Upscale) -> float:
        out = upscale(low, (32, 32))
        assert out.shape == held_out.shape and out.abs().max() <= 1
        return psnr(((out + 1) * 127.5).round().numpy(), ((held_out + 1) * 127.5).round().numpy())

    assert score(fitted) > score(Upscale()) + 2
    meta = json.loads(json.dumps({"upscale": [list(row) for row in fitted.weights]}))
    assert Upscale.from_rows(meta["upscale"]) == fitted  # as a model card reads it back
    assert Upscale(None).weights is None
    assert torch.equal(Upscale()(low, (32, 32)), resize_clip(low, (32, 32)))
    with pytest.raises(ValueError, match="doubles frames: 16x16 to 48x48"):
        fitted(low, (48, 48))
    # The same filter doubles frames of any shape: a wide crop of the held-out frames.
    wide = held_out[..., 8:24, :]
    assert fitted(resize_clip(wide, (8, 16)), (16, 32)).shape == wide.shape
