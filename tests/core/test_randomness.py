"""The determinism contract: one generator per (seed, step, rank, stream), streams never overlap."""

import torch

from vdlib.core.randomness import Stream, device_generator, step_generator


def draws(gen: torch.Generator) -> torch.Tensor:
    return torch.rand(8, generator=gen)


def test_the_same_coordinates_give_the_same_numbers():
    assert torch.equal(
        draws(step_generator(3, 10, 1, Stream.NOISE)), draws(step_generator(3, 10, 1, Stream.NOISE))
    )


def test_every_coordinate_and_stream_draws_its_own_numbers():
    base = (3, 10, 1, Stream.NOISE)
    others = [(4, 10, 1, Stream.NOISE), (3, 11, 1, Stream.NOISE), (3, 10, 0, Stream.NOISE)]
    others += [(3, 10, 1, s) for s in Stream if s is not Stream.NOISE]
    seen = {tuple(draws(step_generator(*base)).tolist())}
    for coordinates in others:
        seen.add(tuple(draws(step_generator(*coordinates)).tolist()))
    assert len(seen) == len(others) + 1


def test_stream_numbers_are_unique_and_fixed():
    assert len({int(s) for s in Stream}) == len(Stream)
    assert (Stream.BATCH, Stream.NOISE, Stream.VALIDATION, Stream.DROPOUT, Stream.WINDOW) == (0, 1, 3, 4, 5)


def test_device_generators_are_seeded_from_their_stream():
    cpu = torch.device("cpu")
    a = device_generator(0, 5, 0, Stream.DROPOUT, cpu)
    b = device_generator(0, 5, 0, Stream.DROPOUT, cpu)
    c = device_generator(0, 6, 0, Stream.DROPOUT, cpu)
    assert torch.equal(draws(a), draws(b)) and not torch.equal(draws(b), draws(c))
