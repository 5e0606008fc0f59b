"""Devices and precision: what auto picks, errors that name the param, threads on CPU."""

import pytest
import torch

from vdlib.config import RenderConfig
from vdlib.core.common import VdlibError
from vdlib.core.cores import available_cores
from vdlib.device import (
    autocast,
    autocast_dtype,
    ddp_backend,
    device_name,
    out_of_memory_hint,
    resolve_device,
    resolve_precision,
)

CPU = torch.device("cpu")


def test_auto_is_cpu_without_a_gpu_and_sets_the_threads():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    before = torch.get_num_threads()
    try:
        assert resolve_device("auto", "train.device", threads=1) == CPU
        assert torch.get_num_threads() == 1
        resolve_device("cpu", "train.device")
        assert torch.get_num_threads() == available_cores()
    finally:
        torch.set_num_threads(before)


def test_bad_devices_name_the_param():
    with pytest.raises(VdlibError, match=r"render.device: expected auto, cpu, cuda or cuda:N, got 'gpu'"):
        resolve_device("gpu", "render.device")
    if not torch.cuda.is_available():
        with pytest.raises(VdlibError, match=r"train.device: 'cuda:1' asked for, but PyTorch sees no CUDA"):
            resolve_device("cuda:1", "train.device")


def test_precision_choices():
    assert resolve_precision("fp32", CPU, "train.precision") is None
    assert resolve_precision("bf16", CPU, "train.precision") is torch.bfloat16
    assert resolve_precision("auto", CPU, "train.precision") in (None, torch.bfloat16)
    with pytest.raises(VdlibError, match=r"train.precision: expected one of auto, fp32, bf16, got 'fp16'"):
        resolve_precision("fp16", CPU, "train.precision")


def test_autocast_runs_matmuls_in_bf16_and_none_leaves_fp32():
    a = torch.randn(4, 4)
    with autocast(CPU, torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(CPU, None):
        assert (a @ a).dtype == torch.float32


# What differs on CUDA is chosen by small functions of the machine (how many GPUs, native bf16): they
# run here for any machine, GPU or not.


@pytest.mark.parametrize(
    ("want", "gpus", "local_rank", "expected"),
    [
        ("auto", 0, None, "cpu"),
        ("auto", 2, None, "cuda"),
        ("cuda", 2, None, "cuda"),
        ("auto", 2, 1, "cuda:1"),  # under torchrun: each process its own GPU
        ("cuda", 4, 3, "cuda:3"),
        ("cuda:1", 2, 0, "cuda:1"),  # an explicit GPU is taken as given
        ("cpu", 2, 1, "cpu"),
    ],
)
def test_the_device_each_process_picks(want, gpus, local_rank, expected):
    assert device_name(want, "train.device", gpus, local_rank) == expected


@pytest.mark.parametrize(
    ("want", "gpus", "local_rank", "message"),
    [
        ("cuda", 0, None,
         "train.device: 'cuda' asked for, but PyTorch sees no CUDA device here (set train.device: cpu)"),
        ("cuda:2", 2, None, "train.device: 'cuda:2' asked for, but PyTorch sees 2 CUDA device(s) here"),
        ("cuda", 2, 2, "train.device: 'cuda:2' asked for, but PyTorch sees 2 CUDA device(s) here"),
        ("cuda:x", 2, None, "train.device: expected auto, cpu, cuda or cuda:N, got 'cuda:x'"),
    ],
)  # fmt: skip
def test_a_gpu_that_is_not_there_is_one_line(want, gpus, local_rank, message):
    with pytest.raises(VdlibError) as err:
        device_name(want, "train.device", gpus, local_rank)
    assert str(err.value) == message


def test_backend_and_autocast_dtype_by_hardware():
    assert ddp_backend("cuda") == "nccl" and ddp_backend("cpu") == "gloo"
    assert autocast_dtype("auto", True, "train.precision") is torch.bfloat16
    assert autocast_dtype("auto", False, "train.precision") is None
    assert autocast_dtype("bf16", False, "train.precision") is torch.bfloat16
    assert autocast_dtype("fp32", True, "train.precision") is None


def test_render_batch_auto_is_8_on_cuda_and_1_on_cpu():
    assert RenderConfig().batch_size("cuda") == 8 and RenderConfig().batch_size("cpu") == 1
    assert RenderConfig(batch=3).batch_size("cuda") == 3


def test_out_of_memory_is_one_line_naming_what_to_lower():
    with pytest.raises(VdlibError) as err, out_of_memory_hint("render", "render.batch or render.frames"):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")
    assert str(err.value) == (
        "render: the GPU ran out of memory (CUDA out of memory. Tried to allocate 2.00 GiB): lower "
        "render.batch or render.frames"
    )
