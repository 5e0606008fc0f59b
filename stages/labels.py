"""Stage labels: frame store + params ``labels`` → labels Parquet, a preview GIF and a summary."""

from vdlib.config import load_section
from vdlib.frames import FrameStore
from vdlib.labels import label_summary, make_labels, write_labels
from vdlib.preview import write_preview
from vdlib.stage import run_stage, write_json


def main(frames: str, out: str, preview: str, summary: str) -> None:
    store = FrameStore.open(frames)
    labels = make_labels(store, load_section("labels"))
    write_labels(labels, out)
    write_preview(store, labels, preview)
    write_json(label_summary(labels), summary)


if __name__ == "__main__":
    run_stage(main)
