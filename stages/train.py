"""Stages train_base and train_upsampler@SIZE: frames + labels + params ``train`` and ``base`` or
``upsampler`` → ``models/<name>/`` and ``reports/<stage>/``. The base model diffuses the latents of
the autoencoder in AUTOENCODER when that folder holds one (stage train_autoencoder). With
``train.nproc`` or ``train.nnodes`` above 1 it starts itself under torchrun (DDP).
Usage: train.py base FRAMES LABELS MODEL_OUT REPORTS [AUTOENCODER]
       train.py upsampler FRAMES LABELS MODEL_OUT REPORTS SIZE"""

import sys

from vdlib.core.common import run_stage
from vdlib.training.launch import launch, needs_launch
from vdlib.training.train import train_job_from_params, train_model


def main(
    kind: str,
    frames: str,
    labels: str,
    model_out: str,
    report_dir: str,
    size_or_autoencoder: str | None = None,
) -> None:
    if kind == "base":
        job = train_job_from_params(
            kind, frames, labels, model_out, report_dir, autoencoder=size_or_autoencoder
        )
    else:
        job = train_job_from_params(kind, frames, labels, model_out, report_dir, size_or_autoencoder)
    if needs_launch(job.train):
        launch(job.train, [__file__, *sys.argv[1:]])
    else:
        train_model(job)


if __name__ == "__main__":
    run_stage(main)
