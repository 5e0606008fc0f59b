"""Smoke runs of the benchmarks at their smallest size: they run, print a table and write JSON."""

import json
import subprocess
import sys

from tests.conftest import REPO


def test_extract_benchmark_quick(tmp_path):
    out = tmp_path / "extract.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "extract.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| input | frames | vdlib frames/s | ffmpeg alone frames/s |" in result.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["frames"] for r in rows] == [40, 60]
    assert all(r["vdlib_frames_per_s"] > 0 and r["ffmpeg_frames_per_s"] > 0 for r in rows)
