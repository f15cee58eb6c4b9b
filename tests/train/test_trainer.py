import csv
import json

import pytest
import torch
from torch import nn

import deepnotes.train.trainer as trainer_mod
from deepnotes.core.io import CheckpointError
from deepnotes.data import TensorDataset
from deepnotes.train import Callback, EarlyStopping, NonFiniteLossError, Trainer, list_checkpoints
from deepnotes.train.callbacks import HOOKS


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return TensorDataset(x, y)


def _model(seed=0):
    torch.manual_seed(seed)
    # dropout makes the run depend on the global torch RNG as well as the loader's generator
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))


def _trainer(out, epochs, model=None, **kw):
    model = model or _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return Trainer(model, opt, _data(), val_data=_data(32, 1), epochs=epochs, batch_size=10, seed=5,
                   out_dir=out, scheduler=sched, **kw)


def _weights(t):
    return torch.cat([p.detach().flatten() for p in t.model.parameters()])


def test_resume_is_bit_identical_to_a_straight_run(tmp_path):
    straight = _trainer(tmp_path / "a", epochs=6)
    straight.fit()
    first = _trainer(tmp_path / "b", epochs=2)
    first.fit()
    resumed = _trainer(tmp_path / "b", epochs=6, model=_model(seed=123))  # a different init is overwritten
    resumed.fit(resume=True)
    assert torch.equal(_weights(straight), _weights(resumed))
    assert resumed.step == straight.step == 6 * 10
    rows = list(csv.DictReader(open(tmp_path / "b" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1]["train_loss"] == str(straight.history[-1]["train_loss"])


def test_negative_control_resume_without_loader_generator_diverges(tmp_path, monkeypatch):
    straight = _trainer(tmp_path / "a", epochs=4)
    straight.fit()
    _trainer(tmp_path / "b", epochs=2).fit()
    monkeypatch.setattr(trainer_mod, "_restore_loader_state", lambda loader, state: None)
    resumed = _trainer(tmp_path / "b", epochs=4)
    resumed.fit(resume=True)
    assert not torch.equal(_weights(straight), _weights(resumed))


def test_keeps_last_two_checkpoints_and_writes_run_files(tmp_path):
    t = _trainer(tmp_path, epochs=4, config={"lr": 0.01})
    t.fit()
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["epoch_0003.pt", "epoch_0004.pt"]
    assert json.loads((tmp_path / "config.json").read_text()) == {"lr": 0.01}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 4 and summary["steps"] == 40
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds"
    assert any(p.name.startswith("events") for p in (tmp_path / "tensorboard").iterdir())


class _Blowup(nn.Module):
    """Finite for the first ``good_steps`` forward passes, then NaN."""

    def __init__(self, good_steps):
        super().__init__()
        self.fc = nn.Linear(6, 2)
        self.calls, self.good = 0, good_steps

    def forward(self, x):
        self.calls += 1
        out = self.fc(x)
        return out * float("nan") if self.calls > self.good and self.training else out


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    model = _Blowup(good_steps=15)  # epoch 1 (10 steps) is fine, epoch 2 breaks at its 6th step
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), _data(), epochs=5, batch_size=10,
                out_dir=tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2, step 16"):
        t.fit()
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["epoch_0001.pt"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "non-finite loss" and "epoch 2" in summary["message"]


class _Recorder(Callback):
    def __init__(self):
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            return lambda trainer, *a: self.calls.append(name)
        return super().__getattribute__(name)


def test_hook_order(tmp_path):
    rec = _Recorder()
    t = Trainer(_model(), torch.optim.SGD(_model().parameters(), lr=0.1), _data(20), val_data=_data(8),
                epochs=2, batch_size=10, out_dir=tmp_path, callbacks=[rec])
    t.fit()
    batch = ["on_batch_start", "on_after_backward", "on_batch_end"]
    epoch = ["on_epoch_start", *batch, *batch, "on_validation_end", "on_epoch_end", "on_checkpoint"]
    assert rec.calls == ["on_fit_start", *epoch, *epoch, "on_fit_end"]
    assert set(rec.calls) == set(HOOKS)


def test_early_stopping_and_evaluate_predict():
    model = _model()
    stopper = EarlyStopping(monitor="val_loss", patience=1)
    stopper.best = -1.0  # nothing can beat it, so training stops after one more epoch
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), _data(), val_data=_data(32, 1),
                epochs=10, batch_size=16, callbacks=[stopper])
    t.fit()
    assert t.epoch == 1
    metrics = t.evaluate(_data(32, 1))
    assert set(metrics) == {"loss", "accuracy"} and 0 <= metrics["accuracy"] <= 1
    assert t.predict(_data(32, 1)).shape == (32, 2)
    assert t.predict(torch.randn(5, 6)).shape == (5, 2)
    assert model.training  # evaluate/predict restore the mode


def test_regression_task_and_bad_arguments(tmp_path):
    x = torch.randn(40, 1)
    ds = TensorDataset(x, 3 * x)
    model = nn.Linear(1, 1)
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), ds, task="regression", epochs=30,
                batch_size=40)
    t.fit()
    assert abs(model.weight.item() - 3) < 1e-2 and "train_accuracy" not in t.history[-1]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="task must be one of"):
        Trainer(model, opt, ds, task="ranking")
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        Trainer(model, opt, ds, epochs=0)
    with pytest.raises(TypeError, match="optimizer must be Optimizer"):
        Trainer(model, "adam", ds)
    with pytest.raises(TypeError, match=r"callbacks\[0\] must be Callback"):
        Trainer(model, opt, ds, callbacks=[print])
    with pytest.raises(ValueError, match="resume=True needs out_dir"):
        Trainer(model, opt, ds).fit(resume=True)
    with pytest.raises(ValueError, match="no checkpoint"):
        Trainer(model, opt, ds, out_dir=tmp_path / "empty").fit(resume=True)


def test_foreign_checkpoint_is_rejected_by_name(tmp_path):
    from deepnotes.core.io import atomic_save
    from deepnotes.train import load_checkpoint

    atomic_save({"weights": torch.zeros(2)}, tmp_path / "epoch_0001.pt")
    with pytest.raises(CheckpointError, match="epoch_0001.pt.*not a deepnotes trainer checkpoint"):
        load_checkpoint(tmp_path / "epoch_0001.pt")



def test_accuracy_counts_targets_not_samples_for_sequence_outputs():
    class PerStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):  # (N, T, 3) -> (N, 4 classes, T), the layout cross_entropy expects
            return self.fc(x).transpose(1, 2)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 5, 3, generator=g)
    y = torch.randint(0, 4, (30, 5), generator=g)
    model = PerStep()
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), TensorDataset(x, y), epochs=1, batch_size=8)
    t.fit()
    assert 0.0 <= t.history[-1]["train_accuracy"] <= 1.0
    with torch.no_grad():
        expected = float((model(x).argmax(1) == y).double().mean())
    assert t.evaluate(TensorDataset(x, y))["accuracy"] == pytest.approx(expected, abs=1e-12)
