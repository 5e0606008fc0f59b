"""The torchrun command the training stages start for several processes and machines, built for any
machine (GPUs or not); tests/training/test_train.py runs it for real on CPU processes."""

import sys

import pytest

from vdlib.config import TrainConfig
from vdlib.core.common import VdlibError
from vdlib.training.launch import local_processes, needs_launch, torchrun_command


def test_two_gpus_on_each_of_two_machines():
    """Node 1 of two, 2 GPUs each: two processes here, static rendezvous at node 0's address."""
    train = TrainConfig(nnodes=2, node_rank=1, rdzv_endpoint="10.0.0.1:29500")
    cmd = torchrun_command(train, ["stages/train.py", "base"], gpus=2)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert cmd[3:] == [
        "--nproc-per-node=2", "--nnodes=2", "--max-restarts=0", "--rdzv-backend=static",
        "--master-addr=10.0.0.1", "--master-port=29500", "--node-rank=1", "stages/train.py", "base",
    ]  # fmt: skip


def test_one_machine_is_standalone():
    cmd = torchrun_command(TrainConfig(), ["-m", "vdlib.cli", "train", "base"], gpus=4)
    assert "--nproc-per-node=4" in cmd and "--standalone" in cmd and "--nnodes=1" in cmd


@pytest.mark.parametrize(
    ("nproc", "device", "gpus", "expected"),
    [("auto", "auto", 0, 1), ("auto", "auto", 8, 8), ("auto", "cpu", 8, 1), (2, "auto", 0, 2),
     (2, "cpu", 1, 2), (1, "cuda", 2, 1)],
)  # fmt: skip
def test_processes_per_machine(nproc, device, gpus, expected):
    assert local_processes(TrainConfig(nproc=nproc, device=device), gpus) == expected


def test_more_processes_than_gpus_is_one_line():
    with pytest.raises(VdlibError) as err:
        local_processes(TrainConfig(nproc=4), gpus=2)
    assert str(err.value) == (
        "train.nproc: 4 training processes asked for, but PyTorch sees 2 GPU(s) here (one process per GPU: "
        "set train.nproc to auto or at most that)"
    )


def test_one_process_on_one_machine_trains_in_place():
    assert not needs_launch(TrainConfig(nproc=1))
    assert needs_launch(TrainConfig(nproc=2))
