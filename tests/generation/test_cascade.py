"""The cascade: windows, fresh noise per window, context, upsampler conditioning, model order, and
training samples made the way rendering makes videos."""

from dataclasses import replace

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from tests.conftest import CPU, cascade, circle_red
from vdlib.core.common import VdlibError
from vdlib.generation.cascade import load_cascade, open_model, run_model, window_plan
from vdlib.models.schedule import SamplingConfig


def test_window_plan_covers_k_frames_with_context():
    assert window_plan(16, 8, 4) == [(0, 0), (4, 4), (8, 4)]
    assert window_plan(20, 8, 0) == [(0, 0), (8, 0), (12, 4)]  # the last window ends exactly at K
    assert window_plan(5, 8, 4) == [(0, 0)]  # shorter than a window: one short window
    assert window_plan(8, 8, 2) == [(0, 0)]
    for total, window, context in ((37, 8, 3), (9, 4, 1), (100, 16, 15)):
        plan = window_plan(total, window, context)
        made = np.zeros(total, int)
        for start, given in plan:
            assert given < window and start + window <= total
            made[start + given : start + window] += 1
        assert (made == 1).all()  # every frame is made exactly once


def test_each_window_draws_fresh_noise(models):
    """Without context, two windows with the same labels would be identical if noise were reused."""
    base = cascade(models, base=SamplingConfig(steps=3, context=0))[0]
    out = run_model(base, 0, circle_red(models, 8)[None], 8, [0], CPU)
    assert out.borders == [4]
    first, second = out.clip[:, :, :4], out.clip[:, :, 4:]
    assert (first - second).abs().mean() > 0.05


def test_later_windows_continue_from_the_previous_one(models):
    """With context, the first window is unchanged and later frames depend on it."""
    cond = circle_red(models, 10)[None]
    free = run_model(cascade(models, base=SamplingConfig(steps=3, context=0))[0], 0, cond, 10, [0], CPU)
    linked = run_model(cascade(models, base=SamplingConfig(steps=3, context=2))[0], 0, cond, 10, [0], CPU)
    assert torch.equal(free.clip[:, :, :4], linked.clip[:, :, :4])
    assert linked.borders == [4, 6, 8]
    assert not torch.equal(free.clip[:, :, 4:], linked.clip[:, :, 4:])


def test_joint_windows_are_denoised_together(models):
    """With ``windows: joint`` the windows share their overlapping frames at every step: the first
    frames follow the labels of the last window too (with chained windows they cannot), and the
    clip costs the network evaluations of its windows."""
    from vdlib.generation.conditions import parse_labels

    settings = SamplingConfig(steps=3, context=2, windows="joint")
    base = cascade(models, base=settings)[0]
    cond = circle_red(models, 10)[None]
    other = cond.copy()
    other[:, 6:] = parse_labels("shape=square,colour=blue", base.labels)
    joint, joint_other = (run_model(base, 0, c, 10, [0], CPU) for c in (cond, other))
    assert joint.clip.shape == (1, 3, 10, 16, 16)
    assert joint.borders == [2, 4, 6, 8]  # windows 0-3, 2-5, 4-7, 6-9 start or end there
    # Frames 0-1 lie in window 0 alone; the labels of frames 6-9 reach them through the overlaps (the
    # tiny model reads its labels weakly, so by little, but only the labels differ between the runs).
    assert not torch.equal(joint.clip[:, :, :2], joint_other.clip[:, :, :2])
    chain = cascade(models, base=replace(settings, windows="chain"))[0]
    chained, chained_other = (run_model(chain, 0, c, 10, [0], CPU) for c in (cond, other))
    assert torch.equal(chained.clip[:, :, :4], chained_other.clip[:, :, :4])
    assert joint.evaluations == chained.evaluations == 4 * 3  # 4 windows of 3 steps, unguided


def test_shared_starting_noise_makes_a_videos_frames_alike(models):
    """``shared_noise`` at sampling: the frames of a video start from partly common noise, so they
    differ less from one another; 0 and unset (the tiny model trained with independent noise) agree."""
    cond = circle_red(models, 8)[None]
    settings = SamplingConfig(steps=3, context=2, windows="joint")

    def frame_change(share):
        base = cascade(models, base=replace(settings, shared_noise=share))[0]
        clip = run_model(base, 0, cond, 8, [0], CPU).clip
        return clip, (clip[:, :, 1:] - clip[:, :, :-1]).abs().mean().item()

    (unset, change), (zero, _) = frame_change(None), frame_change(0.0)
    assert torch.equal(unset, zero)
    assert frame_change(0.8)[1] < 0.6 * change


def test_window_frames_sets_the_window_at_sampling(models):
    """``window_frames`` makes longer (or shorter) windows than the model trained on: a 10-frame video
    of a model trained on 4-frame clips comes out of one window, with no borders, for the network
    evaluations of one window; too short a window is refused when the params are read."""
    cond = circle_red(models, 10)[None]
    settings = SamplingConfig(steps=3, context=2, windows="joint")
    trained = run_model(cascade(models, base=settings)[0], 0, cond, 10, [0], CPU)
    whole = run_model(cascade(models, base=replace(settings, window_frames=10))[0], 0, cond, 10, [0], CPU)
    assert trained.borders and not whole.borders
    assert whole.evaluations == 3 and trained.evaluations == 4 * 3
    assert whole.clip.shape == trained.clip.shape and not torch.equal(whole.clip, trained.clip)
    with pytest.raises(VdlibError, match=r"render.base.window_frames: expected .* >= 2, got 1"):
        replace(settings, window_frames=1).validate("params.yaml", "render.base")


def test_temperature_zero_starts_every_seed_from_the_noise_mean(models):
    """``temperature`` scales the starting noise: at 0 every video starts from its mean, zero, so a
    deterministic sampler makes the same frames whatever the seed; at 1 seeds differ, and the two
    differ from each other; a negative scale is refused when the params are read."""
    cond = circle_red(models, 4)[None]
    settings = SamplingConfig(steps=1, context=0)

    def make(temperature: float, seed: int) -> torch.Tensor:
        base = cascade(models, base=replace(settings, temperature=temperature))[0]
        return run_model(base, 0, cond, 4, [seed], CPU).clip

    assert torch.equal(make(0.0, 0), make(0.0, 1))
    assert not torch.equal(make(1.0, 0), make(1.0, 1))
    assert (make(0.0, 0) - make(1.0, 0)).abs().mean() > 0.01
    with pytest.raises(VdlibError, match=r"render.base.temperature: expected a scale >= 0 .*, got -0.5"):
        replace(settings, temperature=-0.5).validate("params.yaml", "render.base")


def test_windows_split_and_merge():
    """Windows of a clip as one batch and back: the weighted mean over the windows that hold a frame,
    each window's share rising and falling gradually."""
    from vdlib.generation.cascade import Windows

    windows = Windows([0, 2, 4], 4, 8)
    clip = torch.arange(2 * 8, dtype=torch.float32).reshape(2, 1, 8, 1, 1)
    split = windows.split(clip, 2)
    assert split.shape == (6, 1, 4, 1, 1)
    assert torch.equal(split[3, 0, :, 0, 0], clip[1, 0, 2:6, 0, 0])  # window 1 of clip 1
    assert torch.equal(windows.merge(split), clip)
    assert windows.repeat(torch.tensor([5, 6])).tolist() == [5, 6] * 3
    ones = torch.ones(6, 1, 4, 1, 1)
    ones[2:4] = 4.0  # window 1 (frames 2-5) says 4, the others 1: weighed 1, 2, 2, 1 in each window
    assert windows.merge(ones)[0, 0, :, 0, 0].tolist() == [1, 1, 2, 3, 3, 2, 1, 1]


def test_upsampler_is_conditioned_on_the_previous_models_output(models):
    up = cascade(models)[1]
    gen = torch.Generator().manual_seed(0)
    low_a = torch.rand(1, 3, 4, 16, 16, generator=gen) * 2 - 1
    low_b = -low_a
    a = run_model(up, 1, None, 4, [0], CPU, lowres=low_a).clip
    b = run_model(up, 1, None, 4, [0], CPU, lowres=low_b).clip
    assert a.shape == (1, 3, 4, 32, 32)
    # Each output follows its own low-res input (residual over the bilinear upscale).
    small_a = torch.nn.functional.avg_pool3d(a, (1, 2, 2))
    assert (small_a - low_a).abs().mean() < (small_a - low_b).abs().mean() / 2
    assert not torch.equal(a, b)


@pytest.mark.parametrize(("index", "windows"), [(0, "chain"), (1, "chain"), (0, "joint")])
def test_videos_sampled_together_are_the_videos_sampled_alone(models, index, windows):
    """A batch of videos (other labels, other seeds) gives each the frames it gets alone, up to float
    rounding: a video does not depend on what it is rendered with."""
    settings = SamplingConfig(steps=3, guidance=2.0, context=2, windows=windows)
    model = cascade(models, base=settings)[index]
    cond = np.stack([circle_red(models, 6), np.roll(circle_red(models, 6), 1, axis=1)])
    lowres = None
    if model.is_upsampler:
        lowres = torch.rand(2, 3, 6, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    together = run_model(model, index, cond, 6, [0, 7], CPU, lowres)
    assert together.clip.shape[0] == 2
    for i, seed in enumerate([0, 7]):
        low = None if lowres is None else lowres[i : i + 1]
        alone = run_model(model, index, cond[i : i + 1], 6, [seed], CPU, low)
        torch.testing.assert_close(together.clip[i : i + 1], alone.clip, atol=2e-3, rtol=0)
        assert together.evaluations == alone.evaluations
    assert (together.clip[0] - together.clip[1]).abs().mean() > 0.05  # and they are different videos


def test_guidance_in_one_batch_equals_the_two_passes_it_replaces(models):
    """The labelled and null halves of one guided batch are what two separate network passes give."""
    from vdlib.models.diffusion import guided

    net = cascade(models)[0].net
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 16, 16, generator=gen)
    t = torch.tensor([300, 700])
    cond = torch.from_numpy(circle_red(models, 4)).float()[None].repeat(2, 1, 1)
    context = {"context": torch.zeros_like(x), "context_mask": torch.zeros(2, 4, dtype=torch.bool)}

    def denoise(x_, t_, labelled):
        repeat = x_.shape[0] // 2
        given = {k: torch.cat([v] * repeat) for k, v in context.items()}
        return net(x_, t_, cond=torch.cat([cond] * repeat), cond_mask=labelled, **given)

    with torch.no_grad():
        labelled, null = net(x, t, cond=cond, **context), net(x, t, cond=None, **context)
        together = guided(denoise, 3.0, True)(x, t)
    torch.testing.assert_close(together, null + 3.0 * (labelled - null), atol=1e-5, rtol=1e-5)
    assert (labelled - null).abs().max() > 1e-4  # the labels do change the prediction


def test_cascade_order_is_checked(models):
    settings = [SamplingConfig(), SamplingConfig()]
    with pytest.raises(VdlibError, match="the first model must be a base model"):
        load_cascade([models / "upsampler_32", models / "base"], settings, ["a", "b"], CPU)
    with pytest.raises(VdlibError, match="expected an upsampler after"):
        load_cascade([models / "base", models / "base"], settings, ["a", "b"], CPU)
    with pytest.raises(VdlibError, match=r"render.base.context: expected 0 to 3 .* got 4"):
        open_model(models / "base", SamplingConfig(context=4), "render.base", CPU)


@pytest.mark.parametrize("name", ["base", "upsampler_32"])
def test_training_samples_are_made_as_rendering_makes_videos(models, name, tmp_path):
    """The last training sample GIF (real | generated) holds exactly the frames the render path makes
    from the saved model for the same held-out clip, labels, low-res input and seed."""
    from vdlib.data.video import write_gif
    from vdlib.models.upscale import half, resize_clip, to_model_range, to_uint8
    from vdlib.training.train import SAMPLE_SETTINGS, JobData

    model = open_model(models / name, SAMPLE_SETTINGS, "samples", CPU)
    data = JobData.for_model(models / "frames", models / "labels.parquet", model)
    row = data.windows.rows(data.windows.val_starts(1))[0]
    stored = to_model_range(data.store.frames[row])[None]
    lowres = resize_clip(stored, half(model.shape)) if model.is_upsampler else None
    made = run_model(model, 0, data.labels.cond[row][None], len(row), [model.card.seed], CPU, lowres)
    side_by_side = to_uint8(torch.cat([resize_clip(stored, model.shape), made.clip], dim=-1))
    rendered = iio.imread(write_gif(side_by_side, tmp_path / "rendered.gif", fps=5))
    samples = sorted((models / f"reports_{name}" / "samples").glob("step_*.gif"))
    assert samples[-1].name == "step_000020.gif"
    np.testing.assert_array_equal(iio.imread(samples[-1]), rendered)


def test_an_upsampler_samples_with_the_upscale_it_was_fitted_with(models):
    """``upsampler.upscale: fitted`` saves its filter (4 pixel phases of 6x6 taps and a bias) in the
    model's config.json, and the cascade brings the low-res input up with exactly that filter."""
    import json

    from vdlib.models.upscale import Upscale

    meta = json.loads((models / "upsampler_32" / "config.json").read_text())
    assert len(meta["upscale"]) == 4 and {len(row) for row in meta["upscale"]} == {37}
    upsampler = cascade(models)[1]
    assert upsampler.upscale == Upscale.from_rows(meta["upscale"]) and upsampler.upscale.weights is not None
