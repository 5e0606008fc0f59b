"""Choosing the torch device and CPU thread count, the same way for training, rendering and evaluation."""

from __future__ import annotations

import os

import torch

from vdlib.errors import VdlibError

DEVICES = "auto, cpu, cuda or cuda:N"


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_device(want: str, key: str, local_rank: int | None = None, threads: int = 0) -> torch.device:
    """``auto`` → CUDA when PyTorch sees a GPU, else CPU; a clear error naming ``key`` when CUDA is asked
    for but absent. On CPU, torch uses ``threads`` threads (0: every available core; torch's own
    default is sometimes 1)."""
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want != "cpu" and not (want == "cuda" or want.startswith("cuda:")):
        raise VdlibError(f"{key}: expected {DEVICES}, got {want!r}")
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise VdlibError(f"{key}: {want!r} asked for, but PyTorch sees no CUDA device here")
    device = torch.device(f"cuda:{local_rank}" if want == "cuda" and local_rank is not None else want)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch.set_num_threads(threads or available_cores())
    return device
