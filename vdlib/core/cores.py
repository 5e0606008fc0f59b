"""Sharing this machine's CPU cores between the vdlib processes that run on it at once.

Queued experiments (``dvc queue start -j 2``), DDP ranks on CPU and a render beside a training each
run their own PyTorch; if each used every core they would thrash (two trainings on 2 cores each run
3-7x slower). Every process that computes registers itself in a machine-wide folder and takes
``cores // running`` threads, re-checked between training steps and sampling windows, so a worker
that finishes hands its cores back to the others. On this machine's CPU the results do not depend on
the thread count (a test checks it), so sharing changes speed, not outputs.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from pathlib import Path

import torch

_registered: Path | None = None


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def registry() -> Path:
    """``$VDLIB_RUNTIME_DIR`` or ``<temp>/vdlib-<uid>/running``: one empty file per computing process."""
    if os.environ.get("VDLIB_RUNTIME_DIR"):
        return Path(os.environ["VDLIB_RUNTIME_DIR"])
    return Path(tempfile.gettempdir()) / f"vdlib-{os.getuid()}" / "running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running() -> int:
    """How many registered processes are alive (at least this process's DDP group on this machine);
    files left by killed processes are removed on the way."""
    folder = registry()
    live = 0
    for entry in folder.glob("*") if folder.is_dir() else ():
        if not entry.name.isdigit():
            continue  # not ours: $VDLIB_RUNTIME_DIR may hold other files
        if _alive(int(entry.name)):
            live += 1
        else:
            entry.unlink(missing_ok=True)
    return max(live, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def _register() -> None:
    global _registered
    if _registered is None or _registered.name != str(os.getpid()):  # a fork registers anew
        folder = registry()
        folder.mkdir(parents=True, exist_ok=True)
        _registered = folder / str(os.getpid())
        _registered.touch()
        atexit.register(_registered.unlink, missing_ok=True)


def share_cores(fixed: int = 0) -> int:
    """Set torch's CPU threads to ``fixed``, or when 0 to this process's share of the cores
    (``cores // running processes``, at least 1); registers the process on first use. Returns the
    thread count."""
    _register()
    threads = fixed or max(1, available_cores() // running())
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
