"""The models of the cascade (a base model, then 2x upsamplers) and how one of them makes frames.

Each model makes its frames in windows of the length it was trained on, overlapping by ``context``
frames (the last window is moved back to end exactly at K). Chained (``windows: chain``), the first
window is sampled from noise alone and each later one is given the last ``context`` frames made so
far as clean context frames and makes the rest; every window draws its noise from the generator of
(seed, window, the model's place in the cascade, ``Stream.WINDOW``). Joint (``windows: joint``), all
windows are denoised together as one clip with the noise of window 0's generator: each step runs
them as one batch and gives every frame the weighted mean of its windows' predictions. Either way
the generators are per video: videos sampled together in one batch get the noise each would get
alone.
An upsampler is conditioned on the previous model's output through :mod:`vdlib.models.lowres`, the same
path its training used, and on the same per-frame labels. A latent base model samples its
autoencoder's latents (context frames encoded) and hands on their decoded frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vdlib.core.common import VdlibError
from vdlib.core.cores import share_cores
from vdlib.core.randomness import Stream, step_generator
from vdlib.data.frames import ClipWindows, FrameStore
from vdlib.labels import ModelLabels
from vdlib.models.autoencoder import FrameAutoencoder
from vdlib.models.card import ModelCard, load_model, load_model_autoencoder
from vdlib.models.diffusion import Diffusion, sample
from vdlib.models.lowres import Residual, lowres_inputs
from vdlib.models.schedule import SamplingConfig
from vdlib.models.unet import UNet3D
from vdlib.models.upscale import Upscale, framewise


@dataclass
class CascadeModel:
    """One loaded model of the cascade and how it samples."""

    folder: Path
    net: UNet3D
    card: ModelCard  # what its folder says about it: size, clip shape, diffusion, labels, low-res settings
    sampling: SamplingConfig
    key: str  # the params key of its sampling settings, for messages: render.base, ...
    autoencoder: FrameAutoencoder | None = None  # a latent base model's, from its folder

    def __post_init__(self) -> None:
        self.diffusion = Diffusion(self.card.diffusion)

    @property
    def size(self) -> int:
        """The shorter side of the frames it makes (its name's size: 64 for upsampler_64)."""
        return self.card.size

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the frames it makes."""
        return self.card.frame_shape

    @property
    def window(self) -> int:
        """Frames the model makes at once: its sampling's ``window_frames``, or X, its training clip
        length."""
        return self.sampling.frames_per_window(self.card.frames)

    @property
    def is_upsampler(self) -> bool:
        return self.card.is_upsampler

    @property
    def channels(self) -> int:
        """Channels of what its network diffuses: 3 for frames, more for latents."""
        return self.card.unet.image_channels

    def to_network(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, T, H, W) as its network reads them: themselves, or their latents."""
        return frames if self.autoencoder is None else self._per_frame(frames, self.autoencoder.encode)

    def from_network(self, made: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, T, H, W) in [-1, 1] of what its network made: itself, or its latents decoded."""
        return made if self.autoencoder is None else self._per_frame(made, self.autoencoder.decode)

    def _per_frame(self, clip: torch.Tensor, code: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``code`` (the autoencoder's encoder or decoder) over every frame of ``clip``, on its device."""
        with torch.no_grad():
            return framewise(clip.to(self.autoencoder.latent_mean.device), code).to(clip.device)

    @property
    def residual(self) -> Residual:
        return Residual(self.card.residual_scale or 0.0)

    @property
    def upscale(self) -> Upscale:
        """How an upsampler brings its low-res input up (bilinear unless its card holds a filter)."""
        return Upscale(self.card.upscale)

    @property
    def sample_aug(self) -> float:
        """The noise-augmentation level of an upsampler's low-res input at sampling."""
        return self.card.sample_aug or 0.0

    @property
    def labels(self) -> ModelLabels:
        return ModelLabels(self.card.label_kind, list(self.card.label_names), str(self.folder))

    def windows(self, store: FrameStore) -> ClipWindows:
        """The clip windows and held-out split its training used, over the frames of ``store``."""
        return ClipWindows.for_store(store, self.card.window, self.card.skip, self.card.val_fraction)


def open_model(folder: str | Path, sampling: SamplingConfig, key: str, device: torch.device) -> CascadeModel:
    """Load one model with its sampling settings (``key`` names those settings in messages)."""
    net, card = load_model(folder, device)
    model = CascadeModel(Path(folder), net, card, sampling, key, load_model_autoencoder(folder, card, device))
    sampling.check_context(model.window, key, str(folder))
    return model


def _check_order(cascade: list[CascadeModel], model: CascadeModel) -> None:
    """``model`` may follow ``cascade``: a base model first, then upsamplers doubling the size, all
    trained on the same labels."""
    if not cascade:
        if model.is_upsampler:
            raise VdlibError(f"{model.folder}: the first model must be a base model, this is an upsampler")
        return
    prev, first = cascade[-1], cascade[0]
    if not model.is_upsampler:
        raise VdlibError(f"{model.folder}: expected an upsampler after {prev.folder}, got a base model")
    if model.shape != (2 * prev.shape[0], 2 * prev.shape[1]):
        (h, w), (ph, pw) = model.shape, prev.shape
        raise VdlibError(
            f"{model.folder}: makes {h}x{w} frames from {h // 2}x{w // 2}, but {prev.folder} makes "
            f"{ph}x{pw}; order the cascade by size and train every model on the same frames"
        )
    if model.labels.conditioned and first.labels.conditioned and model.labels.names != first.labels.names:
        raise VdlibError(
            f"{model.folder}: trained on other labels than {first.folder} "
            f"({model.labels.valid()} vs {first.labels.valid()})"
        )


def load_cascade(
    folders: list[str | Path], sampling: list[SamplingConfig], keys: list[str], device: torch.device
) -> list[CascadeModel]:
    """Load the models in cascade order and check that they fit together."""
    if not folders:
        raise VdlibError("no models given (expected a base model, then optional upsamplers)")
    if len(sampling) != len(folders):
        raise VdlibError(f"{len(folders)} models but {len(sampling)} sampling settings")
    cascade: list[CascadeModel] = []
    for folder, settings, key in zip(folders, sampling, keys, strict=True):
        model = open_model(folder, settings, key, device)
        _check_order(cascade, model)
        cascade.append(model)
    return cascade


def window_plan(total: int, window: int, context: int) -> list[tuple[int, int]]:
    """(first frame, frames given as context) of each window covering ``total`` frames.

    Windows hold ``min(window, total)`` frames; each after the first starts ``context`` frames before
    the end of what is made, and the last is moved back so it ends exactly at ``total``.
    """
    length = min(window, total)
    plan = [(0, 0)]
    done = length
    while done < total:
        start = min(done - context, total - length)
        plan.append((start, done - start))
        done = start + length
    return plan


@dataclass
class StageOutput:
    """One model's frames for a batch of videos, in [-1, 1], and what they cost."""

    clip: torch.Tensor  # (B, 3, K, H, W)
    borders: list[int]  # chained: first new frame of each later window; joint: where a window starts or ends
    evaluations: int  # network evaluations per video
    seconds: float  # for the whole batch

    def video(self, i: int) -> StageOutput:
        """The ``i``-th video's frames, with its share of the batch's time."""
        share = self.seconds / len(self.clip)
        return StageOutput(self.clip[i : i + 1], self.borders, self.evaluations, share)


class Windows:
    """Frames ``starts[i]`` to ``starts[i] + length`` of a clip, as one batch of windows (window-major:
    window 0 of every clip, then window 1...), and back. Merging weighs each window's frames by
    their distance from its ends (1, 2, ... up to the middle, then down again), so that where a
    window starts or ends, its share of a frame grows or shrinks gradually, not at once."""

    def __init__(self, starts: list[int], length: int, total: int) -> None:
        self.starts, self.length = starts, length
        position = torch.arange(length)
        self.weight = torch.minimum(position + 1, length - position).float()
        self.cover = torch.zeros(total)
        for s in starts:
            self.cover[s : s + length] += self.weight

    def split(self, tensor: torch.Tensor, dim: int) -> torch.Tensor:
        """(B, ..., total along ``dim``, ...) → (W*B, ..., length, ...)."""
        return torch.cat([tensor.narrow(dim, s, self.length) for s in self.starts])

    def repeat(self, tensor: torch.Tensor) -> torch.Tensor:
        """Per-clip values (B, ...) → the same for each window (W*B, ...)."""
        return torch.cat([tensor] * len(self.starts))

    def merge(self, windows: torch.Tensor) -> torch.Tensor:
        """(W*B, C, length, H, W) → (B, C, total, H, W): each frame the weighted mean of the windows
        that hold it."""
        if len(self.starts) == 1:
            return windows
        parts = windows.chunk(len(self.starts))
        shape = (*parts[0].shape[:2], len(self.cover), *parts[0].shape[3:])
        out = torch.zeros(shape, device=windows.device)
        weight = self.weight.to(out.device)[:, None, None]
        for s, part in zip(self.starts, parts, strict=True):
            out[:, :, s : s + self.length] += part.to(out.dtype) * weight
        return (out / self.cover.to(out.device)[:, None, None]).to(windows.dtype)


@torch.no_grad()
def _window_inputs(
    model: CascadeModel, context: torch.Tensor, given: int, lowres: torch.Tensor | None,
    gens: list[torch.Generator], device: torch.device,
) -> tuple[dict[str, Any], torch.Tensor | None]:  # fmt: skip
    """The network's inputs besides the noisy frames and labels: the clean leading frames and, for an
    upsampler, its low-res input (noised to its sampling level); and the low-res clip's upscale."""
    batch, total = context.shape[0], context.shape[2]
    inputs: dict[str, Any] = {}
    upscaled = None
    if model.is_upsampler:
        assert lowres is not None, "an upsampler needs the previous model's frames"
        upscaled = model.upscale(lowres, model.shape)
        level = torch.full((batch,), model.sample_aug)
        inputs = {k: v.to(device) for k, v in lowres_inputs(model.diffusion, upscaled, level, gens).items()}
    if model.autoencoder is not None:  # a latent base model: the given frames' latents
        shape = (batch, model.channels, total, *model.card.network_shape)
        context = model.to_network(context) if given else torch.zeros(shape)
    inputs["context"] = model.residual.target(context, upscaled).to(device)
    inputs["context_mask"] = (torch.arange(total) < given)[None].expand(batch, -1).to(device)
    return inputs, upscaled


def _denoiser(
    model: CascadeModel, windows: Windows, batch: int, cond: torch.Tensor | None, inputs: dict[str, Any]
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]:
    """The network over every window of a batch of ``batch`` clips: each window one item of a single
    network batch, the windows' predictions merged. Labels and inputs are split into windows once per
    batch size (2x for the labelled and null halves of guidance), not at every step."""
    frame_dim = {"context": 2, "lowres": 2, "context_mask": 1}  # aug_level: one per clip
    batched: dict[int, tuple[torch.Tensor | None, dict[str, Any]]] = {}

    def window_inputs(repeat: int) -> tuple[torch.Tensor | None, dict[str, Any]]:
        labels = None if cond is None else windows.split(torch.cat([cond] * repeat), 1)
        given_ = {
            k: windows.split(torch.cat([v] * repeat), frame_dim[k]) if k in frame_dim
            else windows.repeat(torch.cat([v] * repeat))
            for k, v in inputs.items()
        }  # fmt: skip
        if "lowres" in given_:  # the low-res clip's modulation is the same at every step
            given_["lowres_modulation"] = model.net.lowres_modulation(given_["lowres"])
        return labels, given_

    pose: dict[tuple[int, tuple[bool, ...] | None], torch.Tensor] = {}  # a skeleton's features, by labels

    def denoise(x: torch.Tensor, t: torch.Tensor, labelled: torch.Tensor | None) -> torch.Tensor:
        repeat = x.shape[0] // batch
        if repeat not in batched:
            batched[repeat] = window_inputs(repeat)
        labels, given_ = batched[repeat]
        noisy = windows.split(x, 2)
        cond_, mask = (None, None) if labelled is None else (labels, windows.repeat(labelled))
        if model.net.cfg.skeleton:  # the same at every step for the same labels
            key = (repeat, None if mask is None else tuple(mask.tolist()))
            if key not in pose:
                pose[key] = model.net.pose_features(cond_, mask, *noisy.shape[:1], *noisy.shape[2:])
            given_ = {**given_, "pose_features": pose[key]}
        out = model.net(noisy, windows.repeat(t), cond=cond_, cond_mask=mask, **given_)
        return windows.merge(out)

    return denoise


def sample_window(
    model: CascadeModel,
    context: torch.Tensor,
    given: int,
    cond: torch.Tensor | None,
    lowres: torch.Tensor | None,
    gens: list[torch.Generator],
    device: torch.device,
    starts: list[int] | None = None,
) -> tuple[torch.Tensor, int]:
    """Frames (B, 3, T, H, W) in [-1, 1] of B videos whose first ``given`` frames are the clean
    ``context`` (B, 3, T, H, W; the rest of it is ignored), with per-frame labels ``cond`` (B, T, D)
    and, for an upsampler, the previous model's frames ``lowres`` (B, 3, T, H/2, W/2). T is one
    window, or, with ``starts``, the clip that windows of the model's length starting there cover:
    they are denoised together, each frame's prediction at every step the weighted mean of its
    windows' (:class:`Windows`).
    Video b draws its noise from ``gens[b]`` alone. Returns the frames and the network evaluations
    per video."""
    batch, total = context.shape[0], context.shape[2]
    windows = Windows(starts or [0], model.window if starts else total, total)
    inputs, upscaled = _window_inputs(model, context, given, lowres, gens, device)
    denoise = _denoiser(model, windows, batch, cond, inputs)
    bound = model.residual.bound if model.autoencoder is None else float("inf")  # latents are unbounded
    result = sample(
        denoise, (batch, model.channels, total, *model.card.network_shape), model.diffusion, model.sampling,
        cond is not None, gens, device, bound,
    )  # fmt: skip
    made = model.from_network(model.residual.frames(result.clip.float().cpu(), upscaled))
    return made, result.evaluations * len(windows.starts)


@torch.no_grad()
def run_model(
    model: CascadeModel,
    index: int,
    cond: np.ndarray | None,
    frames: int,
    seeds: list[int],
    device: torch.device,
    lowres: torch.Tensor | None = None,
) -> StageOutput:
    """Make ``frames`` frames of B videos at once with the cascade's ``index``-th model, window by
    window (or, with ``windows: joint``, every window together): video b from noise seeded by
    ``seeds[b]`` (the same frames, up to float rounding, as it would get alone), with labels ``cond``
    (B, K, D) and, for an upsampler, the previous model's clips ``lowres`` (B, 3, K, H/2, W/2)."""
    tick = time.perf_counter()
    plan = window_plan(frames, model.window, model.sampling.context)
    length = min(model.window, frames)
    cond_t = None
    if cond is not None and model.labels.conditioned:
        cond_t = torch.from_numpy(np.asarray(cond, dtype=np.float32)).to(device)
    out = torch.zeros(len(seeds), 3, frames, *model.shape)
    if device.type == "cpu":
        share_cores()  # other vdlib processes may have started or finished since the last model
    if model.sampling.windows == "joint" and len(plan) > 1:
        gens = [step_generator(seed, 0, index, Stream.WINDOW) for seed in seeds]
        starts = [start for start, _ in plan]
        made, evaluations = sample_window(model, out, 0, cond_t, lowres, gens, device, starts=starts)
        changes = set(starts[1:]) | {s + length for s in starts[:-1]}  # where a window starts or ends
        return StageOutput(made, sorted(changes), evaluations, time.perf_counter() - tick)
    evaluations = 0
    for w, (start, given) in enumerate(plan):
        span = slice(start, start + length)
        if device.type == "cpu" and w:
            share_cores()
        made, cost = sample_window(
            model, out[:, :, span], given, None if cond_t is None else cond_t[:, span],
            None if lowres is None else lowres[:, :, span],
            [step_generator(seed, w, index, Stream.WINDOW) for seed in seeds], device,
        )  # fmt: skip
        out[:, :, start + given : start + length] = made[:, :, given:]
        evaluations += cost
    borders = [start + given for start, given in plan[1:]]
    return StageOutput(out, borders, evaluations, time.perf_counter() - tick)
