"""What every module shares: the one user-facing error, atomic outputs, progress bars, JSON writing,
and the entry points' error handling (one line, exit status 2 on bad input)."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from tqdm import tqdm


class VdlibError(Exception):
    """A user-facing error: a single line naming the file, the field and what was expected. The CLI
    and the stages print it and exit with status 2."""


class ConfigError(VdlibError):
    """A parameter is missing, unknown or of the wrong type or range."""


def fail(where: str, key: str, expected: str, got: Any) -> NoReturn:
    """Raise the one-line error for param ``key`` of the file ``where``: what was expected, what it got."""
    raise ConfigError(f"{where}: {key}: expected {expected}, got {got!r}")


# --------------------------------------------------------------------------------------------------
# Outputs: written to a temporary sibling and renamed on success, never left half-written
# --------------------------------------------------------------------------------------------------


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    Works for files and folders. On any exception (Ctrl-C included) the temporary path is removed
    and an existing ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise FileNotFoundError(f"{tmp}: nothing was written")
        if final.is_dir() and not final.is_symlink():
            old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
            os.replace(tmp, final)
            _remove(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


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


# --------------------------------------------------------------------------------------------------
# Progress and entry points
# --------------------------------------------------------------------------------------------------


NOT_TRAINED_FILE = "not_trained.json"  # what a model folder holds when its stage trains nothing


def write_not_trained(folder: str | Path, reason: str) -> Path:
    """Write a model folder that says its stage trained nothing, and why (a stage's outputs must
    exist, so a model a project does not use is this folder)."""
    folder = Path(folder)
    with atomic_output(folder) as tmp:
        tmp.mkdir(parents=True)
        write_json({"trained": False, "reason": reason}, tmp / NOT_TRAINED_FILE)
    return folder


def is_not_trained(folder: str | Path) -> bool:
    """Whether ``folder`` is what :func:`write_not_trained` wrote."""
    return (Path(folder) / NOT_TRAINED_FILE).is_file()


def progress(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr that redraws at most twice a second (once every 10 s when not a terminal)."""
    kwargs.setdefault("mininterval", 0.5 if sys.stderr.isatty() else 10.0)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, **kwargs)


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
