"""Stage evaluate: frames, labels, rendered videos and models → ``metrics.json`` and plot tables in
OUT_DIR. Usage: evaluate.py FRAMES LABELS RENDER_DIR OUT_DIR BASE [UPSAMPLER ...]"""

from vdlib.core.common import run_stage
from vdlib.evaluation.evaluate import evaluate


def main(frames: str, labels: str, render_dir: str, out_dir: str, *models: str) -> None:
    evaluate(frames, labels, render_dir, out_dir, list(models))


if __name__ == "__main__":
    run_stage(main)
