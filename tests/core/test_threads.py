"""Thread-count helpers: scoped changes are undone, and 'auto' yields to other processes."""

import pytest
import torch

from deepnotes.cli import main
from deepnotes.commands._common import thread_count
from deepnotes.core.threads import auto_threads, single_threaded, torch_threads


def test_torch_threads_restores_the_count_even_when_the_block_changes_it():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        torch.set_num_threads(1)
    assert torch.get_num_threads() == before
    assert single_threaded(torch.get_num_threads)() == 1


@pytest.mark.parametrize(
    ("load", "cores", "default", "expected"),
    [
        (0.1, 2, 2, 2),   # quiet: torch's own choice
        (1.8, 2, 2, 1),   # another job holds most of the machine
        (15.0, 2, 2, 1),  # heavily oversubscribed: never below one
        (0.3, 16, 4, 4),  # never above torch's setting (OMP_NUM_THREADS, an earlier choice)
        (6.2, 16, 16, 10),
    ],
)
def test_auto_threads_leaves_the_busy_cores_alone(load, cores, default, expected):
    assert auto_threads(default=default, load=load, cores=cores) == expected


def test_auto_threads_without_a_load_average_keeps_torchs_choice(monkeypatch):
    import os

    def unavailable():
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unavailable)
    assert auto_threads(default=3) == 3


def test_threads_option_values():
    assert 1 <= thread_count("auto") <= torch.get_num_threads()
    assert thread_count(None) == thread_count("auto")
    assert thread_count("1") == 1
    with pytest.raises(ValueError, match="--threads must be a positive integer or 'auto'"):
        thread_count("many")
    with pytest.raises(ValueError, match="--threads must be >= 1"):
        thread_count("0")


def test_a_command_gives_back_the_callers_thread_count(tmp_path):
    before = torch.get_num_threads()
    assert main(["train", "--model", "linear", "--data", "linear", "--epochs", "1", "--threads", "1",
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert torch.get_num_threads() == before
