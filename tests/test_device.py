"""Devices and precision: what auto picks, errors that name the param, threads on CPU."""

import pytest
import torch

from vdlib.common import VdlibError
from vdlib.cores import available_cores
from vdlib.device import autocast, resolve_device, resolve_precision

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
