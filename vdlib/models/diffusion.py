"""Diffusion on top of diffusers' schedulers: training targets and loss, sampling, guidance.

Training noise comes from ``DDPMScheduler`` (linear or cosine betas; epsilon, v or x0 prediction).
Sampling swaps in DDPM, DDIM, DPM-Solver++ (multistep) or Euler from the same config, through one
loop: ``scale_model_input`` → network → ``step``. Classifier-free guidance mixes a labelled and a
null-label prediction. The "cold" sampler of Custom-Simple-Video-Diffusion, the project vdlib
re-imagines (predict x0, re-noise it to the next level with the same fixed noise), has no library
implementation, so it is written here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
)

from vdlib.core.common import VdlibError
from vdlib.core.randomness import Generators, per_clip
from vdlib.models.schedule import PREDICTIONS, SAMPLERS, SCHEDULES, DiffusionConfig, SamplingConfig


def training_scheduler(cfg: DiffusionConfig) -> DDPMScheduler:
    """The DDPM scheduler that defines the forward process the network is trained on: the named
    schedule, its signal-to-noise ratio divided by ``cfg.shift`` squared at every level."""
    common = {
        "num_train_timesteps": cfg.timesteps,
        "prediction_type": PREDICTIONS[cfg.prediction],
        "clip_sample": False,
    }
    named = DDPMScheduler(beta_schedule=SCHEDULES[cfg.schedule], **common)
    if cfg.shift == 1.0:
        return named
    return DDPMScheduler(trained_betas=shifted_betas(named.alphas_cumprod, cfg.shift).tolist(), **common)


def shifted_betas(alphas_cumprod: torch.Tensor, shift: float) -> torch.Tensor:
    """The betas of the schedule whose SNR at every level is ``alphas_cumprod``'s divided by
    ``shift`` squared (log-SNR moved by -2 log shift: shift > 1 is noisier, < 1 cleaner), as in
    Hoogeboom et al., 2023 ("simple diffusion") and Chen, 2023 ("On the importance of noise
    scheduling"): schedules made for one image size hide a smaller frame's content at fewer of
    their levels. The computation is in float64; the last beta is capped at 0.999, as diffusers
    caps the named schedules'."""
    abar = alphas_cumprod.double()
    snr = abar / (1 - abar) / shift**2
    shifted = snr / (1 + snr)
    previous = torch.cat([torch.ones(1, dtype=shifted.dtype), shifted[:-1]])
    return (1 - shifted / previous).clamp(max=0.999).float()


class Diffusion:
    """Noising and training targets for one :class:`DiffusionConfig`."""

    def __init__(self, cfg: DiffusionConfig) -> None:
        self.cfg = cfg
        self.scheduler = training_scheduler(cfg)
        self.alphas_cumprod = self.scheduler.alphas_cumprod.float()

    def sample_timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Uniform over every timestep 0..T-1 (Custom-Simple-Video-Diffusion never trained the last one)."""
        return torch.randint(0, self.cfg.timesteps, (n,), generator=generator)

    def noise(
        self,
        shape: tuple[int, ...],
        generator: Generators,
        independent: torch.Tensor | None = None,
        share: float | None = None,
    ) -> torch.Tensor:
        """Standard Gaussian noise for clips of ``shape`` (B, C, F, H, W). With ``share`` (default
        ``cfg.shared_noise``) = s > 0, a share s of each value's variance is common to all frames of
        its clip (the mixed noise prior of Ge et al., 2023, "Preserve Your Own Correlation"): a
        clip's frames then start alike, as real frames are, so the network learns per-frame change
        instead of making every frame from unrelated noise. Clips marked ``independent`` (B,)
        (unrelated frames) keep independent noise. With s = 0 this is one ``torch.randn`` draw, as
        before. With one generator per clip, each clip's noise is what it would get alone."""
        generators = per_clip(generator, shape[0])
        if generators is not None:
            one = (1, *shape[1:])
            parts = [self.noise(one, g, None if independent is None else independent[i : i + 1], share)
                     for i, g in enumerate(generators)]  # fmt: skip
            return torch.cat(parts)
        noise = torch.randn(shape, generator=generator)
        share = self.cfg.shared_noise if share is None else share
        if not share:
            return noise
        common = torch.randn((shape[0], shape[1], 1, *shape[3:]), generator=generator)
        s = torch.full((shape[0],), share)
        if independent is not None:
            s = torch.where(independent.cpu(), torch.zeros(()), s)
        s = s.view(-1, 1, 1, 1, 1)
        return s.sqrt() * common + (1 - s).sqrt() * noise

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        return self.scheduler.add_noise(x0, noise, t)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network should output at x_t."""
        if self.cfg.prediction == "epsilon":
            return noise
        if self.cfg.prediction == "x0":
            return x0
        return self.scheduler.get_velocity(x0, noise, t)

    def loss_weight(self, t: torch.Tensor) -> torch.Tensor:
        """Per-sample training loss weights (B,): Min-SNR-gamma (Hang et al., 2023) with a floor, or
        ones.

        The weight makes the loss clamp(SNR, floor, gamma) times the x0 error for every prediction
        type, so nearly clean levels (high SNR), whose loss is large but says little about layout and
        shape, stop dominating the gradient. Min-SNR alone weights the noisiest levels by SNR, nearly
        0: on the cosine schedule the top fifth of the timesteps, where sampling starts and a clip's
        layout and its frames' agreement are decided, got 2% of the weight. The floor (``snr_floor``,
        1 = the truncated-SNR weighting of Salimans & Ho, 2022, there) keeps them in training.
        """
        gamma = self.cfg.min_snr_gamma
        if not gamma:
            return torch.ones(t.shape)
        abar = self.alphas_cumprod[t]
        snr = abar / (1 - abar)
        clipped = snr.clamp(min=self.cfg.snr_floor, max=gamma)
        if self.cfg.prediction == "epsilon":
            return clipped / snr
        if self.cfg.prediction == "x0":
            return clipped
        return clipped / (snr + 1)

    def predict_x0(self, x_t: torch.Tensor, output: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The clean clip implied by a network output at x_t."""
        abar = self.alphas_cumprod.to(x_t.device)[t].view(-1, *([1] * (x_t.ndim - 1)))
        a, s = abar.sqrt(), (1 - abar).sqrt()
        if self.cfg.prediction == "epsilon":
            return (x_t - s * output) / a
        if self.cfg.prediction == "x0":
            return output
        return a * x_t - s * output


def make_sampler(name: str, cfg: DiffusionConfig):
    """A diffusers scheduler for sampling, built from the training scheduler's config."""
    base = training_scheduler(cfg).config
    common = {"timestep_spacing": "trailing"}  # start from the noisiest level, whatever the step count
    if name == "ddpm":
        return DDPMScheduler.from_config(base, **common)
    if name == "ddim":
        return DDIMScheduler.from_config(base, **common, set_alpha_to_one=True)
    if name == "dpmsolver++":
        return DPMSolverMultistepScheduler.from_config(
            base, **common, algorithm_type="dpmsolver++", solver_order=2
        )
    if name == "euler":
        return EulerDiscreteScheduler.from_config(base, **common)
    raise VdlibError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {name!r}")


# A denoiser maps (x_t, t as a (B,) tensor, labelled) to the network output; ``labelled`` is None
# (no labels at all) or a (B,) bool mask: True = the clip's labels, False = the null labels.
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def guided(
    denoise: Denoiser, guidance: float, has_labels: bool
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Classifier-free guidance: null + s * (labelled - null), both predictions made in one network
    pass over a batch of twice the size. Scale 1 is the labelled output alone."""

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not has_labels:
            return denoise(x, t, None)
        b = x.shape[0]
        if guidance == 1.0:
            return denoise(x, t, torch.ones(b, dtype=torch.bool, device=x.device))
        both = torch.arange(2 * b, device=x.device) < b
        labelled, null = denoise(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
        return null + guidance * (labelled - null)

    return fn


@dataclass
class SampleResult:
    """A generated clip in [-1, 1] and how many network evaluations it took."""

    clip: torch.Tensor
    evaluations: int


@torch.no_grad()
def sample(
    denoise: Denoiser,
    shape: tuple[int, ...],
    diffusion: Diffusion,
    settings: SamplingConfig,
    has_labels: bool = False,
    generator: Generators = None,
    device: str | torch.device = "cpu",
    bound: float = 1.0,
) -> SampleResult:
    """Generate one batch of clips of ``shape`` (B, C, F, H, W) as ``settings`` say (sampler, steps,
    guidance, its share of the steps, shared noise, temperature) with noise from ``generator`` (one,
    or one per clip); values are clamped to [-bound, bound] (1 for frames in model range). Guidance
    applies to the first ``guidance_share`` of the steps (rounded up), the noisiest, where labels
    decide what is drawn; the later steps take the labelled prediction alone, one network pass each.
    ``shared_noise`` is the share of the starting noise's variance common to a clip's frames
    (:meth:`Diffusion.noise`; None: the share the model trained with). ``temperature`` scales the
    starting noise: 0 starts from its mean, zero, and one step then gives the network's estimate of
    the clean clip given its inputs alone (the same whatever the generator)."""
    sampler, steps = settings.sampler, settings.steps
    if steps < 1:
        raise VdlibError(f"steps: expected an integer >= 1, got {steps}")
    calls = 0

    def counted(x: torch.Tensor, t: torch.Tensor, labelled: torch.Tensor | None) -> torch.Tensor:
        nonlocal calls
        calls += x.shape[0] // shape[0]  # network evaluations per clip: a guided pass counts twice
        return denoise(x, t, labelled)

    guided_steps = math.ceil(settings.guidance_share * steps - 1e-9)
    step_fns = [guided(counted, settings.guidance, has_labels), guided(counted, 1.0, has_labels)]

    def model_fn(x: torch.Tensor, t: torch.Tensor, step: int) -> torch.Tensor:
        return step_fns[step >= guided_steps](x, t)

    noise = diffusion.noise(shape, generator, share=settings.shared_noise).to(device)
    noise = noise * settings.temperature  # ddpm adds more
    if sampler == "cold":
        clip = _cold_sample(model_fn, noise, diffusion, steps, bound)
        return SampleResult(clip.clamp(-bound, bound), calls)
    scheduler = make_sampler(sampler, diffusion.cfg)
    scheduler.set_timesteps(steps, device=device)
    x = noise * scheduler.init_noise_sigma
    for step, t in enumerate(scheduler.timesteps):
        model_input = scheduler.scale_model_input(x, t)
        t_batch = t.expand(shape[0]).to(device)
        output = model_fn(model_input, t_batch, step)
        x = scheduler.step(output, t, x, generator=generator).prev_sample
    return SampleResult(x.clamp(-bound, bound), calls)


def _cold_sample(
    model_fn, noise: torch.Tensor, diffusion: Diffusion, steps: int, bound: float
) -> torch.Tensor:
    """The original project's "cold" sampling: at each level predict x0, then re-noise that estimate to
    the next (lower) level with the *same* initial noise. Deterministic given the noise; suited to upsamplers
    whose low-res input already fixes most of the content."""
    T = diffusion.cfg.timesteps  # noqa: N806
    levels = torch.linspace(T - 1, 0, steps).round().long().unique_consecutive()
    x = noise
    x0 = noise
    for i, t in enumerate(levels):
        t_batch = t.expand(noise.shape[0]).to(noise.device)
        x0 = diffusion.predict_x0(x, model_fn(x, t_batch, i), t_batch).clamp(-bound, bound)
        if i + 1 < len(levels):
            nxt = levels[i + 1].expand(noise.shape[0]).to(noise.device)
            x = diffusion.add_noise(x0, noise, nxt)
    return x0
