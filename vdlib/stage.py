"""What every entry point shares: one-line errors and warnings, exit status 2 on bad input."""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vdlib.atomic import atomic_output
from vdlib.errors import VdlibError


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def run_main(main: Callable[..., Any], *args: Any, prog: str = "vdlib") -> int:
    """Call ``main(*args)``; print a ``VdlibError`` as one line and return 2 (0 on success)."""
    warnings.formatwarning = _one_line_warning
    try:
        main(*args)
    except VdlibError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no partial output was kept", file=sys.stderr)
        return 130
    return 0


def run_stage(main: Callable[..., Any]) -> None:
    """Entry point of a ``stages/*.py`` script: ``main`` gets the command-line paths as strings."""
    prog = Path(sys.argv[0]).name
    sys.exit(run_main(main, *sys.argv[1:], prog=prog))


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    """Write ``data`` as indented JSON, atomically (a number that does not apply, NaN, as null)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path
