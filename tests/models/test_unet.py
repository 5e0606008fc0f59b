"""The 3D U-Net: the original project's mistakes pinned down, and save/load."""

import pytest
import torch

from tests.conftest import tiny_unet
from vdlib.models.unet import UNet3D

TINY = tiny_unet()


def randomize(model: UNet3D, seed: int = 0) -> UNet3D:
    """Give zero-initialised output layers weights, as training would, so every path matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


def test_output_shape_and_size_check():
    model = UNet3D(TINY)
    x = torch.randn(2, 3, 5, 16, 16)
    assert model(x, torch.tensor([3, 700])).shape == x.shape
    with pytest.raises(ValueError, match=r"multiple of 2"):
        model(torch.randn(1, 3, 4, 15, 15), torch.tensor([1]))


def test_frames_are_told_apart_without_labels():
    """Permuting the input frames must not just permute the output (the original project's model
    failed this)."""
    model = randomize(UNet3D(TINY))
    x = torch.randn(1, 3, 6, 16, 16)
    t = torch.tensor([500])
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        out = model(x, t)
        out_perm = model(x[:, :, perm], t)
    assert (out_perm - out[:, :, perm]).abs().max() > 1e-3
    # Identical input frames still get different outputs: position is known.
    same = x[:, :, :1].expand(-1, -1, 6, -1, -1).contiguous()
    with torch.no_grad():
        out_same = model(same, t)
    assert (out_same[:, :, 0] - out_same[:, :, 3]).abs().max() > 1e-3


@pytest.mark.parametrize("levels", [None, (1,)], ids=["every level", "not at full resolution"])
def test_frames_interact_through_time(levels):
    """Changing one frame changes the output of other frames (temporal attention is wired in), also
    when the full-resolution level has none (the lower levels and the middle still mix frames)."""
    model = randomize(UNet3D(tiny_unet(temporal_attn_levels=levels)))
    x = torch.randn(1, 3, 4, 16, 16)
    y = x.clone()
    y[:, :, 3] += 1.0
    with torch.no_grad():
        a, b = model(x, torch.tensor([200])), model(y, torch.tensor([200]))
    assert (a[:, :, 0] - b[:, :, 0]).abs().max() > 1e-4


@pytest.mark.parametrize(
    ("temporal_conv", "levels"), [(False, None), (True, None), (True, (1,))],
    ids=["attention", "attention+conv", "conv at full resolution"],
)  # fmt: skip
def test_independent_frames_do_not_see_each_other(temporal_conv, levels):
    """A clip marked independent (joint image-video training) is a batch of unrelated images: changing
    one frame changes no other frame's output, while the video clip beside it still mixes frames."""
    model = randomize(UNet3D(tiny_unet(temporal_conv=temporal_conv, temporal_attn_levels=levels)))
    x = torch.randn(2, 3, 4, 16, 16)
    y = x.clone()
    y[:, :, 3] += 1.0
    independent = torch.tensor([True, False])
    t = torch.tensor([200, 200])
    with torch.no_grad():
        a, b = model(x, t, independent=independent), model(y, t, independent=independent)
        alone = model(x[:1, :, :1], t[:1])  # frame 0 of the independent clip, as a 1-frame clip
    assert torch.equal(a[0, :, :3], b[0, :, :3])
    assert (a[1, :, 0] - b[1, :, 0]).abs().max() > 1e-4
    # Positions still differ by their frame embedding, so compare frame 0 with a 1-frame clip.
    assert torch.allclose(a[:1, :, :1], alone, atol=1e-5)


def test_temporal_attention_levels():
    """``temporal_attn_levels`` leaves the other levels without temporal attention (fewer weights and
    less work); a saved config from before the field existed means every level."""
    full, lean = UNet3D(TINY), UNet3D(tiny_unet(temporal_attn_levels=(1,)))
    assert all(level.time_attn is not None for level in [*full.down, full.mid, *full.up])
    assert lean.down[0].time_attn is None and lean.up[-1].time_attn is None
    assert lean.down[1].time_attn is not None and lean.mid.time_attn is not None
    assert sum(p.numel() for p in lean.parameters()) < sum(p.numel() for p in full.parameters())
    assert tiny_unet().attention(0) == (False, True)


def test_bf16_autocast_on_cpu_stays_close_to_fp32():
    """Mixed precision (train.precision) changes the output by bf16 rounding only."""
    from vdlib.device import autocast

    model = randomize(UNet3D(tiny_unet(cond_dim=3)))
    x = torch.randn(2, 3, 4, 16, 16)
    kwargs = {"cond": torch.rand(2, 4, 3), "context": torch.randn_like(x),
              "context_mask": torch.tensor([[True, False, False, False]] * 2)}  # fmt: skip
    with torch.no_grad():
        full = model(x, torch.tensor([50, 800]), **kwargs)
        with autocast(torch.device("cpu"), torch.bfloat16):
            mixed = model(x, torch.tensor([50, 800]), **kwargs)
    assert mixed.dtype == torch.bfloat16
    error = (mixed.float() - full).abs().mean() / full.abs().mean()
    assert 0 < error < 0.05


def test_a_patched_model_runs_its_levels_at_a_fraction_of_the_frame():
    """With ``patch`` 2 the network reads 2 x 2 pixel blocks: its first level works at half the frame's
    side, its output has the frame's size, and sizes must be multiples of patch x 2^(levels-1)."""
    model = UNet3D(tiny_unet(patch=2))
    seen = []
    model.down[0].register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[-2:])))
    x = torch.randn(1, 3, 4, 32, 24)
    assert model(x, torch.tensor([3])).shape == x.shape
    assert seen == [(16, 12)]
    with pytest.raises(ValueError, match=r"multiple of 4"):
        model(torch.randn(1, 3, 4, 32, 30), torch.tensor([1]))


@pytest.mark.parametrize(
    ("lowres", "temporal_conv", "patch", "label_maps"),
    [(False, False, 1, False), (True, False, 1, False), (False, True, 1, False), (False, False, 2, False),
     (True, False, 2, False), (False, False, 1, True)],
    ids=["base", "upsampler", "base+temporal conv", "base patch 2", "upsampler patch 2", "base label maps"],
)  # fmt: skip
def test_every_parameter_gets_a_gradient(lowres, temporal_conv, patch, label_maps):
    """With labels and context frames (and a low-res clip), one backward pass reaches every weight;
    the original project's adaptive-norm shift never did."""
    cfg = tiny_unet(
        cond_dim=5, lowres=lowres, mapping_channels=8, temporal_conv=temporal_conv, patch=patch,
        label_maps=label_maps,
    )  # fmt: skip
    model = UNet3D(cfg)
    torch.manual_seed(0)
    with torch.no_grad():  # zero-initialised output layers would block gradients to everything behind them
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x = torch.randn(2, 3, 4, 16, 16)
    kwargs = {
        "cond": torch.rand(2, 4, 5),
        "cond_mask": torch.tensor([True, False]),  # one labelled, one null: both embeddings are used
        "context": torch.randn_like(x),
        "context_mask": torch.tensor([[True, False, False, False], [False] * 4]),
    }
    if lowres:
        kwargs.update(lowres=torch.randn_like(x), aug_level=torch.tensor([0.1, 0.2]))
    model(x, torch.tensor([10, 900]), **kwargs).square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_labels_change_the_output_and_null_is_learned():
    model = randomize(UNet3D(tiny_unet(cond_dim=3)))
    x = torch.randn(2, 3, 4, 16, 16)
    t = torch.tensor([400, 400])
    cond = torch.tensor([[1.0, 0, 0]] * 4).expand(2, 4, 3)
    with torch.no_grad():
        labelled = model(x, t, cond=cond, cond_mask=torch.tensor([True, True]))
        dropped = model(x, t, cond=cond, cond_mask=torch.tensor([False, False]))
        none = model(x, t)
        other = model(x, t, cond=torch.tensor([[0, 0, 1.0]] * 4).expand(2, 4, 3))
    assert (labelled - dropped).abs().max() > 1e-3
    assert (labelled - other).abs().max() > 1e-3
    assert torch.allclose(dropped, none)  # dropped labels = the learned null embedding = no labels


def test_per_frame_labels_reach_their_frame():
    model = randomize(UNet3D(tiny_unet(cond_dim=2)))
    x = torch.randn(1, 3, 4, 16, 16)
    a = torch.tensor([[[1.0, 0]] * 4])
    b = a.clone()
    b[0, 2] = torch.tensor([0, 1.0])
    with torch.no_grad():
        diff = (model(x, torch.tensor([300]), cond=a) - model(x, torch.tensor([300]), cond=b)).abs()
    per_frame = diff.amax(dim=(0, 1, 3, 4))
    assert per_frame.argmax() == 2


def test_context_frames_are_used():
    model = randomize(UNet3D(TINY))
    x = torch.randn(1, 3, 4, 16, 16)
    mask = torch.tensor([[True, True, False, False]])
    with torch.no_grad():
        a = model(x, torch.tensor([600]), context=torch.zeros_like(x), context_mask=mask)
        b = model(x, torch.tensor([600]), context=torch.ones_like(x), context_mask=mask)
    assert (a[:, :, 3] - b[:, :, 3]).abs().max() > 1e-4


def test_lowres_modulation_made_once_is_what_every_pass_makes():
    """A sampler makes an upsampler's low-res modulation once for all its steps: a pass given it
    predicts exactly what a pass that makes it does, and a pass given another clip's does not."""
    model = randomize(UNet3D(tiny_unet(lowres=True, mapping_channels=8))).eval()
    gen = torch.Generator().manual_seed(0)
    x, lowres, other = (torch.randn(1, 3, 3, 16, 16, generator=gen) for _ in range(3))
    modulation = model.lowres_modulation(lowres)
    assert len(modulation) == sum(1 for _ in model.res_blocks())
    assert [m[0].shape[-1] for m in modulation] == [16, 8, 8, 8, 16]  # down, middle, up: each its size
    with torch.no_grad():
        for t in (torch.tensor([900]), torch.tensor([100])):
            made = model(x, t, lowres=lowres)
            assert torch.equal(model(x, t, lowres=lowres, lowres_modulation=modulation), made)
            given_other = model(x, t, lowres=lowres, lowres_modulation=model.lowres_modulation(other))
            assert (given_other - made).abs().max() > 1e-4


def test_dropout_draws_its_masks_from_the_generator_it_is_given():
    model = randomize(UNet3D(tiny_unet(dropout=0.5))).train()
    x, t = torch.randn(1, 3, 2, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([500])
    with pytest.raises(RuntimeError, match="needs a generator"):
        model(x, t)
    outs = []
    for seed in (1, 1, 2):
        with model.dropout_generator(torch.Generator().manual_seed(seed)):
            outs.append(model(x, t))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])
    assert torch.equal(model.eval()(x, t), model(x, t))  # no dropout at evaluation


def test_keypoint_maps_peak_where_the_pose_puts_each_keypoint():
    model = UNet3D(tiny_unet(cond_dim=7, keypoint_maps=2))
    x = torch.zeros(1, 3, 2, 16, 16)
    cond = torch.zeros(1, 2, 7)
    centre = (torch.tensor([4, 12, 14, 1]) + 0.5) / 16  # pixel centres: (x, y) = columns 4, 14; rows 12, 1
    cond[0, 0, :6] = torch.tensor([centre[0], centre[1], 1.0, centre[2], centre[3], 0.5])
    cond[0, 1, :6] = torch.tensor([0.5, 0.5, 0.0, centre[2], centre[3], 1.0])  # the first keypoint not seen
    maps = model.keypoint_maps(cond, None, x)
    assert maps.shape == (1, 2, 2, 16, 16)
    peak = [divmod(int(maps[0, k, 0].argmax()), 16) for k in range(2)]
    assert peak == [(12, 4), (1, 14)]  # (row, column)
    assert maps[0, 0, 1].abs().max() == 0  # confidence 0: no map
    assert torch.allclose(maps[0, 1, 0].max() * 2, maps[0, 1, 1].max())  # weighted by confidence
    assert model.keypoint_maps(cond, torch.tensor([False]), x).abs().max() == 0  # dropped labels


def test_a_moved_keypoint_changes_the_output_and_dropped_poses_are_no_labels():
    model = randomize(UNet3D(tiny_unet(cond_dim=6, keypoint_maps=2)))
    x = torch.randn(1, 3, 4, 16, 16)
    t = torch.tensor([500])
    cond = torch.tensor([[[0.2, 0.2, 1.0, 0.8, 0.8, 1.0]] * 4])
    moved = cond.clone()
    moved[0, 1, 0] = 0.7
    with torch.no_grad():
        out = model(x, t, cond=cond, cond_mask=torch.tensor([True]))
        out_moved = model(x, t, cond=moved, cond_mask=torch.tensor([True]))
        dropped = model(x, t, cond=cond, cond_mask=torch.tensor([False]))
        none = model(x, t)
    assert (out - out_moved)[:, :, 1].abs().max() > 1e-3
    assert torch.allclose(dropped, none)


def test_the_skeleton_is_drawn_along_each_limb_and_at_each_joint():
    model = UNet3D(tiny_unet(cond_dim=9, keypoint_maps=3, skeleton=[[0, 1], [1, 2]]))
    cond = torch.zeros(1, 2, 9)
    # frame 0: a horizontal limb along row 4 from column 2 to 12, then one down column 12 to row 14
    pixel = lambda v: (v + 0.5) / 16  # noqa: E731
    cond[0, 0] = torch.tensor([pixel(2), pixel(4), 1.0, pixel(12), pixel(4), 1.0, pixel(12), pixel(14), 0.5])
    cond[0, 1, :3] = torch.tensor([pixel(8), pixel(8), 1.0])  # frame 1: one joint seen, no limb
    drawn = model.skeleton_image(cond, None, 1, 2, 16, 16)
    assert drawn.shape == (2, 2 + 3, 16, 16)  # (B F, limbs + joints, H, W)
    first = drawn[0, 0]
    assert torch.allclose(first[4, 2:13], torch.ones(11)) and first[4, 0] < 0.5 and first[10, 7] < 1e-3
    assert torch.allclose(drawn[0, 1, 4:15, 12], torch.full((11,), 0.5))  # weighted by the lower confidence
    assert divmod(int(drawn[0, 2 + 2].argmax()), 16) == (14, 12)  # the third joint's peak: row 14, column 12
    assert drawn[1, :2].abs().max() == 0 and drawn[1, 2].max() > 0.9  # an unseen end draws no limb
    assert model.skeleton_image(cond, torch.tensor([False]), 1, 2, 16, 16).abs().max() == 0  # dropped labels
    assert model.skeleton_image(None, None, 1, 2, 16, 16).shape == (2, 5, 16, 16)


def test_a_pose_encoder_starts_at_zero_and_a_moved_keypoint_then_changes_the_output():
    cfg = tiny_unet(cond_dim=6, keypoint_maps=2, skeleton=[[0, 1]])
    x, t = torch.randn(1, 3, 4, 16, 16), torch.tensor([500])
    cond = torch.tensor([[[0.2, 0.2, 1.0, 0.8, 0.8, 1.0]] * 4])
    moved = cond.clone()
    moved[0, 1, 0] = 0.7
    fresh = UNet3D(cfg)
    assert all(p.abs().max() == 0 for p in fresh.pose_encoder[-1].parameters())  # adds nothing at first
    model = randomize(fresh)
    with torch.no_grad():
        out = model(x, t, cond=cond, cond_mask=torch.tensor([True]))
        out_moved = model(x, t, cond=moved, cond_mask=torch.tensor([True]))
    assert (out - out_moved)[:, :, 1].abs().max() > 1e-3
    with torch.no_grad():  # a sampler's features made once give what the network makes itself
        features = model.pose_features(cond, torch.tensor([True]), 1, 4, 16, 16)
        given = model(x, t, cond=cond, cond_mask=torch.tensor([True]), pose_features=features)
    assert torch.equal(given, out)
    model(x, t, cond=cond, cond_mask=torch.tensor([True])).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().max() > 0 for p in model.pose_encoder.parameters())
    with pytest.raises(ValueError, match="a skeleton joins keypoints 0 to 1"):
        UNet3D(tiny_unet(cond_dim=6, keypoint_maps=2, skeleton=[[0, 2]]))


def test_label_maps_reach_the_input_and_dropped_labels_are_zeros():
    """With ``label_maps``, the labels steer the output through the input convolution alone (the
    embedding path cut off), and a dropped label is the same input as no labels."""
    model = randomize(UNet3D(tiny_unet(cond_dim=3, label_maps=True)))
    with torch.no_grad():
        for p in model.cond_mlp.parameters():
            p.zero_()
        model.null_cond.zero_()
    x, t = torch.randn(1, 3, 2, 8, 8), torch.tensor([500])
    one, other = torch.tensor([[[1.0, 0, 0]] * 2]), torch.tensor([[[0, 0, 1.0]] * 2])
    assert not torch.allclose(model(x, t, cond=one), model(x, t, cond=other))
    dropped = model(x, t, cond=one, cond_mask=torch.tensor([False]))
    assert torch.equal(dropped, model(x, t, cond=torch.zeros_like(one)))
    maps = model.label_maps(one, None, x)
    assert maps.shape == (1, 3, 2, 8, 8) and torch.equal(maps[0, :, 1, 4, 4], one[0, 1])
