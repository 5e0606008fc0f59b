"""A diffusion model's settings: its noise schedule and prediction target, which its training and
its samplers share (``base.diffusion`` and ``upsampler.diffusion`` in the params), how it samples
(``render.<model>``), and the names of the schedules, targets and samplers vdlib knows."""

from __future__ import annotations

from dataclasses import dataclass

from vdlib.core.common import ConfigError, fail

SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}  # our names -> diffusers' names
PREDICTIONS = {"epsilon": "epsilon", "v": "v_prediction", "x0": "sample"}
SAMPLERS = ("ddpm", "ddim", "dpmsolver++", "euler", "cold")
WINDOW_MODES = ("chain", "joint")  # how a model covers clips longer than its window


@dataclass(frozen=True)
class DiffusionConfig:
    """The noise schedule and what the network predicts."""

    schedule: str = "cosine"  # linear | cosine
    prediction: str = "v"  # epsilon | v | x0
    timesteps: int = 1000
    min_snr_gamma: float = 0.0  # training loss weight min(SNR, gamma) in x0 terms; 0 = unweighted
    snr_floor: float = 0.0  # with min_snr_gamma: at least this weight (the noisiest levels); 0 = none
    shared_noise: float = 0.0  # share of the noise's variance common to a clip's frames; 0 = independent
    shift: float = 1.0  # the schedule's SNR divided by shift**2 at every level: > 1 noisier, 1 = as named

    def validate(self, where: str, prefix: str = "diffusion") -> None:
        if self.schedule not in SCHEDULES:
            fail(where, f"{prefix}.schedule", " | ".join(SCHEDULES), self.schedule)
        if self.prediction not in PREDICTIONS:
            fail(where, f"{prefix}.prediction", " | ".join(PREDICTIONS), self.prediction)
        if self.timesteps < 2:
            fail(where, f"{prefix}.timesteps", "an integer >= 2", self.timesteps)
        if self.min_snr_gamma < 0:
            fail(where, f"{prefix}.min_snr_gamma", "a number >= 0 (0 = off)", self.min_snr_gamma)
        if self.snr_floor < 0 or (self.min_snr_gamma and self.snr_floor > self.min_snr_gamma):
            fail(where, f"{prefix}.snr_floor", "a number from 0 (off) to min_snr_gamma", self.snr_floor)
        if not 0 <= self.shared_noise < 1:
            fail(where, f"{prefix}.shared_noise", "a number in [0, 1) (0 = off)", self.shared_noise)
        if not self.shift > 0:
            fail(where, f"{prefix}.shift", "a number > 0 (1 = the schedule as named)", self.shift)


@dataclass(frozen=True)
class SamplingConfig:
    """How one model of the cascade samples."""

    sampler: str = "dpmsolver++"  # ddpm | ddim | dpmsolver++ | euler | cold
    steps: int = 20
    guidance: float = 1.0  # classifier-free guidance scale; 1 = labelled prediction alone (one pass)
    guidance_share: float = 1.0  # share of the steps, the noisiest first, that use guidance
    context: int = 2  # frames where windows overlap (chain: the previous window's last, given to the next)
    windows: str = "chain"  # chain: window by window | joint: all windows denoised together
    shared_noise: float | None = None  # starting noise's share common to a video's frames; None = as trained
    window_frames: int | None = None  # frames each window makes; None = the model's training clip length
    temperature: float = 1.0  # scale of the starting noise; 0 = start from its mean (deterministic)

    def validate(self, where: str, prefix: str) -> None:
        if self.sampler not in SAMPLERS:
            fail(where, f"{prefix}.sampler", " | ".join(SAMPLERS), self.sampler)
        if self.steps < 1:
            fail(where, f"{prefix}.steps", "an integer >= 1", self.steps)
        if self.guidance < 0:
            fail(where, f"{prefix}.guidance", "a scale >= 0 (1 = no guidance)", self.guidance)
        if not 0 <= self.guidance_share <= 1:
            fail(where, f"{prefix}.guidance_share", "a share in [0, 1] of the steps", self.guidance_share)
        if self.context < 0:
            fail(where, f"{prefix}.context", "an integer >= 0", self.context)
        if self.windows not in WINDOW_MODES:
            fail(where, f"{prefix}.windows", " | ".join(WINDOW_MODES), self.windows)
        if self.shared_noise is not None and not 0 <= self.shared_noise < 1:
            expected = "null (as the model trained) or a share in [0, 1)"
            fail(where, f"{prefix}.shared_noise", expected, self.shared_noise)
        if self.window_frames is not None and self.window_frames < 2:
            expected = "null (the model's training clip length) or an integer >= 2"
            fail(where, f"{prefix}.window_frames", expected, self.window_frames)
        if self.temperature < 0:
            expected = "a scale >= 0 of the starting noise (1 = as trained, 0 = none)"
            fail(where, f"{prefix}.temperature", expected, self.temperature)

    def check_context(self, window: int, key: str, model: str = "the model") -> None:
        """Windows must overlap by fewer frames than ``model`` makes in one (``window``); one line naming
        the ``key`` of these settings otherwise."""
        if self.context >= window:
            raise ConfigError(
                f"{key}.context: expected 0 to {window - 1} ({model} makes {window} frames per window), "
                f"got {self.context}"
            )

    def frames_per_window(self, trained: int) -> int:
        """Frames each window makes, for a model trained on clips of ``trained`` frames."""
        return self.window_frames or trained
