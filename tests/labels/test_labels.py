"""The labels file: Parquet round trip, the empty kind, atomic writes, errors, the summary, and the
labels stage's function (Parquet, preview and summary from params)."""

import json

import imageio.v3 as iio
import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import leftovers, write
from vdlib.config import LabelsConfig
from vdlib.core.common import VdlibError
from vdlib.labels import Labels, label_summary, read_labels, write_labels
from vdlib.labels.labelling import label_frames, make_labels
from vdlib.labels.tables import timestamp_labels


def test_parquet_round_trip_with_schema_and_metadata(tmp_path, small_store):
    labels = timestamp_labels(small_store, [write(tmp_path, "start,end,label,group\n0,4,a,g\n4,8,b,g\n")])
    path = write_labels(labels, tmp_path / "labels.parquet")
    schema = pq.read_schema(path)
    assert schema.field("cond").type.list_size == 2 and str(schema.field("cond").type.value_type) == "float"
    meta = json.loads(schema.metadata[b"vdlib"])
    assert meta["kind"] == "timestamps" and meta["names"] == ["g=a", "g=b"]
    back = read_labels(path)
    assert back.names == labels.names and np.array_equal(back.cond, labels.cond)
    np.testing.assert_array_equal(back.time_s, small_store.times)


def test_kind_none_writes_an_empty_cond(tmp_path, small_store):
    labels = make_labels(small_store, LabelsConfig(kind="none"))
    back = read_labels(write_labels(labels, tmp_path / "none.parquet"))
    assert back.kind == "none" and back.cond.shape == (80, 0)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    """A crash after the Parquet bytes are written but before the rename keeps the old file."""
    import vdlib.labels as mod

    labels = Labels("timestamps", ["g=a"], np.arange(3.0), np.ones((3, 1)))
    target = tmp_path / "labels.parquet"
    target.write_bytes(b"previous good file")
    original = mod.pq.write_table

    def write_then_crash(table, where, **kwargs):
        original(table, where, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(mod.pq, "write_table", write_then_crash)
    with pytest.raises(KeyboardInterrupt):
        write_labels(labels, target)
    assert target.read_bytes() == b"previous good file" and leftovers(tmp_path) == []


def test_read_labels_errors(tmp_path):
    with pytest.raises(VdlibError, match=r"no such labels file"):
        read_labels(tmp_path / "x.parquet")
    (tmp_path / "bad.parquet").write_text("nope")
    with pytest.raises(VdlibError, match=r"bad\.parquet: not a readable Parquet file"):
        read_labels(tmp_path / "bad.parquet")


def test_summary(small_store, tmp_path):
    labels = timestamp_labels(small_store, [write(tmp_path, "start,end,label\n0,2,a\n")])
    summary = label_summary(labels)
    assert summary["frames"] == 80 and summary["label_fraction"] == {"label=a": 0.25}
    assert summary["unlabelled_fraction"] == 0.75


def test_the_labels_stage_writes_labels_preview_and_summary(tmp_path, small_store):
    table = write(tmp_path, "start,end,label,group\n0,4,circle,shape\n4,8,square,shape\n")
    cfg = LabelsConfig(kind="timestamps", tables=[str(table)])
    out = tmp_path / "out"
    parquet, preview, summary = out / "labels.parquet", out / "preview.gif", out / "summary.json"
    labels = label_frames(small_store.path, cfg, parquet, preview, summary)
    assert read_labels(parquet).names == labels.names == ["shape=circle", "shape=square"]
    assert json.loads(summary.read_text())["label_fraction"] == {"shape=circle": 0.5, "shape=square": 0.5}
    assert len(iio.imread(preview)) == len(small_store)  # every frame, up to 150
