"""Sharing the cores between vdlib processes: each takes cores // running, and hands them back."""

import os
import subprocess
import sys

import torch

from tests.conftest import release_cores
from vdlib.core.cores import available_cores, registry, running, share_cores

OTHER = "import time, vdlib.core.cores as c; c.share_cores(); print('ready', flush=True); time.sleep(99)"


COUNT = (
    "from vdlib.core.cores import share_cores, registry; share_cores(); "
    "print(len(list(registry().glob('*'))))"
)


def test_a_second_process_halves_the_threads_and_a_killed_one_hands_them_back(tmp_path, monkeypatch):
    monkeypatch.setenv("VDLIB_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "notes.txt").write_text("a user's file in the folder they chose")
    release_cores()
    before, cores = torch.get_num_threads(), available_cores()
    other = subprocess.Popen([sys.executable, "-c", OTHER], stdout=subprocess.PIPE, text=True)
    try:
        assert share_cores() == cores and torch.get_num_threads() == cores
        assert other.stdout.readline().strip() == "ready"
        assert running() == 2
        assert share_cores() == max(1, cores // 2) and torch.get_num_threads() == max(1, cores // 2)
        assert share_cores(fixed=3) == 3  # train.threads set by hand wins
        other.kill()
        other.wait()
        # The killed process never unregistered; its file is found stale and removed.
        assert share_cores() == cores and running() == 1
        assert sorted(p.name for p in registry().iterdir()) == sorted([str(os.getpid()), "notes.txt"])
        release_cores()
        assert [p.name for p in registry().iterdir()] == ["notes.txt"]  # other files are left alone
    finally:
        other.kill()
        torch.set_num_threads(before)


def test_ddp_ranks_on_one_machine_count_even_before_they_register(tmp_path, monkeypatch):
    monkeypatch.setenv("VDLIB_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    release_cores()
    before = torch.get_num_threads()
    try:
        assert running() == 4 and share_cores() == max(1, available_cores() // 4)
    finally:
        torch.set_num_threads(before)


def test_a_process_that_exits_unregisters(tmp_path, monkeypatch):
    monkeypatch.setenv("VDLIB_RUNTIME_DIR", str(tmp_path))
    code = COUNT
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"  # registered while it ran
    assert not any(tmp_path.iterdir())  # and gone once it exited
