"""Timestamp tables: times, validation with file and line, groups, multi-hot labels, many videos."""

import warnings

import numpy as np
import pytest

from tests.conftest import SHORT_DEMO, write
from vdlib.config import ExtractConfig
from vdlib.core.common import VdlibError
from vdlib.data.demo import demo_schedule, write_schedule_csv
from vdlib.data.extract import extract_frames
from vdlib.labels.tables import LabelRangeWarning, parse_time, read_table, timestamp_labels


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12", 12.0),
        ("12.5", 12.5),
        ("01:02", 62.0),
        ("1:02.25", 62.25),
        ("01:02:03.5", 3723.5),
        (" 0:00:07 ", 7.0),
    ],
)
def test_parse_time(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "01:75", "-3", "1,5"])
def test_parse_time_rejects(text):
    with pytest.raises(ValueError):
        parse_time(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("start,end\n0,1\n", "table.csv:1: missing column 'label' (expected columns start,end,label[,group]"),
        (
            "start,end,label\n0,1,a\n00:00:05,00:00:03,b\n",
            "table.csv:3: end 00:00:03 is not after start 00:00:05",
        ),
        (
            "start,end,label\n0,1,a\n1,2,b\nx1,3,c\n",
            "table.csv:4: start: cannot parse 'x1' as seconds or HH:MM:SS",
        ),
        ("start,end,label\n0,1:7x,a\n", "table.csv:2: end: cannot parse '1:7x'"),
        ("", "table.csv: empty table"),
        ("start,end,label\n", "table.csv: table has a header but no rows"),
        ("start,end,label\n0,1\n", "table.csv:2: expected 3 fields"),
        ("start,end,label\n0,1,\n", "table.csv:2: label: empty label name"),
    ],
)
def test_table_validation_names_file_and_line(tmp_path, text, message):
    with pytest.raises(VdlibError) as err:
        read_table(write(tmp_path, text))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_table_parsing_groups_and_times(tmp_path):
    path = write(
        tmp_path,
        "Start,End,Label,Group\n00:00:01,00:00:02.5,hall,location\n3,4,jill,character\n5,6,paused,\n",
    )
    rows = read_table(path)
    assert [(r.start, r.end, r.label, r.group) for r in rows] == [
        (1.0, 2.5, "hall", "location"),
        (3.0, 4.0, "jill", "character"),
        (5.0, 6.0, "paused", "label"),
    ]


def test_multi_hot_groups_over_several_tables(tmp_path, small_store):
    locations = write(tmp_path, "start,end,label,group\n0,3,hall,location\n3,8,garden,location\n", "loc.csv")
    overlay = write(
        tmp_path,
        "start,end,label,group\n1,2,jill,character\n1.5,2.5,nemesis,character\n6,7,paused,menu\n",
        "c.csv",
    )
    labels = timestamp_labels(small_store, [locations, overlay])
    assert labels.names == [
        "location=hall", "location=garden", "character=jill", "character=nemesis", "menu=paused",
    ]  # fmt: skip
    assert labels.groups == {
        "location": ["hall", "garden"],
        "character": ["jill", "nemesis"],
        "menu": ["paused"],
    }
    at = {round(t, 1): row for t, row in zip(labels.time_s, labels.cond, strict=True)}
    assert list(at[0.0]) == [1, 0, 0, 0, 0]
    assert list(at[1.7]) == [1, 0, 1, 1, 0]  # two characters at once: multi-hot
    assert list(at[2.9]) == [1, 0, 0, 0, 0]  # [start, end): 3.0 belongs to the next range
    assert list(at[3.0]) == [0, 1, 0, 0, 0]
    assert list(at[6.5]) == [0, 1, 0, 0, 1]
    assert labels.cond.dtype == np.float32 and labels.cond.shape == (80, 5)


def test_demo_table_gives_one_label_per_group_on_every_frame(tmp_path, small_store):
    table = tmp_path / "demo.csv"
    write_schedule_csv(demo_schedule(SHORT_DEMO), table)
    labels = timestamp_labels(small_store, [table])
    for group, names in labels.groups.items():
        cols = [labels.names.index(f"{group}={n}") for n in names]
        assert (labels.cond[:, cols].sum(1) == 1).all()


def test_range_past_the_end_warns_with_label_and_times(tmp_path, small_store):
    table = write(tmp_path, "start,end,label\n0,4,early\n00:01:00,00:01:30,late\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = timestamp_labels(small_store, [table])
    messages = [str(w.message) for w in caught if issubclass(w.category, LabelRangeWarning)]
    assert len(messages) == 1
    assert (
        "table.csv:3: range 60-90 s of label=late lies past the video's end (frames cover 0-8 s)"
        in messages[0]
    )
    assert labels.cond[:, labels.names.index("label=late")].sum() == 0


def test_tables_name_the_video_of_each_row_in_a_store_of_many(tmp_path, landscape_video, portrait_video):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "city.mp4").write_bytes(landscape_video.read_bytes())
    (folder / "hall.mkv").write_bytes(portrait_video.read_bytes())
    store = extract_frames(folder, tmp_path / "frames", ExtractConfig(resolution=32, fps=5))
    table = tmp_path / "t.csv"
    table.write_text("start,end,label,video\n0,1,day,city\n1,2,night,city\n0,2,night,hall\n")
    labels = timestamp_labels(store, [table])
    day, night = labels.cond[:, 0] > 0, labels.cond[:, 1] > 0
    assert list(day) == [True] * 5 + [False] * 15 and list(night) == [False] * 5 + [True] * 15
    table.write_text("start,end,label\n0,1,day\n")
    with pytest.raises(VdlibError, match=r"t.csv:2: video: the frame store holds 2 videos \(city, hall\)"):
        timestamp_labels(store, [table])
    table.write_text("start,end,label,video\n0,1,day,garden\n")
    with pytest.raises(VdlibError, match=r"'garden' is not a video of the frame store \(valid videos: city"):
        timestamp_labels(store, [table])
