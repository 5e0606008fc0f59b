"""dvc.yaml keeps DVC's promise: each stage depends on exactly the code its script runs (the import
closure, imports inside functions included), and an edit re-runs exactly the stages that run it."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import shutil
from pathlib import Path

import yaml

from tests.conftest import REPO, copy_project, dvc, git, write_params_file
from vdlib.config import WEIGHT_NEUTRAL_KEYS, TrainConfig

CODE = ("stages/", "vdlib/")


def runs_code(init: Path) -> bool:
    """Whether a package's ``__init__.py`` holds more than its docstring (which no output depends on)."""
    body = ast.parse(init.read_text()).body
    return not (len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant))


def module_files(name: str) -> set[str]:
    """The repository files that importing the dotted ``name`` runs: every package's ``__init__.py``
    on the way that holds code, and the module itself (empty for names outside ``vdlib``)."""
    parts = name.split(".")
    if parts[0] != "vdlib":
        return set()
    files = set()
    for depth in range(1, len(parts) + 1):
        path = "/".join(parts[:depth])
        if (REPO / path / "__init__.py").is_file():
            if runs_code(REPO / path / "__init__.py"):
                files.add(f"{path}/__init__.py")
        elif (REPO / f"{path}.py").is_file():
            files.add(f"{path}.py")
            break
        else:
            break  # a name inside a module (from vdlib.x import y)
    return files


def imported_modules(path: Path) -> set[str]:
    """The repository files of the ``vdlib`` modules ``path`` imports, anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # from vdlib import x
    return set().union(*(module_files(name) for name in names)) if names else set()


def import_closure(script: str) -> set[str]:
    """``script`` and every repository module it runs, transitively."""
    seen: set[str] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imported_modules(REPO / path))
    return seen


def stages() -> dict[str, dict]:
    """dvc.yaml's stages with ``foreach`` expanded, by the names ``dvc status`` uses."""
    out = {}
    for name, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        if "foreach" in stage:
            for item in stage["foreach"]:
                text = json.dumps(stage["do"]).replace("${item}", str(item))
                out[f"{name}@{item}"] = json.loads(text)
        else:
            out[name] = stage
    return out


def script_of(stage: dict) -> str:
    return re.search(r"python (stages/\w+\.py)", stage["cmd"])[1]


def code_deps(stage: dict) -> set[str]:
    """The code files a stage's deps cover: files, and every Python file of a listed folder."""
    files = set()
    for dep in stage["deps"]:
        if isinstance(dep, str) and dep.startswith(CODE):
            folder = REPO / dep
            found = sorted(folder.rglob("*.py")) if folder.is_dir() else [folder]
            found = [f for f in found if f.name != "__init__.py" or runs_code(f)]
            files.update(str(f.relative_to(REPO)) for f in found)
    return files


def test_every_stage_depends_on_exactly_the_code_it_runs():
    problems = []
    for name, stage in stages().items():
        runs, listed = import_closure(script_of(stage)), code_deps(stage)
        problems += [f"{name}: runs {m} but dvc.yaml does not list it" for m in sorted(runs - listed)]
        problems += [f"{name}: lists {m}, which its script never imports" for m in sorted(listed - runs)]
    assert not problems, "\n".join(problems)


def test_the_closure_follows_imports_inside_functions():
    # labelling imports the tables only when labels.kind is timestamps; the labels stage still runs them.
    assert "vdlib/labels/tables.py" in import_closure("stages/labels.py")
    assert "vdlib/labels/tables.py" not in import_closure("stages/train.py")


def _changed(project: Path) -> dict[str, set[str]]:
    """``dvc status``: stage → the deps it reports changed."""
    report = json.loads(dvc(project, "status", "--json").splitlines()[-1])
    changed: dict[str, set[str]] = {}
    for stage, entries in report.items():
        for entry in entries:
            if isinstance(entry, dict) and "changed deps" in entry:
                changed[stage.split(":")[-1]] = set(entry["changed deps"])
    return changed


def test_dvc_status_names_exactly_the_stages_that_run_an_edited_file(tmp_path):
    """In a scratch clone with the committed dvc.lock, edit every module (and add a label table and a
    timeline): each file shows up as a changed dependency of exactly the stages that run or read it."""
    copy_project(tmp_path)
    shutil.copy(REPO / "dvc.lock", tmp_path / "dvc.lock")
    git(tmp_path, "init", "-q")
    dvc(tmp_path, "init", "-q")
    for module in (tmp_path / "vdlib").rglob("*.py"):
        module.write_text(module.read_text() + "\n# edited\n")
    (tmp_path / "labels/tables/extra.csv").write_text("start,end,label\n0,1,a\n")
    (tmp_path / "labels/timelines/extra.csv").write_text("start,end,label\n0,1,a\n")
    changed = _changed(tmp_path)
    # The label folders: the labels stage reads the tables, render the timelines, check all of labels/.
    expected = {"labels/tables": {"check", "labels"}, "labels/timelines": {"check", "render"}}
    for name, stage in stages().items():
        for module in import_closure(script_of(stage)) - {script_of(stage)}:
            expected.setdefault(module, set()).add(name)
    for path, names in sorted(expected.items()):
        within = {path, *(str(parent) for parent in Path(path).parents if str(parent) != ".")}
        reported = {stage for stage, deps in changed.items() if within & {d.rstrip("/") for d in deps}}
        assert reported == names, f"editing {path} re-runs {sorted(reported)}, expected {sorted(names)}"


def test_every_param_is_part_of_dvcs_run_cache_key():
    """DVC's run cache hashes a stage without the keys it treats as file metadata (``size``,
    ``nfiles``), at any depth: a param of that name could change and the stage's old outputs be
    restored from the cache instead of made. No param may have such a name."""
    from dvc_data.hashfile.meta import Meta

    hidden = {Meta.PARAM_SIZE, Meta.PARAM_NFILES}

    def keys(node, prefix=""):
        if isinstance(node, dict):
            for key, value in node.items():
                yield f"{prefix}{key}", key
                yield from keys(value, f"{prefix}{key}.")

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert [path for path, key in keys(params) if key in hidden] == []


def test_train_stages_track_exactly_the_keys_that_can_change_the_weights():
    """A train stage's params are its own section and every train key but the weight-neutral ones
    (which tests/training/test_train.py shows leave the weights alone)."""
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    can_change = {f"train.{k}" for k in train_keys - set(WEIGHT_NEUTRAL_KEYS)}
    # The autoencoder trains in one process without torch.compile, on the base model's frames.
    autoencoder = {"autoencoder", "base.resolution", "base.window", "base.skip"} | can_change - {
        "train.nproc",
        "train.nnodes",
        "train.compile",
    }
    for name, stage in stages().items():
        if name.startswith("train_"):
            listed = {k for p in stage["params"] for k in ([p] if isinstance(p, str) else p["params.yaml"])}
            if name == "train_autoencoder":
                assert listed == autoencoder, name
            else:
                assert listed == can_change | {"base" if name == "train_base" else "upsampler"}, name


def test_a_weight_neutral_key_rerun_no_training(tmp_path):
    """In a scratch clone with the committed dvc.lock, change every weight-neutral train key: `dvc
    status` names no train stage (the check stage, which reads every key, takes a second)."""
    copy_project(tmp_path)
    shutil.copy(REPO / "dvc.lock", tmp_path / "dvc.lock")
    git(tmp_path, "init", "-q")
    dvc(tmp_path, "init", "-q")
    changed = {"workers": 2, "ckpt_every": 7, "val_every": 3, "log_every": 1, "sample_every": 5,
               "node_rank": 1, "rdzv_endpoint": "10.0.0.1:29500"}  # fmt: skip
    assert set(changed) == set(WEIGHT_NEUTRAL_KEYS)
    write_params_file(tmp_path / "params.yaml", {f"train.{key}": value for key, value in changed.items()})
    report = json.loads(dvc(tmp_path, "status", "--json").splitlines()[-1])
    params_changed = {
        stage
        for stage, entries in report.items()
        for entry in entries
        if isinstance(entry, dict) and "params.yaml" in entry.get("changed deps", {})
    }
    assert params_changed == {"check"}, report


# The packages in the order the pipeline runs them: a module imports only from its own layer or
# those before it.
LAYERS = ["core", "models", "config", "data", "labels", "generation", "training", "evaluation", "app"]
APP = {"check", "init", "params_file", "cli"}


def layer_of(path: str) -> int:
    parts = Path(path).parts  # vdlib/<package>/<module>.py or vdlib/<module>.py
    if len(parts) == 2:
        name = Path(parts[1]).stem
        return LAYERS.index("app" if name in APP else "config" if name in ("config", "device") else "core")
    return LAYERS.index(parts[1])


def test_imports_flow_one_way_through_the_packages():
    backwards = []
    for path in sorted(str(p.relative_to(REPO)) for p in (REPO / "vdlib").rglob("*.py")):
        for module in imported_modules(REPO / path):
            if layer_of(module) > layer_of(path):
                backwards.append(f"{path} imports {module}")
    assert not backwards, "\n".join(backwards)
    models = {m for p in (REPO / "vdlib/models").glob("*.py") for m in imported_modules(p)}
    assert "vdlib/config.py" not in models  # the model code never reads the params schema
