"""Run a script under ``torchrun`` with two gloo processes and load what rank 0 saved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch


def run_two_ranks(script: str, out: Path, *args: str, timeout: int = 300) -> dict:
    """Write ``script`` to ``out``, run it on 2 CPU ranks with ``out`` and ``args`` as its arguments,
    and return ``torch.load(out / "result.pt")`` (the script's rank 0 saves it there).

    gloo on a heavily loaded CPU occasionally aborts one rank (SIGABRT) while tearing its threads
    down; a rerun from scratch is allowed for that one signature only — any other failure fails.
    """
    path = Path(out) / "ddp_script.py"
    path.write_text(script)
    root = str(Path(__file__).resolve().parents[1])  # scripts may import test modules (``tests.…``)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(path),
           str(out), *args]
    for _attempt in range(3):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode == 0 or "SIGABRT" not in proc.stderr:
            break
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(Path(out) / "result.pt", weights_only=True)
