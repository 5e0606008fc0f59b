import dataclasses
import shlex
from pathlib import Path

import pytest
import yaml

from vdlib.config import SECTIONS, ConfigError, ExtractConfig, load_section, section_from_dict
from vdlib.params_file import KEY_DOCS, ORDER, default_params, params_yaml

REPO = Path(__file__).resolve().parents[1]


def test_repo_params_load_and_validate():
    """Every value written in params.yaml is the value the stages get."""
    written = yaml.safe_load((REPO / "params.yaml").read_text())
    for name in SECTIONS:
        loaded = dataclasses.asdict(load_section(name, REPO / "params.yaml"))
        for key, value in written[name].items():
            assert loaded[key] == value, f"{name}.{key}: params.yaml says {value!r}, loaded {loaded[key]!r}"
    assert load_section("labels", REPO / "params.yaml").tables == ["labels/tables/demo.csv"]


def test_params_yaml_is_what_vdlib_params_writes_from_the_code_defaults():
    """One home for every default: the dataclasses. The shipped params.yaml is written from them by
    `vdlib params -o params.yaml`, so the two cannot drift (edit the code, then run that)."""
    assert (REPO / "params.yaml").read_text() == params_yaml(), "run: vdlib params -o params.yaml"
    assert default_params() == yaml.safe_load((REPO / "params.yaml").read_text())


def test_every_key_has_one_place_and_one_line_in_params_yaml():
    for cls, docs in KEY_DOCS.items():
        assert list(docs) == sorted(docs, key=list(docs).index)
        assert set(docs) == {f.name for f in dataclasses.fields(cls)}, cls.__name__
    assert set(ORDER) == set(SECTIONS)
    lines = params_yaml().splitlines()
    assert max(len(line) for line in lines) <= 110
    # The keys a user sets come first, each with its comment; render requests fit any video.
    assert lines.index("fetch:                  # the videos (stage fetch)") == 3
    assert next(line for line in lines if line.startswith("  labels:")).startswith("  labels: auto  ")
    assert next(line for line in lines if line.startswith("  timelines:")).startswith("  timelines: auto")


def test_vdlib_params_writes_the_file(tmp_path):
    from vdlib.cli import main

    assert main(["params", "-o", str(tmp_path / "params.yaml")]) == 0
    assert (tmp_path / "params.yaml").read_text() == (REPO / "params.yaml").read_text()


def test_the_gpu_preset_in_the_makefile_is_valid():
    """`make quality` passes -S overrides to `dvc exp run`; applied to params.yaml they must validate."""
    makefile = (REPO / "Makefile").read_text()
    block = makefile[makefile.index("QUALITY :=") : makefile.index("QUALITY_EXTRA")]
    overrides = shlex.split(block.replace("\\\n", " ").removeprefix("QUALITY :="))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert overrides[0::2] == ["-S"] * (len(overrides) // 2)
    for item in overrides[1::2]:
        dotted, value = item.split("=", 1)
        *parents, key = dotted.split(".")
        node = params
        for part in parents:
            node = node[part]
        assert key in node, f"{dotted} is not a key of params.yaml"
        node[key] = yaml.safe_load(value)
    for name in SECTIONS:
        section_from_dict(name, params.get(name), "make quality")
    assert params["base"]["window"] == 64 and params["base"]["skip"] == 0 and params["extract"]["fps"] == 10


def test_missing_keys_take_defaults_and_ints_are_accepted_as_floats():
    cfg = section_from_dict("extract", {"fps": 5})
    assert cfg == ExtractConfig(fps=5.0)
    assert isinstance(cfg.fps, float)


def test_upsamplers_with_a_fitted_upscale_train_fitted_steps():
    cfg = section_from_dict("upsampler", {"steps": 1000, "fitted_steps": 250, "fitted_upscale_from": 128})
    assert (cfg.for_size(64).steps, cfg.for_size(128).steps, cfg.for_size(256).steps) == (1000, 250, 250)
    assert cfg.for_size(128).fitted_steps == 250 and cfg.for_size(128).lr == cfg.lr
    same = section_from_dict("upsampler", {"steps": 1000, "fitted_steps": None})
    assert same.for_size(128).steps == 1000
    bilinear = {"steps": 1000, "fitted_steps": 250, "fitted_upscale_from": None}
    assert section_from_dict("upsampler", bilinear).for_size(128).steps == 1000


def test_nested_section():
    cfg = section_from_dict("labels", {"kind": "pose", "pose": {"batch": 4}})
    assert cfg.pose.batch == 4 and cfg.pose.imgsz == 320


@pytest.mark.parametrize(
    ("section", "data", "message"),
    [
        ("extract", {"fps": "ten"}, "params: extract.fps: expected a number, got 'ten'"),
        ("extract", {"fps": -1}, "extract.fps: expected a positive number"),
        ("extract", {"sizee": 64}, "extract.sizee: unknown key (valid keys: allow_partial, aspect, end, fps"),
        ("extract", {"size": 64}, "extract.size: renamed extract.resolution (DVC's run cache ignores"),
        ("base", {"size": 64}, "base.size: renamed base.resolution"),
        ("base", {"keypoint_maps": False}, "base.keypoint_maps: renamed base.pose_input (true is maps"),
        ("base", {"pose_input": "image"}, "base.pose_input: expected maps | skeleton | vector, got 'image'"),
        ("extract", {"start": 5, "end": 2}, "extract.end: expected null or seconds after extract.start"),
        ("extract", {"aspect": "wide"}, "extract.aspect: expected keep | pad | crop, got 'wide'"),
        ("extract", {"aspect": "keep", "resolution": 100}, "extract.resolution: expected a multiple of 8"),
        ("labels", {"kind": "audio"}, "labels.kind: expected none | timestamps | pose, got 'audio'"),
        ("labels", {"tables": "a.csv"}, "labels.tables: expected a list of strings, got 'a.csv'"),
        ("labels", {"pose": {"imgsz": 100}}, "labels.pose.imgsz: expected a multiple of 32"),
        ("demo", {"width": 33}, "demo.width: expected an even integer >= 32, got 33"),
        ("fetch", {"max_height": True}, "fetch.max_height: expected an integer, got True"),
        ("base", {"diffusion": {"min_snr_gamma": -1}}, "base.diffusion.min_snr_gamma: expected a number"),
        ("base", {"diffusion": {"min_snr_gamma": 5, "snr_floor": 6}}, "base.diffusion.snr_floor: expected"),
        (
            "base",
            {"diffusion": {"shared_noise": 1}},
            "base.diffusion.shared_noise: expected a number in [0, 1)",
        ),
        (
            "render",
            {"base": {"guidance_share": 1.5}},
            "render.base.guidance_share: expected a share in [0, 1] of the steps, got 1.5",
        ),
        (
            "base",
            {"model": {"temporal_attn_levels": [0, 3]}},
            "base.model.temporal_attn_levels: expected null (all) or levels between 0 and 2, got [3]",
        ),
        ("base", {"image_prob": 1.5}, "base.image_prob: expected a probability in [0, 1], got 1.5"),
        ("base", {"diffusion": {"shift": 0}}, "base.diffusion.shift: expected a number > 0"),
        ("train", {"precision": "fp16"}, "train.precision: expected auto | fp32 | bf16, got 'fp16'"),
        ("upsampler", {"fitted_steps": 0}, "upsampler.fitted_steps: expected null (the same as steps) or an"),
    ],
)
def test_bad_values_name_the_key(section, data, message):
    with pytest.raises(ConfigError) as err:
        section_from_dict(section, data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_params_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"params.yaml: file not found"):
        load_section("extract", tmp_path / "params.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("extract: [1, 2\n")
    with pytest.raises(ConfigError, match=r"params.yaml: not valid YAML"):
        load_section("extract", bad)
    bad.write_text("extract:\n  resolution: big\n")
    with pytest.raises(ConfigError, match=r"params.yaml: extract.resolution: expected an integer, got 'big'"):
        load_section("extract", bad)
