"""DDP through torchrun: 2 CPU processes (gloo) against a single-process run with the same global batch."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from deepnotes.cli import main
from deepnotes.data import TensorDataset

pytestmark = pytest.mark.usefixtures("one_thread")

SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path

    import torch
    from torch import nn

    from deepnotes.data import TensorDataset
    from deepnotes.train import Trainer
    from deepnotes.train.distributed import cleanup, init_from_env

    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    rank, world, device = init_from_env("gloo")

    def data(n, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 5, generator=g, dtype=torch.float64)
        return TensorDataset(x, (x[:, 0] - x[:, 1] > 0).long() + (x[:, 2] > 1).long())

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()

    def trainer(m, epochs, folder):
        opt = torch.optim.SGD(m.parameters(), lr=0.2, momentum=0.5)
        return Trainer(m, opt, data(48, 0), val_data=data(21, 1), epochs=epochs, batch_size=12, seed=4,
                       out_dir=out / folder)

    straight = trainer(model(), 3, "a")
    straight.fit()
    metrics = straight.evaluate(data(21, 1))
    trainer(model(), 1, "b").fit()
    resumed = trainer(model(), 3, "b")
    resumed.fit(resume=True)
    if rank == 0:
        torch.save({"weights": [p.detach() for p in straight.module.parameters()],
                    "resumed": [p.detach() for p in resumed.module.parameters()],
                    "eval": metrics, "world": world, "ddp": type(straight.model).__name__}, out / "result.pt")
    cleanup()
''')


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    return x, (x[:, 0] - x[:, 1] > 0).long() + (x[:, 2] > 1).long()


def _single_process_reference():
    """A plain loop over the same per-epoch permutation (DistributedSampler's: seed + epoch), batch 12."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    opt = torch.optim.SGD(m.parameters(), lr=0.2, momentum=0.5)
    x, y = _data(48, 0)
    for epoch in range(3):
        perm = torch.randperm(48, generator=torch.Generator().manual_seed(4 + epoch))
        for k in range(4):
            idx = perm[12 * k: 12 * (k + 1)]
            opt.zero_grad()
            F.cross_entropy(m(x[idx]), y[idx]).backward()
            opt.step()
    xv, yv = _data(21, 1)
    with torch.no_grad():
        out = m(xv)
    return m, {"loss": F.cross_entropy(out, yv).item(), "accuracy": (out.argmax(1) == yv).double().mean().item()}


def test_two_process_ddp_equals_single_process(tmp_path):
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path)]
    # gloo on a heavily loaded CPU occasionally aborts one rank (SIGABRT, "terminate called without an
    # active exception") while tearing its threads down; seen about once in 20 runs of the full suite,
    # never in 8 standalone runs. A rerun from scratch is allowed for that one signature only; any
    # other failure, or a wrong number, fails the test.
    for _attempt in range(3):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
        if proc.returncode == 0 or "SIGABRT" not in proc.stderr:
            break
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = torch.load(tmp_path / "result.pt", weights_only=True)
    assert res["world"] == 2 and res["ddp"] == "DistributedDataParallel"
    ref, ref_eval = _single_process_reference()
    for ours, theirs in zip(res["weights"], ref.parameters()):
        torch.testing.assert_close(ours, theirs.detach(), rtol=1e-6, atol=1e-6)
    for a, b in zip(res["resumed"], res["weights"]):  # resume under DDP continues the same run
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    # 21 validation samples over 2 ranks: each counted exactly once
    assert abs(res["eval"]["loss"] - ref_eval["loss"]) < 1e-6
    assert res["eval"]["accuracy"] == pytest.approx(ref_eval["accuracy"], abs=1e-12)
    # only rank 0 wrote: one row per epoch, the newest two checkpoints
    rows = (tmp_path / "a" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == ["epoch_0002.pt", "epoch_0003.pt"]


def test_negative_control_padded_sampler_counts_a_sample_twice():
    """What the no-padding evaluation avoids: DistributedSampler repeats a sample on 21 items / 2 ranks."""
    xv, _ = _data(21, 1)
    ds = TensorDataset(xv, torch.zeros(21))
    seen = [i for r in range(2) for i in DistributedSampler(ds, num_replicas=2, rank=r, shuffle=False)]
    assert len(seen) == 22 and len(set(seen)) == 21


def _torchrun_env(monkeypatch, world):
    for k, v in {"RANK": "0", "WORLD_SIZE": str(world), "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(k, v)


def test_torchrun_bad_backend_and_world_size_fail_before_joining(tmp_path, monkeypatch, capsys):
    _torchrun_env(monkeypatch, 2)
    base = ["train", "--data", "digits", "--out", str(tmp_path / "r"), "--no-progress", "--epochs", "1"]
    assert main([*base, "--backend", "mpi2"]) == 2
    assert "backend must be one of" in capsys.readouterr().err
    _torchrun_env(monkeypatch, 4096)
    assert main([*base, "--backend", "gloo", "--batch-size", "4096"]) == 2
    assert "world size 4096 is larger than the training set" in capsys.readouterr().err
    _torchrun_env(monkeypatch, 2)
    assert main([*base, "--backend", "gloo", "--batch-size", "33"]) == 2
    assert "divisible by the world size 2" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_distributed_true_without_a_process_group_is_refused():
    from deepnotes.train import Trainer

    model = nn.Linear(5, 3)
    x, y = _data(8, 0)
    with pytest.raises(ValueError, match="needs an initialized process group"):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), TensorDataset(x, y), distributed=True)
