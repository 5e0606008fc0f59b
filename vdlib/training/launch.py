"""Training on several processes and machines, started through PyTorch elastic (``torchrun``) from
the params, so ``dvc repro`` itself runs data-parallel training and ``dvc.lock`` records how.

``train.nproc`` processes run on each of ``train.nnodes`` machines; machines meet at
``train.rdzv_endpoint``, node 0's address (static rendezvous: global ranks follow
``train.node_rank``, so rank 0, which writes the outputs, is on node 0; empty: this machine alone).
Every process trains on its own batches, a pure function of (seed, step, global rank), so the global
batch is ``batch x world size`` and the learning rate applies to it as set (no automatic scaling).
Rank 0 alone writes the model, the logs and the resumable state. When a process dies, torchrun
stops the others (no restarts) and the stage fails with one line; a re-run resumes from the last
checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from vdlib.config import TrainConfig
from vdlib.core.common import VdlibError


def visible_gpus() -> int:
    """The CUDA devices PyTorch sees here."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def local_processes(train: TrainConfig, gpus: int | None = None) -> int:
    """``train.nproc`` as a number on a machine with ``gpus`` GPUs (default: those PyTorch sees):
    ``auto`` is one per GPU (1 on CPU). Training on GPUs, each process needs its own: more stop with
    one line naming ``train.nproc``."""
    gpus = visible_gpus() if gpus is None else gpus
    on_gpus = gpus > 0 and train.device != "cpu"
    if train.nproc == "auto":
        return gpus if on_gpus else 1
    nproc = int(train.nproc)
    if on_gpus and train.device in ("auto", "cuda") and nproc > gpus:
        raise VdlibError(
            f"train.nproc: {nproc} training processes asked for, but PyTorch sees {gpus} GPU(s) here "
            "(one process per GPU: set train.nproc to auto or at most that)"
        )
    return nproc


def is_worker() -> bool:
    """Whether this process was started by torchrun (then it trains; it never launches)."""
    return "LOCAL_RANK" in os.environ


def needs_launch(train: TrainConfig) -> bool:
    """Whether the params ask for more than this one process."""
    return not is_worker() and (local_processes(train) > 1 or train.nnodes > 1)


def torchrun_command(train: TrainConfig, worker: list[str], gpus: int | None = None) -> list[str]:
    """The ``python -m torch.distributed.run`` command that starts ``worker`` (a script or ``-m
    module`` and its arguments) on this machine's processes (``gpus``: as ``local_processes``)."""
    nproc = local_processes(train, gpus)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    cmd += [f"--nnodes={train.nnodes}", "--max-restarts=0"]
    if train.rdzv_endpoint:
        # Static rendezvous: global ranks follow node_rank, so rank 0 (which writes the outputs) is
        # on node 0, where dvc repro runs; c10d would hand out ranks in order of arrival.
        host, _, port = train.rdzv_endpoint.rpartition(":")
        cmd += ["--rdzv-backend=static", f"--master-addr={host}", f"--master-port={port}"]
        cmd += [f"--node-rank={train.node_rank}"]
    else:
        cmd += ["--standalone"]
    return cmd + worker


def launch(train: TrainConfig, worker: list[str]) -> None:
    """Run ``worker`` under torchrun as the params ask; one-line error when a process fails."""
    where = f"{local_processes(train)} process(es) x {train.nnodes} machine(s)"
    print(f"train: starting {where} through torchrun", flush=True)
    done = subprocess.run(torchrun_command(train, worker), check=False)
    if done.returncode:
        raise VdlibError(
            f"train: a training process failed ({where}, torchrun exit {done.returncode}; its error is "
            "above); fix it and re-run: training resumes from the last checkpoint"
        )
