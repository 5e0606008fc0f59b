"""Diffusion on diffusers schedulers: targets, every timestep trained, samplers checked with an oracle."""

import pytest
import torch

from vdlib.core.common import VdlibError
from vdlib.models.diffusion import Diffusion, guided, make_sampler, sample
from vdlib.models.schedule import DiffusionConfig, SamplingConfig


@pytest.mark.parametrize("prediction", ["epsilon", "v", "x0"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_target_inverts_to_x0(prediction, schedule):
    d = Diffusion(DiffusionConfig(schedule=schedule, prediction=prediction))
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 2, 8, 8, generator=gen) * 2 - 1
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.tensor([0, 10, 500, 990])
    x_t = d.add_noise(x0, noise, t)
    assert torch.allclose(d.predict_x0(x_t, d.target(x0, noise, t), t), x0, atol=1e-3)


def test_shared_noise_correlates_a_clips_frames_and_nothing_else():
    shape = (64, 3, 4, 16, 16)
    plain = Diffusion(DiffusionConfig()).noise(shape, torch.Generator().manual_seed(0))
    assert torch.equal(plain, torch.randn(shape, generator=torch.Generator().manual_seed(0)))  # as before
    independent = torch.arange(64) >= 48
    noise = Diffusion(DiffusionConfig(shared_noise=0.5)).noise(
        shape, torch.Generator().manual_seed(0), independent
    )
    assert noise.var().item() == pytest.approx(1.0, abs=0.02)  # still unit variance per value

    def correlation(a, b):
        return torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()

    clips = noise[:48]
    assert correlation(clips[:, :, 0], clips[:, :, 3]) == pytest.approx(0.5, abs=0.03)  # frames of a clip
    assert correlation(clips[:24, :, 0], clips[24:, :, 0]) == pytest.approx(0.0, abs=0.03)  # other clips
    assert correlation(noise[48:, :, 0], noise[48:, :, 3]) == pytest.approx(0.0, abs=0.03)  # unrelated frames
    # Sampling may ask for another share than the model trained with (render.<model>.shared_noise).
    asked = Diffusion(DiffusionConfig()).noise(shape, torch.Generator().manual_seed(0), share=0.3)
    assert correlation(asked[:, :, 0], asked[:, :, 3]) == pytest.approx(0.3, abs=0.03)
    trained_shared = Diffusion(DiffusionConfig(shared_noise=0.5))
    none = trained_shared.noise(shape, torch.Generator().manual_seed(0), share=0)
    assert torch.equal(none, plain)


@pytest.mark.parametrize("prediction", ["epsilon", "v", "x0"])
def test_min_snr_weight_makes_every_loss_min_snr_times_the_x0_error(prediction):
    d = Diffusion(DiffusionConfig(prediction=prediction, min_snr_gamma=5.0))
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(5, 3, 2, 8, 8, generator=gen) * 2 - 1
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.tensor([1, 100, 400, 700, 999])
    x_t = d.add_noise(x0, noise, t)
    output = d.target(x0, noise, t) + 0.1 * torch.randn(x0.shape, generator=gen)  # an imperfect network
    weighted = d.loss_weight(t) * ((output - d.target(x0, noise, t)) ** 2).mean(dim=(1, 2, 3, 4))
    abar = d.alphas_cumprod[t]
    snr = abar / (1 - abar)
    x0_error = ((d.predict_x0(x_t, output, t) - x0) ** 2).mean(dim=(1, 2, 3, 4))
    assert torch.allclose(weighted, snr.clamp(max=5.0) * x0_error, rtol=1e-3)
    assert snr[0] > 5 > snr[-1]  # both sides of the clip are exercised
    assert torch.equal(Diffusion(DiffusionConfig(prediction=prediction)).loss_weight(t), torch.ones(5))
    # With a floor, the noisiest levels (SNR near 0 at t=999) keep the x0 error at full weight.
    floored = Diffusion(DiffusionConfig(prediction=prediction, min_snr_gamma=5.0, snr_floor=1.0))
    weighted = floored.loss_weight(t) * ((output - d.target(x0, noise, t)) ** 2).mean(dim=(1, 2, 3, 4))
    assert torch.allclose(weighted, snr.clamp(min=1.0, max=5.0) * x0_error, rtol=1e-3)
    assert snr[-1] < 1e-6 and weighted[-1] == pytest.approx(x0_error[-1].item(), rel=1e-3)


def test_every_timestep_is_trained():
    d = Diffusion(DiffusionConfig(timesteps=50))
    t = d.sample_timesteps(20000, torch.Generator().manual_seed(0))
    assert t.min() == 0 and t.max() == 49 and len(t.unique()) == 50


def oracle(d: Diffusion, x0: torch.Tensor):
    """The ideal denoiser for a data set holding only ``x0``."""

    def denoise(x_t, t, use_labels):
        t = t.round().long() if t.is_floating_point() else t
        abar = d.alphas_cumprod[t].view(-1, 1, 1, 1, 1)
        eps = (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()
        return d.target(x0.expand_as(x_t), eps, t)

    return denoise


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmsolver++", "euler", "cold"])
@pytest.mark.parametrize("prediction", ["v", "epsilon"])
def test_samplers_recover_the_only_clip_an_oracle_knows(sampler, prediction):
    d = Diffusion(
        DiffusionConfig(prediction=prediction, schedule="linear" if sampler == "euler" else "cosine")
    )
    x0 = torch.rand(1, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.8
    result = sample(
        oracle(d, x0),
        (2, 3, 2, 8, 8),
        d,
        SamplingConfig(sampler, 25),
        generator=torch.Generator().manual_seed(2),
    )
    assert result.evaluations == 25
    assert (result.clip - x0).abs().max() < 0.05


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_shift_divides_every_levels_snr_for_training_and_every_sampler(schedule):
    named = Diffusion(DiffusionConfig(schedule=schedule)).alphas_cumprod.double()
    shifted_cfg = DiffusionConfig(schedule=schedule, shift=2.0)
    shifted = Diffusion(shifted_cfg).alphas_cumprod.double()
    snr = named / (1 - named)
    ratio = (shifted / (1 - shifted)) / snr
    assert torch.allclose(ratio, torch.full_like(ratio, 0.25), rtol=1e-3)
    for sampler in ["ddpm", "ddim", "dpmsolver++", "euler"]:
        assert torch.allclose(make_sampler(sampler, shifted_cfg).alphas_cumprod.double(), shifted)
    assert torch.equal(Diffusion(DiffusionConfig(schedule=schedule, shift=1.0)).alphas_cumprod,
                       Diffusion(DiffusionConfig(schedule=schedule)).alphas_cumprod)  # fmt: skip


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++", "cold"])
def test_samplers_recover_the_oracles_clip_on_a_shifted_schedule(sampler):
    d = Diffusion(DiffusionConfig(shift=3.0))
    x0 = torch.rand(1, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.8
    result = sample(
        oracle(d, x0),
        (2, 3, 2, 8, 8),
        d,
        SamplingConfig(sampler, 25),
        generator=torch.Generator().manual_seed(2),
    )
    assert (result.clip - x0).abs().max() < 0.05


def test_guidance_is_one_pass_counted_twice_and_scale_one_is_the_labelled_output():
    calls = []

    def denoise(x, t, labelled):
        calls.append(None if labelled is None else labelled.tolist())
        return x * (1.0 if labelled is None else torch.where(labelled, 2.0, 1.0).view(-1, 1, 1, 1, 1))

    x = torch.ones(1, 3, 2, 4, 4)
    t = torch.tensor([5])
    assert torch.equal(guided(denoise, 1.0, True)(x, t), x * 2.0) and calls == [[True]]
    calls.clear()
    assert torch.allclose(guided(denoise, 3.0, True)(x, t), x * (1 + 3.0 * (2 - 1)))
    assert calls == [[True, False]]  # labelled and null halves of one batch
    calls.clear()
    assert torch.equal(guided(denoise, 3.0, False)(x, t), x) and calls == [None]
    d = Diffusion(DiffusionConfig())
    result = sample(
        lambda x, t, u: torch.zeros_like(x),
        (1, 3, 2, 4, 4),
        d,
        SamplingConfig("ddim", 10, 2.0),
        has_labels=True,
    )
    assert result.evaluations == 20


@pytest.mark.parametrize("sampler", ["dpmsolver++", "cold"])
@pytest.mark.parametrize(("share", "guided_steps"), [(1.0, 10), (0.5, 5), (0.33, 4), (0.0, 0)])
def test_guidance_share_guides_the_noisiest_steps_only(sampler, share, guided_steps):
    seen = []  # (timestep, guided?) of every network pass

    def denoise(x, t, labelled):
        seen.append((int(t[0]), not bool(labelled.all())))  # a guided pass holds the null half too
        return torch.zeros_like(x)

    d = Diffusion(DiffusionConfig())
    shape = (1, 3, 2, 4, 4)
    result = sample(denoise, shape, d, SamplingConfig(sampler, 10, 2.0, share), has_labels=True)
    assert [g for _, g in seen] == [True] * guided_steps + [False] * (10 - guided_steps)
    assert [t for t, _ in seen] == sorted((t for t, _ in seen), reverse=True)  # noisiest first
    assert result.evaluations == 10 + guided_steps


def test_each_sample_draws_fresh_noise():
    d = Diffusion(DiffusionConfig())
    gen = torch.Generator().manual_seed(0)
    a = sample(
        lambda x, t, u: torch.zeros_like(x), (1, 3, 2, 4, 4), d, SamplingConfig("ddim", 4), generator=gen
    ).clip
    b = sample(
        lambda x, t, u: torch.zeros_like(x), (1, 3, 2, 4, 4), d, SamplingConfig("ddim", 4), generator=gen
    ).clip
    assert not torch.equal(a, b)


def test_unknown_sampler():
    with pytest.raises(VdlibError, match=r"sampler: expected one of ddpm, ddim, dpmsolver\+\+, euler, cold"):
        sample(lambda x, t, u: x, (1, 3, 1, 4, 4), Diffusion(DiffusionConfig()), SamplingConfig("heun", 5))
