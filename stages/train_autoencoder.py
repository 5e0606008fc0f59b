"""Stage train_autoencoder: frames + params ``autoencoder`` (and the base model's size and held-out
split) → ``models/autoencoder/`` and ``reports/train_autoencoder/``; with ``autoencoder.steps: 0`` a
folder that says there is none, and the base model diffuses pixels. Its metrics: the held-out
reconstructions' PSNR/SSIM, and the same frames' brought down to the latents' size and back.
Usage: train_autoencoder.py FRAMES MODEL_OUT REPORTS"""

from vdlib.core.common import run_stage
from vdlib.evaluation.evaluate import autoencoder_fidelity
from vdlib.training.autoencoder import autoencoder_job_from_params, train_autoencoder


def main(frames: str, model_out: str, report_dir: str) -> None:
    train_autoencoder(autoencoder_job_from_params(frames, model_out, report_dir), autoencoder_fidelity)


if __name__ == "__main__":
    run_stage(main)
