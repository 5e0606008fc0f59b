"""Every random draw of training and sampling comes from a named stream of one generator family, so a
run is a pure function of its seed: a resumed run sees the draws an uninterrupted one would, each DDP
rank draws its own, and two streams never share numbers.

A generator is seeded with ``((seed * 1_000_003 + step) * 1009 + rank) * 17 + stream``: ``step`` is
the training step (sampling: the window), ``rank`` the DDP rank (sampling: the model's place in the
cascade). Nothing in vdlib draws from torch's global generator after the initial weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

import torch

# One generator for a whole batch, or one per clip (a clip's draws then do not depend on its batch).
Generators = torch.Generator | Sequence[torch.Generator] | None


class Stream(IntEnum):
    """What each stream draws. The numbers are part of the determinism contract: never reuse one."""

    BATCH = 0  # a training batch: which clip windows, independent frames, crop offsets, flips
    NOISE = 1  # a training step: noise levels, noise, label dropout, context frames, low-res augmentation
    # 2 drew the training sample GIFs' noise; they now sample as rendering does (WINDOW)
    VALIDATION = 3  # validation: the fixed noise (and low-res augmentation noise) of the held-out clips
    DROPOUT = 4  # a training step: the network's dropout masks (seeds a generator on the model's device)
    WINDOW = 5  # sampling one window: its starting noise, sampler noise and low-res augmentation


def step_generator(seed: int, step: int, rank: int = 0, stream: Stream = Stream.BATCH) -> torch.Generator:
    """The CPU generator of one (seed, step, rank, stream)."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + step) * 1009 + rank) * 17 + int(stream))


def device_generator(
    seed: int, step: int, rank: int, stream: Stream, device: torch.device
) -> torch.Generator:
    """A generator on ``device`` seeded from the CPU generator of (seed, step, rank, stream), for draws
    made on an accelerator (dropout masks)."""
    drawn = int(torch.randint(2**62, (1,), generator=step_generator(seed, step, rank, stream)))
    return torch.Generator(device=device).manual_seed(drawn)


def per_clip(generator: Generators, batch: int) -> list[torch.Generator] | None:
    """``generator`` as the list of one generator per clip of a ``batch``, or None when it is a single
    generator (or None)."""
    if generator is None or isinstance(generator, torch.Generator):
        return None
    generators = list(generator)
    if len(generators) != batch:
        raise ValueError(f"{len(generators)} generators for a batch of {batch}")
    return generators


def randn(shape: Sequence[int], generator: Generators) -> torch.Tensor:
    """Standard Gaussian noise of ``shape`` (B, ...): one draw from a single generator, or clip b's
    from the b-th of B generators (the same numbers a batch of that clip alone would get)."""
    generators = per_clip(generator, shape[0])
    if generators is None:
        return torch.randn(tuple(shape), generator=generator)
    return torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in generators])
