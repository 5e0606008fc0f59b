"""Every benchmark in one run (``make bench``): prints the Markdown tables and writes
``reports/bench/results.json`` (plus ``scaling.png``).

    python benchmarks/run.py                      # needs the demo's models: `make demo` first
    python benchmarks/run.py --quick              # smallest sizes, tiny models (the smoke test)
    python benchmarks/run.py --only training pose # re-run some; the others' results are kept
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import experiments
import extract
import pose
import render
import sampling
import scaling
import training
from common import machine, write_json

BENCHMARKS = ("extract", "pose", "training", "sampling", "render", "scaling", "experiments")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest sizes (smoke test)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--out", type=Path, default=Path("reports/bench/results.json"))
    args = parser.parse_args(argv)
    runners = {
        "extract": lambda: extract.run(args.quick),
        "pose": lambda: pose.run(args.quick),
        "training": lambda: training.run(args.quick),
        "sampling": lambda: sampling.run(args.quick),
        "render": lambda: render.run(args.quick),
        "scaling": lambda: scaling.run(args.quick, plot=args.out.with_name("scaling.png")),
        "experiments": lambda: experiments.run(args.quick),
    }
    results = {"machine": machine(), "quick": args.quick, "benchmarks": {}}
    if args.out.is_file() and not args.quick:  # --only: keep the other benchmarks' last results
        previous = json.loads(args.out.read_text())
        if not previous.get("quick"):
            results["benchmarks"] = previous.get("benchmarks", {})
    for name in args.only:
        start = time.perf_counter()
        result = runners[name]()
        result["seconds"] = round(time.perf_counter() - start, 1)
        results["benchmarks"][name] = result
        print(f"\n## {name} ({result['seconds']:.0f} s)\n\n{result['table']}", flush=True)
    write_json(results, args.out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
