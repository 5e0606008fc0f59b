"""What every module shares: atomic outputs, JSON without NaN, one-line errors with exit status 2."""

import json
import math

import pytest

from tests.conftest import leftovers
from vdlib.core.common import VdlibError, atomic_output, run_main, write_json


def test_a_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and leftovers(tmp_path) == []
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and leftovers(tmp_path) == []


def test_a_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "stale.npy").write_text("x")
    with atomic_output(target) as tmp:
        tmp.mkdir()
        (tmp / "frames.npy").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["frames.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_writing_nothing_is_an_error_that_keeps_the_old_output(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_output(target):
        pass
    assert target.read_text() == "old"


def test_json_writes_null_for_numbers_that_do_not_apply(tmp_path):
    path = write_json(
        {"ratio": math.nan, "nested": {"psnr": math.inf, "ok": 1.5}, "list": [math.nan]}, tmp_path / "m.json"
    )
    assert json.loads(path.read_text()) == {
        "ratio": None,
        "nested": {"psnr": None, "ok": 1.5},
        "list": [None],
    }


def test_entry_points_print_one_line_and_exit_2(capsys):
    def fail() -> None:
        raise VdlibError("params.yaml: base.steps: expected an integer >= 1, got 0")

    assert run_main(fail, prog="train.py") == 2
    err = capsys.readouterr().err
    assert err == "train.py: error: params.yaml: base.steps: expected an integer >= 1, got 0\n"
    assert run_main(lambda: None) == 0
