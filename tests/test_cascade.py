"""The cascade: windows, fresh noise per window, context, upsampler conditioning, model order, and
training samples made the way rendering makes videos."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from tests.conftest import CPU, cascade, circle_red
from vdlib.cascade import load_cascade, open_model, run_model, window_plan
from vdlib.common import VdlibError
from vdlib.config import SamplingConfig


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


@pytest.mark.parametrize("index", [0, 1])
def test_videos_sampled_together_are_the_videos_sampled_alone(models, index):
    """A batch of videos (other labels, other seeds) gives each the frames it gets alone, up to float
    rounding: a video does not depend on what it is rendered with."""
    model = cascade(models, base=SamplingConfig(steps=3, guidance=2.0, context=2))[index]
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
    from vdlib.diffusion import guided

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
    from vdlib.cascade import to_uint8
    from vdlib.clips import resize_clip, to_model_range
    from vdlib.train import SAMPLE_SETTINGS, JobData
    from vdlib.video import write_gif

    model = open_model(models / name, SAMPLE_SETTINGS, "samples", CPU)
    data = JobData.for_model(models / "frames", models / "labels.parquet", model)
    row = data.windows.rows(data.windows.val_starts(1))[0]
    stored = to_model_range(data.store.frames[row])[None]
    lowres = resize_clip(stored, model.size // 2) if model.is_upsampler else None
    made = run_model(model, 0, data.labels.cond[row][None], len(row), [int(model.meta["seed"])], CPU, lowres)
    side_by_side = to_uint8(torch.cat([resize_clip(stored, model.size), made.clip], dim=-1))
    rendered = iio.imread(write_gif(side_by_side, tmp_path / "rendered.gif", fps=5))
    samples = sorted((models / f"reports_{name}" / "samples").glob("step_*.gif"))
    assert samples[-1].name == "step_000020.gif"
    np.testing.assert_array_equal(iio.imread(samples[-1]), rendered)
