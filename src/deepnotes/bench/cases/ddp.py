"""DDP with 2 processes (gloo, CPU) against 1 process: wall time of the same training run.

Both sides launch ``torchrun --standalone`` with the same global batch and epochs; the time
includes process start-up and the process-group rendezvous, which is what a user waits for. On
a machine with few cores two processes compete for them, so a ratio near or above 1 is expected
there; the case exists to measure, not to promise, a speed-up.
"""

from __future__ import annotations

import os
import subprocess
import sys

from deepnotes.bench.api import BenchItem, bench_case


def _torchrun(nproc: int, epochs: int, out: str):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "deepnotes", "train", "--model", "mlp", "--data", "digits", "--optimizer", "torch_sgd",
           "--lr", "0.05", "--batch-size", "64", "--epochs", str(epochs), "--backend", "gloo",
           "--no-progress", "--out", out, "--divergence-factor", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run():
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=600)

    return run


@bench_case("ddp_2proc", reference="1 process (torchrun --nproc_per_node=1)",
            description="deepnotes train under torchrun: 2 gloo processes vs 1, MLP on digits, wall time")
def ddp_case(quick: bool) -> list[BenchItem]:
    import shutil
    import tempfile

    epochs = 2 if quick else 10
    tmp = tempfile.mkdtemp(prefix="deepnotes-bench-ddp-")
    return [BenchItem(size=f"digits, {epochs} epochs, global batch 64",
                      ours=_torchrun(2, epochs, os.path.join(tmp, "two")),
                      reference=_torchrun(1, epochs, os.path.join(tmp, "one")), repeats=3,
                      cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True))]
