"""What every benchmark shares: machine facts, worker subprocesses, Markdown tables, JSON output."""

from __future__ import annotations

import json
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from vdlib.core.cores import available_cores

BENCH_DIR = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    """Where the numbers come from."""
    import torch

    info = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": available_cores(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(script: str, *args: Any) -> dict[str, Any]:
    """Run ``python benchmarks/<script> --worker ARGS`` in a fresh process (so its peak memory is its
    own) and return the JSON object it prints last."""
    cmd = [sys.executable, str(BENCH_DIR / script), "--worker", *map(str, args)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; floats get 3 significant digits."""

    def cell(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def quick_demo_data(work: Path, seconds: int = 20, size: int = 32) -> tuple[Path, Path]:
    """A short demo clip's frame store (``size`` px at 10 fps) and timestamp labels in ``work``, for
    the smoke runs of benchmarks that otherwise read the project's ``data/``."""
    import warnings

    from vdlib.config import DemoConfig, ExtractConfig
    from vdlib.data.demo import demo_schedule, render_demo_video, write_schedule_csv
    from vdlib.data.extract import extract_frames
    from vdlib.labels import write_labels
    from vdlib.labels.tables import LabelRangeWarning, timestamp_labels

    video = render_demo_video(DemoConfig(seconds=seconds, width=96, height=72), work / "demo.mkv")
    store = extract_frames(video, work / "frames", ExtractConfig(resolution=size, fps=10))
    write_schedule_csv(demo_schedule(DemoConfig()), work / "demo.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelRangeWarning)  # the full demo's table over a short clip
        labels = timestamp_labels(store, [work / "demo.csv"])
    write_labels(labels, work / "labels.parquet")
    return work / "frames", work / "labels.parquet"


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    """Write indented JSON (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def bench_main(name: str, doc: str, run: Any, argv: list[str] | None = None) -> int:
    """The command line of one benchmark script: ``--quick`` and ``--out``; prints the table, writes JSON.

    ``run(quick)`` returns a mapping with ``rows`` and ``table``.
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest sizes, one run (smoke test)")
    parser.add_argument("--out", type=Path, default=Path(f"reports/bench/{name}.json"))
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(result["table"])
    write_json({"benchmark": name, "machine": machine(), **result}, args.out)
    print(f"wrote {args.out}")
    return 0


def flops_per_call(fn: Any) -> int:
    """Floating-point operations of one call of ``fn`` (a training step: forward and backward), as
    ``torch.utils.flop_counter`` counts them (matmuls and convolutions; a multiply-add is 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# Floating-point operations per cycle and core of the widest vector unit (FMA = 2): AVX-512 and AVX2
# cores issue two 256-bit FMAs a cycle (Zen 4 splits 512-bit ones in two; Intel cores with two
# 512-bit FMA units do twice that, which this table does not claim); AVX512-BF16 dot products do twice
# fp32's work per instruction; an AMX tile unit does 1024 bf16 operations a cycle.
FLOPS_PER_CYCLE = {"fp32": 32, "bf16_avx512": 64, "bf16_amx": 1024}


def cpu_peak(cores: int) -> dict[str, Any]:
    """This CPU's peak GFLOP/s in fp32 and bf16 over ``cores`` cores, from its instruction set and
    clock (``/proc/cpuinfo``), and how it was worked out."""
    flags: set[str] = set()
    mhz = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("cpu MHz"):
                mhz = max(mhz, float(line.split(":", 1)[1]))
    except OSError:
        pass
    ghz = mhz / 1000
    fp32 = FLOPS_PER_CYCLE["fp32"] if "fma" in flags else FLOPS_PER_CYCLE["fp32"] // 2
    if "amx_bf16" in flags:
        bf16, unit = FLOPS_PER_CYCLE["bf16_amx"], "AMX"
    elif "avx512_bf16" in flags:
        bf16, unit = FLOPS_PER_CYCLE["bf16_avx512"], "AVX512-BF16"
    else:
        bf16, unit = fp32, "no native bf16"
    return {
        "fp32_gflops": round(cores * ghz * fp32, 1),
        "bf16_gflops": round(cores * ghz * bf16, 1),
        "basis": f"{cores} cores x {ghz:.2f} GHz x {fp32} fp32 / {bf16} bf16 ({unit}) FLOP per cycle",
    }
