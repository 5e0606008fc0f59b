"""The model card: what a model folder says about itself, written and read in one place."""

import json
import pickle

import pytest
import torch

from tests.conftest import tiny_unet
from tests.models.test_unet import TINY, randomize
from vdlib.core.common import VdlibError
from vdlib.models.card import ModelCard, load_model, save_model
from vdlib.models.schedule import DiffusionConfig
from vdlib.models.unet import UNet3D


def card_of(model: UNet3D, kind: str = "base", size: int = 16) -> ModelCard:
    """A card as training writes one: an upsampler's also says how it reads its low-res input."""
    low = {"sample_aug": 0.1, "residual_scale": 0.5} if kind == "upsampler" else {}
    return ModelCard(unet=model.cfg, kind=kind, size=size, diffusion=DiffusionConfig(), frames=3, window=3,
                     skip=0, val_fraction=0.05, seed=0, fps=5.0, shape=(size, size), **low)  # fmt: skip


def test_save_load_round_trip_is_exact(tmp_path):
    model = randomize(UNet3D(tiny_unet(cond_dim=4, lowres=True, mapping_channels=8)))
    save_model(model, card_of(model, kind="upsampler", size=32), tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded, card = load_model(tmp_path / "m")
    assert card == card_of(model, kind="upsampler", size=32) and loaded.cfg == model.cfg
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    x = torch.randn(1, 3, 3, 16, 16)
    kwargs = {"lowres": torch.randn_like(x), "cond": torch.rand(1, 3, 4)}
    with torch.no_grad():
        assert torch.equal(model(x, torch.tensor([5]), **kwargs), loaded(x, torch.tensor([5]), **kwargs))


def test_load_refuses_a_mismatch_and_never_unpickles(tmp_path, monkeypatch):
    save_model(UNet3D(TINY), card_of(UNet3D(TINY)), tmp_path / "m")
    config = (tmp_path / "m" / "config.json").read_text().replace('"channels": 8', '"channels": 16')
    (tmp_path / "m" / "config.json").write_text(config)

    def no_pickles(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", no_pickles)
    monkeypatch.setattr(pickle, "load", no_pickles)
    monkeypatch.setattr(pickle, "loads", no_pickles)
    with pytest.raises(VdlibError, match=r"model.safetensors: weights do not match config.json \(shape of "):
        load_model(tmp_path / "m")
    with pytest.raises(VdlibError, match=r"not a vdlib model \(missing config.json\)"):
        load_model(tmp_path)


def test_a_card_missing_a_field_is_one_line_and_old_folders_load_with_defaults(tmp_path):
    save_model(UNet3D(TINY), card_of(UNet3D(TINY)), tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    data = json.loads(path.read_text())
    for key in ("shape", "crop", "labels"):  # folders written before these fields existed
        del data[key]
    path.write_text(json.dumps(data))
    _, card = load_model(tmp_path / "m")
    assert card.frame_shape == (16, 16) and card.label_kind == "none" and card.upscale is None
    del data["val_fraction"]
    path.write_text(json.dumps(data))
    with pytest.raises(VdlibError) as err:
        load_model(tmp_path / "m")
    assert str(err.value) == f"{path}: missing 'val_fraction' (a model folder of another vdlib: retrain it)"
