"""Choosing the torch device and CPU thread count, the same way for training, rendering and evaluation."""

from __future__ import annotations

import contextlib

import torch

from vdlib.common import VdlibError
from vdlib.config import PRECISIONS
from vdlib.cores import share_cores

DEVICES = "auto, cpu, cuda or cuda:N"


def resolve_device(want: str, key: str, local_rank: int | None = None, threads: int = 0) -> torch.device:
    """``auto`` → CUDA when PyTorch sees a GPU, else CPU; a clear error naming ``key`` when CUDA is asked
    for but absent. On CPU, torch uses ``threads`` threads (0: this process's share of the cores,
    ``vdlib.cores.share_cores``)."""
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
        share_cores(threads)
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), so bf16 is faster than fp32."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(want: str, device: torch.device, key: str) -> torch.dtype | None:
    """The autocast dtype for ``want`` on ``device`` (None: full fp32). ``auto`` is bf16 on CUDA and on
    CPUs with native bf16 arithmetic, fp32 elsewhere (emulated bf16 would be slower than fp32)."""
    if want not in PRECISIONS:
        raise VdlibError(f"{key}: expected one of {', '.join(PRECISIONS)}, got {want!r}")
    if want == "fp32":
        return None
    if want == "bf16":
        return torch.bfloat16
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_native_bf16()
    return torch.bfloat16 if native else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision for the network's forward pass: weights stay fp32, matmuls and convolutions run
    in ``dtype``; a no-op when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
