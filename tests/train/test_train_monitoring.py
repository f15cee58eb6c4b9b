import csv
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.cli import main
from deepnotes.core.registry import MODELS
from deepnotes.data import TensorDataset
from deepnotes.models.residual_mlp import ResidualMLP
from deepnotes.nn.regularizers import l1_penalty, l2_penalty
from deepnotes.train import Trainer, list_checkpoints
from deepnotes.train.guards import DivergenceError, DivergenceGuard, MaxNorm, WeightPenalty
from deepnotes.train.layerwise import greedy_layerwise
from deepnotes.train.lr_find import lr_range_test
from deepnotes.train.probes import GradientNormProbe, layer_gradient_norms
from deepnotes.train.sanity import (
    SanityChecks,
    check_initial_loss,
    check_overfit_tiny,
    expected_initial_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n=64, d=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return TensorDataset(x, (x[:, :classes].argmax(1)))


def _net(seed=0, d=6, classes=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, classes)).double()


def test_divergence_guard_aborts_and_keeps_the_last_checkpoint(tmp_path):
    model = _net()
    # epoch 1 at a sane rate, then the rate jumps (via the scheduler) and the loss explodes
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 if e == 0 else 2000.0)
    guard = DivergenceGuard(3.0)
    t = Trainer(model, opt, _data(), epochs=4, batch_size=16, out_dir=tmp_path, scheduler=sched, callbacks=[guard])
    with pytest.raises(DivergenceError, match="exceeds 3 x the initial loss"):
        t.fit()
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["epoch_0001.pt"]
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "diverged"
    calm = Trainer(_net(), torch.optim.SGD(_net().parameters(), lr=0.05), _data(), epochs=2, batch_size=16,
                   callbacks=[DivergenceGuard(3.0)])
    calm.fit()
    assert calm.epoch == 2
    with pytest.raises(ValueError, match="factor must be > 1"):
        DivergenceGuard(1.0)


def test_weight_penalty_callback_equals_penalized_loss():
    a, b = _net(), _net()
    x, y = _data().tensors if hasattr(_data(), "tensors") else (None, None)
    data = _data()
    t = Trainer(a, torch.optim.SGD(a.parameters(), lr=0.1), data, epochs=3, batch_size=64,
                callbacks=[WeightPenalty(l1=0.01, l2=0.05)])
    t.fit()
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.stack([data[i][1] for i in range(len(data))])
    opt = torch.optim.SGD(b.parameters(), lr=0.1)
    for _ in range(3):  # one full batch per epoch: the order does not matter
        opt.zero_grad()
        (F.cross_entropy(b(x), y) + l1_penalty(b, 0.01) + l2_penalty(b, 0.05)).backward()
        opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)
    m = _net()
    Trainer(m, torch.optim.SGD(m.parameters(), lr=1.0), _data(), epochs=2, batch_size=8,
            callbacks=[MaxNorm(0.5)]).fit()
    for w in (m[0].weight, m[2].weight):
        assert w.norm(dim=1).max() <= 0.5 + 1e-12
    with pytest.raises(ValueError, match="l2 must be >= 0"):
        WeightPenalty(l2=-1.0)


class _Constant(nn.Module):
    """Ignores its input: can never fit a subset (a broken-model control)."""

    def __init__(self, classes=3):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(classes, dtype=torch.float64))
        self.w = nn.Parameter(torch.zeros(1, 1, dtype=torch.float64))

    def forward(self, x):
        return self.bias.expand(len(x), -1) + 0 * self.w.sum()


def test_sanity_checks_pass_on_a_good_model_and_fail_on_broken_ones(tmp_path):
    data = _data(200)
    assert expected_initial_loss(10) == pytest.approx(2.302585093) and expected_initial_loss(10, "svm") == 9
    torch.manual_seed(0)
    small = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    with torch.no_grad():
        small[2].weight.mul_(0.01)
    assert check_initial_loss(small, data).passed
    assert check_initial_loss(small, data, "svm").passed
    big = _net()
    with torch.no_grad():
        big[2].weight.mul_(100)
    res = check_initial_loss(big, data)
    assert not res.passed and res.measured > 2 * res.expected
    assert check_overfit_tiny(_net(), data, n=20, steps=300).passed
    assert not check_overfit_tiny(_Constant(), data, n=20, steps=100).passed
    with pytest.raises(ValueError, match="rtol must be > 0"):
        check_initial_loss(small, data, rtol=0.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        check_initial_loss(small, data, kind="hinge")
    cb = SanityChecks()
    Trainer(small, torch.optim.SGD(small.parameters(), lr=0.1), data, epochs=1, out_dir=tmp_path,
            callbacks=[cb]).fit()
    saved = json.loads((tmp_path / "sanity.json").read_text())
    assert [r["name"] for r in saved] == ["initial_loss", "overfit_tiny_subset"] and all(r["passed"] for r in saved)


def test_lr_range_test_flat_then_diverges_and_restores_the_model():
    model = _net()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    res = lr_range_test(model, opt, _data(256), start_lr=1e-6, end_lr=1e3, num_iter=80, batch_size=32)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert opt.param_groups[0]["lr"] == 0.1
    assert res.diverged_at is not None and res.diverged_at > 1.0
    # too low: flat; the suggested rate lies where the loss falls
    assert abs(res.losses[15] - res.losses[12]) < 0.02
    assert 1e-3 < res.suggested_lr < res.diverged_at
    with pytest.raises(ValueError, match="end_lr must be > start_lr"):
        lr_range_test(model, opt, _data(), start_lr=1.0, end_lr=0.1)


def test_gradient_norm_probe_matches_manual_norms(tmp_path):
    model = _net()
    x = torch.randn(5, 6, dtype=torch.float64)
    model(x).sum().backward()
    norms = layer_gradient_norms(model)
    assert list(norms) == ["0.weight", "2.weight"]
    assert norms["0.weight"] == pytest.approx(float(torch.linalg.vector_norm(model[0].weight.grad)), rel=1e-12)
    probe = GradientNormProbe(every=2)
    Trainer(_net(), torch.optim.SGD(_net().parameters(), lr=0.1), _data(), epochs=1, batch_size=16,
            out_dir=tmp_path, callbacks=[probe]).fit()
    assert [s for s, _ in probe.records] == [1, 3]
    rows = list(csv.reader(open(tmp_path / "grad_norms.csv")))
    assert rows[0] == ["step", "0.weight", "2.weight"] and len(rows) == 3


def test_greedy_layerwise_and_residual_mlp():
    data = _data(120)
    res = greedy_layerwise(6, [8, 8], 3, data, activation="sigmoid", epochs_per_stage=2, lr=0.05, batch_size=32)
    assert len(res.stage_metrics) == 2
    assert [type(m).__name__ for m in res.model] == ["Flatten", "Sequential", "Sequential", "Linear"]
    assert all(p.requires_grad for p in res.model.parameters())
    assert res.model(torch.randn(4, 6, dtype=torch.float64)).shape == (4, 3)
    with pytest.raises(ValueError, match="hidden must list"):
        greedy_layerwise(6, [], 3, data)
    m = MODELS.create("residual_mlp", (1, 4, 4), 5, depth=3, activation="sigmoid")
    assert isinstance(m, ResidualMLP)
    out = m(torch.randn(7, 1, 4, 4))
    assert out.shape == (7, 5) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    with pytest.raises(ValueError, match="activation must be one of"):
        ResidualMLP((4,), 2, activation="gelu")


def test_train_cli_flags_write_curves_sanity_and_grad_norms(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "mlp", "--data", "digits", "--optimizer", "torch_sgd", "--lr", "0.1",
            "--batch-size", "128", "--epochs", "2", "--device", "cpu", "--no-progress", "--out", str(out),
            "--l2", "1e-4", "--l1", "1e-5", "--max-norm", "3", "--sanity", "--grad-norms", "5"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "sanity PASS initial_loss" in text and "overfit_tiny_subset" in text
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "grad_norms.csv").is_file() and (out / "sanity.json").is_file()
    assert json.loads((out / "config.json").read_text())["max_norm"] == 3.0
    for flag, value, msg in (("--l2", "-1", "--l2 must be >= 0"), ("--max-norm", "0", "--max-norm must be > 0"),
                             ("--divergence-factor", "0.5", "--divergence-factor must be 0")):
        assert main(["train", flag, value, "--out", str(tmp_path / "x")]) == 2
        assert msg in capsys.readouterr().err
    assert main(["train", "--data", "linear", "--model", "linear", "--sanity", "--out", str(tmp_path / "y")]) == 2
    assert "--sanity needs a classification dataset" in capsys.readouterr().err
    assert main(["train", "--loss", "mse", "--sanity", "--out", str(tmp_path / "z")]) == 2
    assert "cross_entropy and multiclass_svm only" in capsys.readouterr().err
    # too high a rate trips the guard: exit 1, status "diverged"
    bad = ["train", "--model", "mlp", "--data", "digits", "--optimizer", "torch_sgd", "--lr", "50",
           "--epochs", "1", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "bad")]
    assert main(bad) == 1
    status = json.loads((tmp_path / "bad" / "summary.json").read_text())["status"]
    assert status in ("diverged", "non-finite loss")


def test_lr_find_cli(tmp_path, capsys):
    assert main(["lr-find", "--model", "mlp", "--data", "digits", "--optimizer", "torch_sgd", "--iters", "60",
                 "--end-lr", "100", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "lr_find.json").read_text())
    assert len(saved["lrs"]) <= 60 and saved["suggested_lr"] is not None
    assert (tmp_path / "lr_find.png").is_file() and "suggested lr" in capsys.readouterr().out


def test_divergence_guard_on_resume_uses_the_first_epoch_loss(tmp_path):
    Trainer(_net(), torch.optim.SGD(_net().parameters(), lr=0.05), _data(), epochs=1, batch_size=16,
            out_dir=tmp_path).fit()
    guard = DivergenceGuard(3.0)
    m = _net()
    t = Trainer(m, torch.optim.SGD(m.parameters(), lr=0.05), _data(), epochs=2, batch_size=16, out_dir=tmp_path,
                callbacks=[guard])
    t.fit(resume=True)
    assert guard.initial == t.history[0]["train_loss"] and t.epoch == 2


def test_divergence_guard_ignores_a_single_spike_but_not_a_rising_cost():
    class _T:
        step = 0
        history: list = []

    guard = DivergenceGuard(3.0, window=5)
    for loss in (2.0, 1.8, 1.7, 9.0, 1.6, 1.5):  # one batch at 4.5x the initial loss
        guard.on_batch_end(_T(), 0, loss)
    rising = DivergenceGuard(3.0, window=5)
    with pytest.raises(DivergenceError, match=r"mean of the last 4 batches\) at step 0 exceeds 3 x"):
        for loss in (2.0, 4.0, 8.0, 16.0, 32.0):
            rising.on_batch_end(_T(), 0, loss)
    with pytest.raises(ValueError, match="window must be >= 1"):
        DivergenceGuard(3.0, window=0)
