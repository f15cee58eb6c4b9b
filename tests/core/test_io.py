import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from deepnotes.core.io import (
    CheckpointError,
    atomic_save,
    atomic_write_json,
    atomic_write_text,
    safe_load,
)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]
    atomic_write_json(tmp_path / "c.json", {"x": torch.tensor([1, 2])})
    assert '"x"' in (tmp_path / "c.json").read_text()


def test_safe_load_round_trip(tmp_path):
    obj = {"w": torch.randn(3), "epoch": 4, "nested": {"lr": 0.1}}
    atomic_save(obj, tmp_path / "ck.pt")
    back = safe_load(tmp_path / "ck.pt")
    assert torch.equal(back["w"], obj["w"]) and back["epoch"] == 4 and back["nested"] == {"lr": 0.1}


def test_missing_truncated_and_foreign_files_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt.*does not exist"):
        safe_load(tmp_path / "nope.pt")
    atomic_save({"w": torch.randn(1000)}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="trunc.pt.*truncated, corrupt"):
        safe_load(tmp_path / "trunc.pt")
    (tmp_path / "text.pt").write_text("hello, not a checkpoint")
    with pytest.raises(CheckpointError, match="text.pt"):
        safe_load(tmp_path / "text.pt")


class _Evil:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    torch.save({"model": _Evil(str(marker))}, bad)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="evil.pt.*unsafe"):
        safe_load(bad)
    assert not marker.exists()
    # control: a plain unpickle of the same payload would indeed run code
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(_Evil(str(marker))))
    pickle.loads(plain.read_bytes())
    assert marker.exists()


def test_killed_writer_leaves_target_absent_or_complete(tmp_path):
    """SIGKILL a process in the middle of repeated atomic saves of large tensors."""
    target = tmp_path / "big.pt"
    script = textwrap.dedent(
        f"""
        import sys, torch
        from deepnotes.core.io import atomic_save
        i = 0
        print("ready", flush=True)
        while True:
            atomic_save({{"value": torch.full((4_000_000,), float(i % 2))}}, {str(target)!r})
            i += 1
        """
    )
    for delay in (0.05, 0.4, 1.0):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if target.exists():
            value = safe_load(target)["value"]
            assert value.shape == (4_000_000,)
            assert bool((value == value[0]).all()) and float(value[0]) in (0.0, 1.0)
        # whatever temp file the killed writer left is never mistaken for the target
        assert all(p.name == "big.pt" or p.name.endswith(".tmp") for p in tmp_path.iterdir())
