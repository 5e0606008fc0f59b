"""Stages train_base and train_upsampler@SIZE: frames + labels + params ``train`` and ``base`` or
``upsampler`` → ``models/<name>/`` and ``reports/<stage>/``. Runs under ``torchrun`` for DDP."""

from vdlib.common import run_stage
from vdlib.train import train_job_from_params, train_model


def main(
    kind: str, frames: str, labels: str, model_out: str, report_dir: str, size: str | None = None
) -> None:
    train_model(train_job_from_params(kind, frames, labels, model_out, report_dir, size))


if __name__ == "__main__":
    run_stage(main)
