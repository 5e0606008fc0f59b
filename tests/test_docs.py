"""The README's results are the committed ``reports/eval/metrics.json``, number for number; the
documentation says what the code does and what was measured, with dates, not how it was made."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The number in brackets beside a metric: what it is compared with.
COMPANIONS = [
    (r"^(label_accuracy|identity_stability)\.generated\.(\w+)$", r"\1.real_heldout.\2"),
    (r"^temporal\.motion_distance$", "temporal.motion_distance_real_heldout"),
    (r"^upsampler\.(\w+)\.(psnr|ssim)$", r"upsampler.\1.bicubic_\2"),
    (r"^val_loss\.(\w+)$", r"train_loss.\1"),
    (r"^sampling\.seconds_per_video$", "sampling.evaluations_per_video"),
]


def results_rows() -> list[tuple[str, str]]:
    """(metric key, value cell) of every row of the README's results table."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Results") : text.index("## Reproducibility")]
    return re.findall(r"^\| [^|]+ \| `([\w.]+)` \| ([^|]+) \|", section, re.M)


def lookup(metrics: dict, key: str) -> float:
    node = metrics
    for part in key.split("."):
        node = node[part]
    return float(node)


def shown(value: float, cell: str) -> str:
    """``value`` with as many decimals as ``cell`` shows."""
    decimals = len(cell.split(".")[1]) if "." in cell else 0
    return f"{value:.{decimals}f}"


def test_readme_results_are_the_committed_metrics():
    metrics = json.loads((ROOT / "reports" / "eval" / "metrics.json").read_text())
    rows = results_rows()
    assert len(rows) >= 10
    for key, cell in rows:
        numbers = re.findall(r"-?\d+(?:\.\d+)?", cell)
        assert numbers[0] == shown(lookup(metrics, key), numbers[0]), f"{key}: README says {cell.strip()}"
        companion = next((re.sub(p, r, key) for p, r in COMPANIONS if re.match(p, key)), None)
        if len(numbers) > 1:
            assert companion, f"{key}: the bracketed number has no metric"
            expected = shown(lookup(metrics, companion), numbers[1])
            assert numbers[1] == expected, f"{companion}: README says {cell.strip()}"


HISTORY = re.compile(
    r"\b(this|last|next|earlier|previous) stops?\b|\bthat stop\b|\bstops? (ago|before)\b|\bstop's", re.I
)


def test_no_document_speaks_of_how_the_project_was_made():
    """README, docs/, reports/ and the changelog say what the code does and what was measured, with
    dates and commits: no "the last stop", "stops ago"."""
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", *ROOT.glob("docs/*.md"), *ROOT.glob("reports/*.md")]
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if HISTORY.search(line)
    ]
    assert not found, "\n".join(found)


def test_readme_is_a_newcomers_length_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert 250 <= len(text.splitlines()) <= 420
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to {target}, which is not there"
