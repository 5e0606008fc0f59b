"""`vdlib init`'s choices: frame shape, clip length, guidance, augmentation, and the steps that fill
the minutes."""

import re

import pytest

from tests.conftest import make_testsrc
from vdlib.config import BASE_SAMPLING, clip_frames
from vdlib.init import (
    AUGMENT_VIEWS,
    AUGMENT_ZOOM,
    CLIP_FRAMES,
    GUIDANCE,
    LATENT_KINDS,
    LATENT_SHARES,
    MOVING_CHANGE,
    MOVING_SHARED_NOISE,
    SHARES,
    TABLE_SHARES,
    Probed,
    choose_augmentation,
    choose_shape,
    choose_shared_noise,
    plan_params,
    write_params,
)


def test_the_frame_shape_follows_the_probed_videos():
    wide = Probed("a.mp4", 20.0, 25.0, 16 / 9)
    assert choose_shape([wide], 128)[0] == (128, 224)
    assert choose_shape([wide, Probed("https://example.org/v", None, None)], 128)[0] == (128, 224)
    shape, why = choose_shape([Probed("https://example.org/v", None, None)], 128)
    assert shape == (128, 128) and "unknown until fetched" in why


@pytest.mark.parametrize(("kind", "flip"), [("none", True), ("pose", True), ("timestamps", False)])
def test_augmentation_only_when_each_window_would_be_seen_often(kind, flip):
    base = {"steps": 1000, "batch": 2, "zoom": 0.0, "flip": False}
    assert choose_augmentation(base, 2000 // AUGMENT_VIEWS, kind).startswith("no augmentation")
    assert base["zoom"] == 0.0 and base["flip"] is False
    assert "unknown until fetched" in choose_augmentation(base, None, kind)
    why = choose_augmentation(base, 2000 // AUGMENT_VIEWS - 1, kind)
    assert base["zoom"] == AUGMENT_ZOOM and base["flip"] is flip
    assert why.startswith("base.zoom = 0.15") and ("base.flip = true" in why) is flip


def test_init_keeps_a_wide_clips_shape_unless_asked_for_squares(tmp_path):
    clip = make_testsrc(tmp_path / "wide.mp4", 320, 136, 2)
    params, reasons = plan_params([str(clip)], ["none"], 1.0, probe_speed=False)
    assert params["extract"]["aspect"] == "keep"
    assert any(r.startswith("extract.aspect = keep: 128x304") for r in reasons)
    squares, reasons = plan_params([str(clip)], ["none"], 1.0, probe_speed=False, aspect="pad")
    assert squares["extract"]["aspect"] == "pad"
    assert "extract.aspect = pad: 128x128 squares, as asked" in reasons


@pytest.mark.parametrize("latent", [True, False])
def test_moving_footage_gets_less_shared_starting_noise(tmp_path, latent):
    """Videos whose frames change by at least MOVING_CHANGE grey levels from one base frame to the next
    are sampled from less shared starting noise than the shipped share, whichever base model they
    get; a still picture keeps the shipped share; the reason quotes the measured change."""
    moving = make_testsrc(tmp_path / "moving.mp4", 160, 120, 3)
    still = make_testsrc(tmp_path / "still.mp4", 160, 120, 3, pattern="color")
    for clip, expected in ((moving, MOVING_SHARED_NOISE), (still, BASE_SAMPLING.shared_noise)):
        params, reasons = plan_params([str(clip)], ["none"], 1.0, probe_speed=False, latent=latent)
        assert params["render"]["base"]["shared_noise"] == expected
        said = next(r for r in reasons if r.startswith("render.base.shared_noise"))
        change = float(re.search(r"change by ([0-9.]+) grey levels", said)[1])
        assert (change >= MOVING_CHANGE) is (clip == moving) and (change == 0.0) is (clip == still)
    unknown = {"shared_noise": BASE_SAMPLING.shared_noise}
    assert "unknown until fetched" in choose_shared_noise(unknown, None)
    assert unknown["shared_noise"] == BASE_SAMPLING.shared_noise


@pytest.mark.parametrize("labels", [["none"], ["pose"], ["labels/tables/demo.csv"]])
def test_labelled_videos_are_guided_on_every_step(tmp_path, labels):
    clip = make_testsrc(tmp_path / "clip.mp4", 160, 120, 2)
    params, reasons = plan_params([str(clip)], labels, 1.0, probe_speed=False)
    sampling = params["render"]["base"]
    kind = params["labels"]["kind"]
    if kind == "none":
        assert (sampling["guidance"], sampling["guidance_share"]) == (
            BASE_SAMPLING.guidance,
            BASE_SAMPLING.guidance_share,
        )
    else:
        assert (sampling["guidance"], sampling["guidance_share"]) == (GUIDANCE[kind], 1.0)
        assert any(r.startswith(f"render.base.guidance = {GUIDANCE[kind]:g} on every step") for r in reasons)


def test_timestamp_labels_get_clips_of_clip_frames_frames(tmp_path):
    """Table labels are learnt late, so init gives their base model shorter clips (cheaper steps);
    other labels keep about 2 s of motion per clip."""
    clip = make_testsrc(tmp_path / "clip.mp4", 160, 120, 4)
    frames = {}
    for labels in (["none"], ["labels/tables/demo.csv"]):
        params, _ = plan_params([str(clip)], labels, 1.0, probe_speed=False)
        base = params["base"]
        frames[params["labels"]["kind"]] = (base["window"], clip_frames(base["window"], base["skip"]))
    assert frames["timestamps"][1] == CLIP_FRAMES
    assert frames["none"][0] > frames["timestamps"][0]


def test_the_minutes_are_split_by_measured_step_times_and_both_upsamplers_train_alike(tmp_path):
    """The planned steps times the probe's seconds per step fill the minutes asked for, with the
    shares of :data:`SHARES`; the 128 px upsampler trains as many steps as the 64 px one, but a
    quarter of them with timestamp tables."""
    clip = make_testsrc(tmp_path / "clip.mp4", 160, 120, 4)
    params, reasons = plan_params([str(clip)], ["none"], 2.0, latent=False)
    planned = next(r for r in reasons if r.startswith("base.steps = "))
    base_s, up_s = (float(s) for s in re.findall(r"\(([0-9.]+) s/step", planned))
    base, upsampler = params["base"], params["upsampler"]
    assert upsampler["fitted_steps"] is None
    assert base["steps"] * base_s == pytest.approx(120 * SHARES["base"], rel=0.02)
    assert upsampler["steps"] * up_s == pytest.approx(120 * SHARES["upsampler"], rel=0.02)
    assert base["warmup"] <= base["steps"] // 4 and upsampler["warmup"] <= upsampler["steps"] // 4
    tables, _ = plan_params([str(clip)], ["labels/tables/demo.csv"], 2.0)
    fitted = tables["upsampler"]["fitted_steps"]
    assert fitted == int(tables["upsampler"]["steps"] * TABLE_SHARES["fitted"])
    assert tables["upsampler"]["warmup"] <= fitted // 4


def test_a_latent_base_model_and_its_autoencoder_fill_the_minutes(tmp_path):
    """With ``--latent`` the base model diffuses an autoencoder's latents of frames at the stored size
    and renders alone; the autoencoder's and the base model's measured steps fill their shares of the
    minutes (the base model's less the time to encode the frames), and the params pass the check."""
    clip = make_testsrc(tmp_path / "clip.mp4", 160, 120, 4)
    cascade = plan_params([str(clip)], ["pose"], 2.0, probe_speed=False)[0]
    assert cascade["autoencoder"]["steps"] == 0
    params, reasons = plan_params([str(clip)], ["pose"], 2.0, latent=True)
    planned = next(r for r in reasons if r.startswith("autoencoder.steps = "))
    coder_s, base_s = (float(s) for s in re.findall(r"\(([0-9.]+) s/step", planned))
    encoding = float(re.search(r"after ([0-9.]+) s encoding", planned)[1])
    assert params["autoencoder"]["steps"] * coder_s == pytest.approx(
        120 * LATENT_SHARES["autoencoder"], rel=0.02
    )
    assert params["base"]["steps"] * base_s + encoding == pytest.approx(120 * LATENT_SHARES["base"], rel=0.02)
    assert "on 32x44 latents" in planned  # 128x176 frames, latents 4 times smaller
    assert params["base"]["resolution"] == params["extract"]["resolution"] == 128
    assert (params["upsampler"]["steps"], params["render"]["cascade"]) == (0, 1)
    assert params["base"]["flip"] is False and params["base"]["zoom"] == 0.0
    write_params(params, reasons, tmp_path / "params.yaml")  # validated as the check stage does


@pytest.mark.parametrize("labels", [["none"], ["pose"], ["labels/tables/demo.csv"]])
def test_unlabelled_videos_get_a_latent_base_model_unless_asked_otherwise(tmp_path, labels):
    """Without --latent or --no-latent the label kind decides (a latent base model for
    :data:`LATENT_KINDS`); either flag overrides it, and the reasons say which it was."""
    clip = make_testsrc(tmp_path / "clip.mp4", 160, 120, 2)

    def latent(asked):
        params, reasons = plan_params([str(clip)], labels, 1.0, probe_speed=False, latent=asked)
        said = [r for r in reasons if "--latent" in r or "--no-latent" in r]
        assert len(said) == 1 and ("as asked" in said[0]) is (asked is not None)
        assert ("latents of an autoencoder" in said[0]) is (params["upsampler"]["steps"] == 0)
        return params["upsampler"]["steps"] == 0 and params["render"]["cascade"] == 1

    kind = plan_params([str(clip)], labels, 1.0, probe_speed=False)[0]["labels"]["kind"]
    assert latent(None) is (kind in LATENT_KINDS) and (kind == "none") is (kind in LATENT_KINDS)
    assert latent(True) is True and latent(False) is False
