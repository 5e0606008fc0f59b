"""The README's demo results are the committed ``reports/eval/metrics.json``, number for number."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _demo_table() -> str:
    """The README's table of demo metrics (from its heading line to the first blank line after it)."""
    text = (ROOT / "README.md").read_text()
    start = text.index("On the demo (`make demo`")
    return text[start : text.index("\n\n", text.index("| metric |", start))]


def test_readme_demo_table_shows_the_committed_metrics():
    m = json.loads((ROOT / "reports" / "eval" / "metrics.json").read_text())
    table = _demo_table()

    def pair(values: dict[str, dict[str, float]]) -> str:
        gen, real = values["generated"], values["real_heldout"]
        return ", ".join(f"{g} {gen[g]:.2f} ({real[g]:.2f})" for g in ("shape", "colour"))

    temporal, cost, val = m["temporal"], m["sampling"], m["val_loss"]
    # One window per video (render.<model>.window_frames) leaves no border pairs to score.
    border = "no window borders" if temporal["border_ratio"] is None else f"{temporal['border_ratio']:.2f}"
    expected = [
        pair(m["label_accuracy"]),
        pair(m["identity_stability"]),
        f"{temporal['ratio']:.2f} ({border})",
        f"{temporal['motion_distance']:.2f} ({temporal['motion_distance_real_heldout']:.2f})",
        f"{cost['seconds_per_video']:.1f} s",
        f"{cost['evaluations_per_video']:.0f} network evaluations",
        " / ".join(f"{val[name]:.4f}" for name in ("base", "upsampler_64", "upsampler_128")),
        " / ".join(f"{m['label_gain'][name]:.3f}" for name in ("base", "upsampler_64", "upsampler_128")),
    ]
    expected += [f"base {cost['per_model']['base']['seconds']:.1f}"]
    for name in ("upsampler_64", "upsampler_128"):
        f = m["upsampler"][name]
        expected.append(
            f"| {name} PSNR / SSIM vs bicubic | {f['psnr']:.2f} dB / {f['ssim']:.3f} vs "
            f"{f['bicubic_psnr']:.2f} dB / {f['bicubic_ssim']:.3f} |"
        )
        expected.append(f"{name} {cost['per_model'][name]['seconds']:.1f}")
    missing = [cell for cell in expected if cell not in table]
    assert not missing, f"README.md's demo table does not show {missing} (reports/eval/metrics.json)"
