"""Recipe ablations for the base model: what a change to its training or sampling params does to
label accuracy, identity stability and motion after a short budget, and what it costs.

Each row is a set of ``-S`` overrides on ``params.yaml`` (the same syntax as ``dvc exp run -S``). A
row trains the base model alone on the project's current frames and labels (``data/frames``,
``data/labels.parquet``: run ``dvc repro labels`` first), renders the base model's videos of the
``render`` section (``render.cascade`` forced to 1) and scores them with the evaluate stage's own
functions. Rows whose base params match reuse one trained model, so sampling-only rows (guidance,
steps, context) cost no training.

    python benchmarks/recipe.py --row baseline --row "no context:base.context_prob=0" -S base.steps=300
    python benchmarks/recipe.py --quick     # the smoke test: two rows of a few steps on a tiny model
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from common import machine, markdown_table, quick_demo_data, write_json

ROOT = Path(__file__).resolve().parent.parent
QUICK_OVERRIDES = [
    "base.steps=6", "base.batch=2", "base.window=6", "base.model.channels=8", "base.model.mults=[1,2]",
    "base.model.spatial_attn_levels=[]", "base.model.temporal_attn_levels=[1]", "train.ckpt_every=3",
    "train.log_every=3", "evaluate.classifier_steps=5", "render.frames=6", "render.base.steps=2",
    "render.base.context=1",
]  # fmt: skip
QUICK_ROWS = ["baseline", "guidance 4:render.base.guidance=4"]


def apply_overrides(params: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``params`` with each ``key.path=value`` (value parsed as YAML) set, as ``dvc exp run -S`` does."""
    out = copy.deepcopy(params)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"-S {item}: expected key.path=value")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise SystemExit(f"-S {item}: {part}: no such section in params.yaml")
            node = node[part]
        node[leaf] = yaml.safe_load(text)
    return out


def parse_row(text: str) -> tuple[str, list[str]]:
    """``name:key=value;key=value`` (or just ``name``) → (name, overrides)."""
    name, _, rest = text.partition(":")
    return name, [item.strip() for item in rest.split(";") if item.strip()]


def data_key(frames: Path, labels: Path) -> str:
    """A digest of the frame store's and the labels file's contents: models and rows made from other
    data are never reused."""
    digest = hashlib.sha256()
    for path in [*sorted(p for p in frames.rglob("*") if p.is_file()), labels]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def train_base(
    params: dict[str, Any], work: Path, frames: Path, labels: Path, data: str
) -> tuple[Path, float]:
    """The base model these params train from this data (``data``: its :func:`data_key`; trained once
    per distinct base/train params and data, cached in ``work``) and the seconds its training took."""
    from vdlib.training.train import train_job_from_params, train_model

    what = [params["base"], params["train"], data]
    key = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
    folder = work / f"base-{key[:12]}"
    timing = folder / "seconds.json"
    if not timing.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        job = train_job_from_params(
            "base", frames, labels, folder / "model", folder / "report", params_file=folder / "params.yaml"
        )
        start = time.perf_counter()
        train_model(job)
        timing.write_text(json.dumps(time.perf_counter() - start))
    return folder / "model", float(json.loads(timing.read_text()))


def score_row(
    params: dict[str, Any], work: Path, name: str, frames: Path, labels: Path, data: str
) -> dict[str, Any]:
    """Train (or reuse) the row's base model, render its videos and compute the evaluate metrics."""
    from vdlib.config import load_section
    from vdlib.evaluation.evaluate import evaluate
    from vdlib.generation.render import render_videos

    model, train_seconds = train_base(params, work, frames, labels, data)
    row_dir = work / "rows" / hashlib.sha256(f"{name} {model}".encode()).hexdigest()[:12]
    row_dir.mkdir(parents=True, exist_ok=True)
    params_file = row_dir / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    render_cfg = replace(load_section("render", params_file), cascade=1, formats=["gif"])
    render_videos(render_cfg, [model], row_dir / "render", frames=frames, labels=labels)
    metrics = evaluate(frames, labels, row_dir / "render", row_dir / "eval", [model], params_file)
    return {"train_seconds": round(train_seconds, 1), **metrics}


def summary(name: str, overrides: list[str], metrics: dict[str, Any]) -> list[Any]:
    """One table row: the few numbers that tell a recipe apart."""
    accuracy = metrics.get("label_accuracy", {}).get("generated", {})
    ceiling = metrics.get("label_accuracy", {}).get("real_heldout", {})
    identity = metrics.get("identity_stability", {})
    temporal, nan = metrics["temporal"], float("nan")
    return [
        name, " ".join(overrides) or "-",
        " / ".join(f"{accuracy[g]:.2f} ({ceiling.get(g, nan):.2f})" for g in accuracy) or "-",
        " / ".join(f"{v:.2f}" for v in identity.get("generated", {}).values()) or "-",
        temporal["ratio"], temporal.get("border_ratio", nan), temporal.get("motion_distance", nan),
        metrics.get("label_gain", {}).get("base", nan), metrics["val_loss"]["base"], metrics["train_seconds"],
        metrics["sampling"]["seconds_per_video"],
    ]  # fmt: skip


HEADERS = [
    "row", "overrides", "label accuracy (real)", "identity", "temporal ratio", "border ratio",
    "motion distance", "label gain", "val loss", "train s", "sample s/video",
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", action="append", default=[], help="NAME[:key=value;key=value] (repeatable)")
    parser.add_argument("-S", dest="common", action="append", default=[], help="key=value for every row")
    parser.add_argument("--frames", type=Path, default=ROOT / "data" / "frames")
    parser.add_argument("--labels", type=Path, default=ROOT / "data" / "labels.parquet")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--work", type=Path, default=None, help="where models are kept (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="two rows of a tiny model on a short demo clip")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "recipe.json")
    args = parser.parse_args(argv)
    rows = [parse_row(r) for r in (QUICK_ROWS if args.quick else args.row or ["baseline"])]
    common = (QUICK_OVERRIDES if args.quick else []) + args.common
    base_params = yaml.safe_load(args.params.read_text())
    results, table = [], []
    with tempfile.TemporaryDirectory(prefix="vdlib-recipe-") as tmp:
        work = args.work or Path(tmp)
        frames, labels = quick_demo_data(Path(tmp)) if args.quick else (args.frames, args.labels)
        for path in (frames, labels):
            if not path.exists():
                raise SystemExit(f"{path}: not found; run `dvc repro labels` first")
        data = data_key(frames, labels)  # read once: the store can be large
        for name, overrides in rows:
            params = apply_overrides(base_params, common + overrides)
            metrics = score_row(params, work, name, frames, labels, data)
            results.append({"row": name, "overrides": common + overrides, "metrics": metrics})
            table.append(summary(name, overrides, metrics))
            print(markdown_table(HEADERS, table[-1:]), flush=True)
    text = markdown_table(HEADERS, table)
    print(f"\nevery row: {' '.join(common) or 'params.yaml as it is'}\n{text}")
    result = {"benchmark": "recipe", "machine": machine(), "common": common, "rows": results, "table": text}
    write_json(result, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
