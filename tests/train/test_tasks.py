"""The task protocol: a custom task trains, evaluates and resumes exactly; a two-optimizer task
resumes bitwise; a ratio metric is reduced correctly over DDP ranks; the CLI picks tasks."""

import csv
import json
import re
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import deepnotes.train.trainer as trainer_mod
from deepnotes.cli import main
from deepnotes.core.registry import TASKS
from deepnotes.data import TensorDataset
from deepnotes.train import Callback, EarlyStopping, NonFiniteLossError, Trainer
from deepnotes.train.tasks import ClassificationTask, StepContext, Task, get_task, model_fits
from tests._torchrun import run_two_ranks

pytestmark = pytest.mark.usefixtures("one_thread")


class SignTask(Task):
    """A toy task: predict the sign of the target; scored by the share of correct signs (a ratio)."""

    name = "sign"
    metrics = {"loss": False, "sign_rate": True}
    train_metrics = ("loss", "sign_rate")
    monitor = "sign_rate"

    def default_loss(self):
        return F.mse_loss

    def _sums(self, out, y, loss_value):
        n = len(y)
        return {"loss": loss_value * n, "count": n, "hits": float(((out > 0) == (y > 0)).sum()),
                "targets": float(y.numel())}

    def training_step(self, ctx, batch):
        x, y = batch
        out = ctx.model(x)
        return self._sums(out.detach(), y, ctx.optimize(ctx.loss_fn(out, y)))

    def eval_step(self, ctx, batch):
        x, y = batch
        out = ctx.module(x)
        return self._sums(out, y, float(ctx.loss_fn(out, y)))

    def summarize(self, sums):
        return {"loss": sums["loss"] / sums["count"], "sign_rate": sums["hits"] / sums["targets"]}


def _sign_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return TensorDataset(x, (x @ torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)).unsqueeze(1))


def _sign_trainer(out, epochs, task=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 1)).double()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    return Trainer(model, opt, _sign_data(50, 0), val_data=_sign_data(23, 1), task=task or SignTask(),
                   epochs=epochs, batch_size=8, seed=3, out_dir=out)


def _timeless(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _flat(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_custom_task_trains_evaluates_and_resumes_exactly(tmp_path):
    straight = _sign_trainer(tmp_path / "a", 4)
    history = straight.fit()
    assert history[-1]["val_sign_rate"] > 0.8  # it learned something
    _sign_trainer(tmp_path / "b", 2).fit()
    resumed = _sign_trainer(tmp_path / "b", 4)
    resumed.fit(resume=True)
    assert torch.equal(_flat(straight.module), _flat(resumed.module))
    assert _timeless(resumed.history) == _timeless(history)
    # metrics.csv's columns and the summary's best epoch come from the task's metric names
    with open(tmp_path / "a" / "metrics.csv") as f:
        header = next(csv.reader(f))
    assert header == ["epoch", "step", "train_loss", "train_sign_rate", "val_loss", "val_sign_rate", "lr", "seconds"]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    best = max(history, key=lambda h: h["val_sign_rate"])["epoch"]  # higher is better: max, not min
    assert summary["best_epoch_by_val_sign_rate"] == best
    # evaluate is the task's ratio over the whole set, not a mean of batch ratios
    m = straight.evaluate(_sign_data(23, 1), batch_size=5)
    val = _sign_data(23, 1)
    x, y = val.inputs, val.targets
    with torch.no_grad():
        out = straight.module.eval()(x)
    assert m["sign_rate"] == float(((out > 0) == (y > 0)).double().mean())
    assert straight.predict(x).shape == (23, 1)


def test_registered_task_is_found_by_name_and_early_stopping_follows_its_direction(monkeypatch):
    monkeypatch.setattr(TASKS, "_entries", dict(TASKS._entries))  # registered for this test only
    TASKS.add("sign", SignTask)
    assert isinstance(get_task("sign"), SignTask)
    stopper = EarlyStopping("val_sign_rate", patience=1)
    t = _sign_trainer(None, 6, task="sign")
    t.callbacks = [stopper]
    t.fit()
    assert stopper.mode == "max"


class TwoPlayerTask(Task):
    """A toy two-optimizer game: a 'critic' regresses the data, a 'maker' chases the critic's output."""

    name = "two_player"
    metrics = {"loss": False}
    train_metrics = ("critic", "maker")
    optimizer_names = ("critic", "maker")

    def training_step(self, ctx, batch):
        x, y = batch
        critic, maker = ctx.module.critic, ctx.module.maker
        c_loss = F.mse_loss(critic(x), y)
        c = ctx.optimize(c_loss, "critic")
        m_loss = (maker(x) - critic(x).detach()).pow(2).mean() + 0.1 * F.dropout(maker(x), 0.5).pow(2).mean()
        m = ctx.optimize(m_loss, "maker")
        return {"critic": c * len(x), "maker": m * len(x), "count": len(x)}

    def summarize(self, sums):
        if "critic" in sums:
            return {"critic": sums["critic"] / sums["count"], "maker": sums["maker"] / sums["count"]}
        return {"loss": sums["loss"] / sums["count"]}

    def eval_step(self, ctx, batch):
        x, y = batch
        return {"loss": float(F.mse_loss(ctx.module.maker(x), y)) * len(x), "count": len(x)}


def _two_player(out, epochs):
    torch.manual_seed(1)
    model = nn.ModuleDict({"critic": nn.Linear(4, 1), "maker": nn.Sequential(nn.Linear(4, 6), nn.ReLU(),
                                                                                nn.Linear(6, 1))}).double()
    opts = {"critic": torch.optim.SGD(model.critic.parameters(), lr=0.05, momentum=0.9),
            "maker": torch.optim.Adam(model.maker.parameters(), lr=0.02)}
    scheds = {"critic": torch.optim.lr_scheduler.StepLR(opts["critic"], 1, gamma=0.7),
              "maker": torch.optim.lr_scheduler.ExponentialLR(opts["maker"], 0.9)}
    return Trainer(model, opts, _sign_data(40, 2), val_data=_sign_data(9, 3), task=TwoPlayerTask(),
                   scheduler=scheds, epochs=epochs, batch_size=6, seed=1, out_dir=out)


@pytest.mark.parametrize("k", [1, 3])
def test_two_optimizers_resume_bitwise(tmp_path, k):
    straight = _two_player(tmp_path / "a", 5)
    straight.fit()
    _two_player(tmp_path / "b", k).fit()
    resumed = _two_player(tmp_path / "b", 5)
    resumed.fit(resume=True)
    assert torch.equal(_flat(straight.module), _flat(resumed.module))
    for name in ("critic", "maker"):
        a, b = straight.optimizers[name].state_dict(), resumed.optimizers[name].state_dict()
        assert a["param_groups"] == b["param_groups"]
        for s, r in zip(a["state"].values(), b["state"].values()):
            assert all(torch.equal(s[key], r[key]) if torch.is_tensor(s[key]) else s[key] == r[key] for key in s)
    assert _timeless(resumed.history) == _timeless(straight.history)
    with open(tmp_path / "a" / "metrics.csv") as f:
        header = next(csv.reader(f))
    assert header == ["epoch", "step", "train_critic", "train_maker", "val_loss", "lr_critic", "lr_maker", "seconds"]
    assert straight.history[1]["lr_critic"] == pytest.approx(0.05 * 0.7)


def test_negative_control_resume_without_the_second_optimizer_state_differs(tmp_path, monkeypatch):
    straight = _two_player(tmp_path / "a", 3)
    straight.fit()
    _two_player(tmp_path / "b", 1).fit()
    resumed = _two_player(tmp_path / "b", 3)
    real_load = torch.optim.Adam.load_state_dict
    monkeypatch.setattr(torch.optim.Adam, "load_state_dict", lambda self, state: None)  # drop the maker's moments
    resumed.fit(resume=True)
    monkeypatch.setattr(torch.optim.Adam, "load_state_dict", real_load)
    assert not torch.equal(_flat(straight.module), _flat(resumed.module))


def test_optimizer_and_scheduler_names_are_checked():
    model = nn.ModuleDict({"critic": nn.Linear(4, 1), "maker": nn.Linear(4, 1)})
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    data = _sign_data(8, 0)
    with pytest.raises(ValueError, match=r"needs a dict of optimizers named \['critic', 'maker'\]"):
        Trainer(model, sgd, data, task=TwoPlayerTask())
    with pytest.raises(ValueError, match="needs optimizers named"):
        Trainer(model, {"critic": sgd}, data, task=TwoPlayerTask())
    with pytest.raises(TypeError, match=r"optimizer\['maker'\] must be Optimizer"):
        Trainer(model, {"critic": sgd, "maker": "adam"}, data, task=TwoPlayerTask())
    with pytest.raises(ValueError, match=r"scheduler: no optimizer named \['gen'\]"):
        Trainer(model, {"critic": sgd, "maker": sgd}, data, task=TwoPlayerTask(), scheduler={"gen": None})
    with pytest.raises(ValueError, match="pass a dict keyed by their names"):
        Trainer(model, {"critic": sgd, "maker": sgd}, data, task=TwoPlayerTask(),
                scheduler=torch.optim.lr_scheduler.StepLR(sgd, 1))
    with pytest.raises(TypeError, match="task must be a task name or a Task"):
        Trainer(model, sgd, data, task=3)


def test_a_step_naming_an_unknown_optimizer_and_a_non_finite_second_loss(tmp_path):
    class Bad(TwoPlayerTask):
        def training_step(self, ctx, batch):
            ctx.optimize(ctx.module.critic(batch[0]).mean(), "critic")
            return {"count": 1, "critic": ctx.optimize(torch.tensor(float("nan"), requires_grad=True), "maker")}

    class Unknown(TwoPlayerTask):
        def training_step(self, ctx, batch):
            ctx.optimize(ctx.module.critic(batch[0]).mean(), "generator")

    t = _two_player(tmp_path / "bad", 2)
    t.task = Bad()
    with pytest.raises(NonFiniteLossError, match=r"\(maker update\)"):
        t.fit()
    assert json.loads((tmp_path / "bad" / "summary.json").read_text())["status"] == "non-finite loss"
    t = _two_player(None, 1)
    t.task = Unknown()
    with pytest.raises(ValueError, match="no optimizer named 'generator'"):
        t.fit()


def test_classification_task_is_the_default_and_the_trainer_names_no_task():
    model = nn.Linear(4, 2)
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), _sign_data(8, 0))
    assert isinstance(t.task, ClassificationTask)
    source = Path(trainer_mod.__file__).read_text()
    for name in TASKS.names():
        assert not re.search(rf"\b{name}\b", source), f"trainer.py mentions the task {name!r}"


def test_model_fits_declared_and_generic_tasks():
    assert model_fits({}, get_task("classification")) and model_fits({}, get_task("regression"))
    assert not model_fits({}, SignTask())  # a task without generic models takes only declared ones
    assert model_fits({"task": "sign"}, SignTask()) and model_fits({"task": ("x", "sign")}, SignTask())
    assert not model_fits({"task": "sign"}, get_task("classification"))


def test_a_task_without_state_refuses_foreign_task_state():
    with pytest.raises(ValueError, match="keeps no state"):
        SignTask().load_state_dict({"noise": torch.zeros(2)})


def test_callbacks_see_the_first_optimized_loss_of_each_step(tmp_path):
    seen = []

    class Spy(Callback):
        def on_batch_end(self, trainer, batch_index, loss):
            seen.append(loss)

    t = _two_player(None, 1)
    t.callbacks = [Spy()]
    t.fit()
    assert len(seen) == len(t.train_loader) and all(v == v for v in seen)
    assert isinstance(t._ctx, StepContext)


# -- the CLI ---------------------------------------------------------------------------------------

def test_cli_task_choice_and_mismatches(tmp_path, capsys, monkeypatch):
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    assert "classification" in out and "regression" in out and "losses:" in out and "losss" not in out
    assert main(["train", "--task", "ranking", "--out", str(tmp_path / "x")]) == 2
    assert "--task must be one of" in capsys.readouterr().err
    assert main(["train", "--task", "regression", "--data", "digits", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "classification dataset, not for task 'regression'" in err and "linear" in err
    from deepnotes.core import registry as reg

    monkeypatch.setattr(reg.MODELS, "_entries", dict(reg.MODELS._entries))
    reg.MODELS.add("toy_detector", nn.Linear, task="detect")
    assert main(["train", "--model", "toy_detector", "--data", "digits", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "not a model for task 'classification'" in err and "cnn" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_cli_regression_by_its_dataset_records_the_task(tmp_path, capsys):
    out = tmp_path / "lin"
    assert main(["train", "--model", "linear", "--data", "linear", "--epochs", "1", "--out", str(out),
                 "--no-progress"]) == 0
    assert json.loads((out / "config.json").read_text())["task"] == "regression"
    summary = json.loads((out / "summary.json").read_text())
    assert "test_loss" in summary and "test_accuracy" not in summary


# -- DDP: a ratio metric over ranks whose shards differ in size --------------------------------------

DDP_SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path

    import torch
    from torch import nn

    sys.path.insert(0, sys.argv[2])
    from test_tasks import SignTask, _sign_data
    from deepnotes.train import Trainer
    from deepnotes.train.distributed import cleanup, init_from_env

    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    rank, world, device = init_from_env("gloo")

    def trainer(distributed):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1)).double()
        return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), _sign_data(24, 0),
                       task=SignTask(), epochs=1, batch_size=8, seed=0, distributed=distributed)

    ddp = trainer(None)
    data = _sign_data(21, 5)  # 11 samples on rank 0, 10 on rank 1
    shard_rates = []
    from deepnotes.train.distributed import shard
    single = trainer(False)
    single.module.load_state_dict(ddp.module.state_dict())
    for r in range(world):  # what averaging per-rank ratios would give
        shard_rates.append(single.evaluate(shard(data, r, world))["sign_rate"])
    result = {"ddp": ddp.evaluate(data), "single": single.evaluate(data), "shard_rates": shard_rates,
              "train": ddp.fit()[-1], "world": world}
    if rank == 0:
        torch.save(result, out / "result.pt")
    cleanup()
''')


def test_ddp_reduces_a_ratio_metric_over_unequal_shards(tmp_path):
    res = run_two_ranks(DDP_SCRIPT, tmp_path, str(Path(__file__).parent), timeout=240)
    assert res["world"] == 2
    assert res["ddp"]["sign_rate"] == res["single"]["sign_rate"]  # Σ hits / Σ targets over all 21
    assert res["ddp"]["loss"] == pytest.approx(res["single"]["loss"], rel=1e-12)
    mean_of_ratios = sum(res["shard_rates"]) / 2
    assert mean_of_ratios != res["single"]["sign_rate"]  # the wrong reduction would be caught
    assert 0.0 <= res["train"]["train_sign_rate"] <= 1.0
