"""Queued experiments: the total time of the same two experiments with ``dvc queue`` at 1 and 2 workers.

A tiny project (the tests' tiny params, in a fresh git repository) runs its baseline once; then each
mode queues two experiments (each its own ``train.seed``, so nothing comes from DVC's run cache and
all three trainings, render and evaluate run) and times ``dvc exp run --run-all -j N``:

- ``-j 1``: one after the other, every core each;
- ``-j 2``, ``train.threads: 0``: side by side, sharing the cores (``vdlib.core.cores``);
- ``-j 2``, ``train.threads`` = every core: side by side, each using every core (the thrash).

    python benchmarks/experiments.py            # base.steps 100 per experiment (~10 minutes here)
    python benchmarks/experiments.py --quick    # base.steps 10
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import BENCH_DIR, bench_main, markdown_table

sys.path.insert(0, str(BENCH_DIR.parent))
from tests.conftest import dvc, git, make_git_project  # the tests' tiny project


def _tiny(params: dict) -> None:
    params["render"]["labels"] = ["shape=circle,colour=red", "square,blue"]
    params["train"]["threads"] = 0


def _experiments(project: Path, seeds: tuple[int, int], steps: int, threads: int) -> list[str]:
    names = []
    for seed in seeds:
        name = f"seed{seed}"
        dvc(project, "exp", "run", "--queue", "-n", name, "-S", f"train.seed={seed}",
            "-S", f"base.steps={steps}", "-S", f"train.threads={threads}")  # fmt: skip
        names.append(name)
    return names


def _statuses(project: Path) -> dict[str, str]:
    out = dvc(project, "queue", "status")
    rows = [line.split() for line in out.splitlines()[1:] if line.strip() and not line.startswith("Worker")]
    return {row[1]: row[-1] for row in rows if len(row) >= 3}


def run(quick: bool = False) -> dict:
    """Time the three modes; every experiment must succeed."""
    from vdlib.core.cores import available_cores

    cores = available_cores()
    steps = 10 if quick else 100
    modes = [("-j 1", 1, 0), ("-j 2, shared cores", 2, 0), (f"-j 2, {cores} threads each", 2, cores)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="vdlib-queue-bench-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        make_git_project(project, _tiny)
        dvc(project, "repro")
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "baseline")
        for i, (mode, jobs, threads) in enumerate(modes):
            names = _experiments(project, (10 + 2 * i, 11 + 2 * i), steps, threads)
            start = time.perf_counter()
            dvc(project, "exp", "run", "--run-all", "-j", str(jobs))
            seconds = time.perf_counter() - start
            status = _statuses(project)
            if any(status.get(n) != "Success" for n in names):
                raise RuntimeError(f"queued experiments did not all succeed: {status}")
            rows.append({"mode": mode, "jobs": jobs, "threads": threads or "shared",
                         "experiments": len(names), "seconds": round(seconds, 1)})  # fmt: skip
    base = rows[0]["seconds"]
    table = markdown_table(
        ["mode", "experiments", "total s", "vs -j 1"],
        [[r["mode"], r["experiments"], r["seconds"], f"{base / r['seconds']:.2f}x"] for r in rows],
    )
    return {"rows": rows, "table": table, "base_steps": steps, "cores": cores}


if __name__ == "__main__":
    sys.exit(bench_main("experiments", __doc__, run))
