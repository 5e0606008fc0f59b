"""Check the whole of ``params.yaml`` before anything expensive runs (the pipeline's first stage).

Every section is loaded and validated, then what only the sections together can tell: the frame
size every model needs, that local sources and label tables exist and parse, that the pose model
resolves, that the tables, timelines and pose sources lie in the folders dvc.yaml tracks for
them, and that every explicit render request fits the labels the models will be trained on
(names from the tables, the 17 keypoints for pose, none for ``labels.kind: none``). A bad value
stops ``dvc repro`` in seconds, before fetching or training, with one line naming the param. The
project's git repository is checked too (``check_repository``).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from vdlib.config import (
    CASCADE,
    PARAMS_FILE,
    POSES_DIR,
    SECTIONS,
    TABLES_DIR,
    TIMELINES_DIR,
    AutoencoderParams,
    BaseConfig,
    ConfigError,
    is_auto,
    read_params,
    section_from_dict,
)
from vdlib.core.common import VdlibError
from vdlib.data.extract import KEEP_STEP
from vdlib.data.fetch import source_kind
from vdlib.generation.conditions import check_requests
from vdlib.labels import ModelLabels

# The output size of each upsampler stage (dvc.yaml's train_upsampler@SIZE), from its name.
UPSAMPLER_SIZES = {name: int(name.rsplit("_", 1)[1]) for name in CASCADE[1:]}


def pipeline_sizes(base_size: int) -> dict[str, int]:
    """The frame size each model of the pipeline makes: ``base.resolution`` for the base model, and the
    fixed output size of each upsampler stage (64 and 128 px)."""
    return {"base": base_size, **UPSAMPLER_SIZES}


def planned_labels(labels_cfg: Any) -> ModelLabels:
    """The labels the models will be trained on, known from params alone (the tables' names)."""
    where = "the model"
    if labels_cfg.kind == "timestamps":
        from vdlib.labels.tables import label_names, read_table

        ranges = []
        for i, table in enumerate(labels_cfg.tables):
            if not Path(table).is_file():
                raise VdlibError(f"labels.tables[{i}]: {table}: no such timestamp table")
            ranges += read_table(table)
        return ModelLabels("timestamps", label_names(ranges), where)
    if labels_cfg.kind == "pose":
        from vdlib.labels.pose import KEYPOINT_NAMES, resolve_pose_model

        resolve_pose_model(labels_cfg.pose.model)
        return ModelLabels("pose", list(KEYPOINT_NAMES), where)
    return ModelLabels("none", [], where)


def check_tracked(key: str, paths: list[str], folder: Path) -> None:
    """Every file of the param ``key`` lies under ``folder`` (relative to the project), the folder
    dvc.yaml tracks for it: a file elsewhere would be no stage's dependency, so editing it would
    leave stale outputs with ``dvc status`` saying all is up to date."""
    inside = folder.resolve()
    for i, text in enumerate(paths):
        path = Path(text).expanduser().resolve()
        if not path.is_relative_to(inside):
            raise VdlibError(
                f"{key}[{i}]: {text}: expected a file under {folder}/ (the folder dvc.yaml tracks for "
                f"{key}, so that dvc repro sees its edits); copy it there"
            )


def check_repository(root: str | Path = ".") -> None:
    """A project inside a git repository needs a first commit before training: DVCLive, which logs
    the metrics, fails on a repository without one (and ``dvc exp run`` needs one too). A project
    outside git is fine. Raises ``VdlibError`` with the commands that fix it."""
    from scmrepo.exceptions import SCMError
    from scmrepo.git import Git

    try:
        scm = Git(str(root))
    except SCMError:
        return
    try:
        if scm.no_commits:
            raise VdlibError(
                f"{scm.root_dir}: git repository without a commit; training logs to the current commit, "
                "so commit first: git add -A && git commit -m init"
            )
    finally:
        scm.close()


def check_latents(autoencoder: AutoencoderParams, base: BaseConfig) -> None:
    """A base model that diffuses an autoencoder's latents: its size fits the latents, and it takes
    no flips or zooms (its clips are latents, each made once from its frame)."""
    if not autoencoder.enabled:
        return
    step = base.model.size_multiple * autoencoder.factor
    if base.resolution % step:
        raise VdlibError(
            f"base.resolution: expected a multiple of {step} with an autoencoder (its latents are "
            f"{autoencoder.factor} times smaller and the network needs multiples of "
            f"{base.model.size_multiple}), got {base.resolution}"
        )
    if base.flip or base.zoom:
        key, value = ("flip", base.flip) if base.flip else ("zoom", base.zoom)
        raise VdlibError(
            f"base.{key}: expected {'false' if key == 'flip' else 0} with an autoencoder (autoencoder.steps "
            f"> 0: the base model's clips are latents, each made once from its frame), got {value}"
        )


def check_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Validate every section of ``path`` and their fit; returns what the models will be trained on
    (label kind and names). Raises ``VdlibError`` with one line naming the param."""
    data = read_params(path)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown section (valid: {', '.join(SECTIONS)})")
    cfg = {name: section_from_dict(name, data.get(name), str(path)) for name in SECTIONS}

    for i, source in enumerate(cfg["fetch"].sources):
        if source_kind(source) == "local" and not Path(source).expanduser().exists():
            raise VdlibError(f"{cfg['fetch'].source_key(i)}: {source}: no such file or folder")

    sizes = pipeline_sizes(cfg["base"].resolution)
    rendered = CASCADE[: cfg["render"].cascade]
    if any(2 * sizes[lower] != sizes[upper] for lower, upper in itertools.pairwise(rendered)):
        made = " and ".join(f"{v} px" for v in UPSAMPLER_SIZES.values())
        raise VdlibError(
            f"render.cascade: expected 1 with base.resolution {cfg['base'].resolution} (the upsamplers "
            f"make {made} frames, each from half that: a cascade of 2 or 3 needs base.resolution "
            f"{UPSAMPLER_SIZES[CASCADE[1]] // 2}), got {cfg['render'].cascade}"
        )
    if cfg["extract"].aspect == "keep" and cfg["base"].resolution % KEEP_STEP:
        raise VdlibError(
            f"base.resolution: expected a multiple of {KEEP_STEP} with extract.aspect: keep (the frames' "
            f"longer side is a multiple of 1/{KEEP_STEP} of the shorter), got {cfg['base'].resolution}"
        )
    largest = max(sizes.values())
    if cfg["extract"].resolution < largest:
        raise VdlibError(
            f"extract.resolution: expected at least {largest} (the pipeline's largest frames: "
            f"{', '.join(f'{k} {v} px' for k, v in sizes.items())}), got {cfg['extract'].resolution}"
        )
    check_latents(cfg["autoencoder"], cfg["base"])
    if not cfg["upsampler"].steps and cfg["render"].cascade > 1:
        raise VdlibError(
            f"render.cascade: expected 1 with upsampler.steps 0 (no upsamplers are trained), "
            f"got {cfg['render'].cascade}"
        )
    if cfg["upsampler"].crop > min(UPSAMPLER_SIZES.values()):
        raise VdlibError(
            f"upsampler.crop: expected 0 or at most {min(UPSAMPLER_SIZES.values())} (the smallest "
            f"upsampler's frames), got {cfg['upsampler'].crop}"
        )
    for name in CASCADE:
        sampling = getattr(cfg["render"], name)
        window = sampling.frames_per_window(cfg["base" if name == "base" else "upsampler"].frames)
        sampling.check_context(window, f"render.{name}")

    labels = planned_labels(cfg["labels"])
    if cfg["labels"].kind == "timestamps":
        check_tracked("labels.tables", cfg["labels"].tables, TABLES_DIR)
    check_requests(cfg["render"], labels)
    for key, folder in (("timelines", TIMELINES_DIR), ("pose_from", POSES_DIR)):
        value = getattr(cfg["render"], key)
        if not is_auto(value):
            check_tracked(f"render.{key}", value, folder)
    return {"labels": {"kind": labels.kind, "names": labels.names}}
