"""Choosing the torch device and CPU thread count, the same way for training, rendering and evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from vdlib.config import DEVICES, PRECISIONS, is_device
from vdlib.core.common import VdlibError
from vdlib.core.cores import share_cores


def device_name(want: str, key: str, cuda_devices: int, local_rank: int | None = None) -> str:
    """The device ``want`` means on a machine where PyTorch sees ``cuda_devices`` GPUs: ``auto`` is
    CUDA when there is one, else CPU; plain ``cuda`` under torchrun is this process's own GPU,
    ``cuda:LOCAL_RANK``. A clear error naming ``key`` when the GPU asked for is not there."""
    if want == "auto":
        want = "cuda" if cuda_devices else "cpu"
    if not is_device(want):
        raise VdlibError(f"{key}: expected {DEVICES}, got {want!r}")
    if want == "cpu":
        return want
    if not cuda_devices:
        raise VdlibError(f"{key}: {want!r} asked for, but PyTorch sees no CUDA device here (set {key}: cpu)")
    name = f"cuda:{local_rank}" if want == "cuda" and local_rank is not None else want
    index = int(name[5:]) if ":" in name else 0
    if index >= cuda_devices:
        raise VdlibError(f"{key}: {name!r} asked for, but PyTorch sees {cuda_devices} CUDA device(s) here")
    return name


def resolve_device(want: str, key: str, local_rank: int | None = None, threads: int = 0) -> torch.device:
    """The torch device ``want`` names (see ``device_name``), set up: on CUDA, this process's current
    device with TF32 matmuls; on CPU, ``threads`` threads (0: this process's share of the cores,
    ``vdlib.core.cores.share_cores``)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = torch.device(device_name(want, key, count, local_rank))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        share_cores(threads)
    return device


def ddp_backend(device_type: str) -> str:
    """The process group backend of data-parallel training: NCCL between GPUs, gloo between CPUs."""
    return "nccl" if device_type == "cuda" else "gloo"


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


def autocast_dtype(want: str, native_bf16: bool, key: str) -> torch.dtype | None:
    """The autocast dtype ``want`` means (None: full fp32) where the hardware does (``native_bf16``)
    or does not compute bf16 natively: ``auto`` is bf16 only where it is native (emulated bf16 would
    be slower than fp32)."""
    if want not in PRECISIONS:
        raise VdlibError(f"{key}: expected one of {', '.join(PRECISIONS)}, got {want!r}")
    if want == "fp32":
        return None
    if want == "bf16" or native_bf16:
        return torch.bfloat16
    return None


def resolve_precision(want: str, device: torch.device, key: str) -> torch.dtype | None:
    """The autocast dtype for ``want`` on ``device``: ``auto`` is bf16 on GPUs that support it and on
    CPUs with native bf16 arithmetic, fp32 elsewhere."""
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_native_bf16()
    return autocast_dtype(want, native, key)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision for the network's forward pass: weights stay fp32, matmuls and convolutions run
    in ``dtype``; a no-op when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def out_of_memory_hint(what: str, lower: str, kept: str = "") -> Iterator[None]:
    """Turn a CUDA out-of-memory error inside the block into one line: ``what`` ran out of GPU memory,
    lower the params ``lower`` names; ``kept`` says what is kept for a re-run."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "CUDA out of memory"
        tail = f"; {kept}" if kept else ""
        raise VdlibError(f"{what}: the GPU ran out of memory ({first}): lower {lower}{tail}") from None
