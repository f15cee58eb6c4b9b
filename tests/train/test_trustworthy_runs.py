"""Runs you can trust: the schedule after an extension, one writer per run directory, an honest
summary in every ending, checkpoints that do not fit named, and no traceback for a user's mistake."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

import deepnotes.train.trainer as trainer_mod
from deepnotes.cli import main
from deepnotes.core.io import CheckpointError
from deepnotes.core.runlock import RunDirectoryBusyError, RunLock, check_writable_folder
from deepnotes.data import TensorDataset
from deepnotes.train import Callback, Trainer, list_checkpoints
from deepnotes.train.reporting import EpochReporter

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def _trainer(out, epochs=2, model=None, opt=None, **kw):
    torch.manual_seed(0)
    model = model or nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.1)
    return Trainer(model, opt, _data(), val_data=_data(12, 1), epochs=epochs, batch_size=8, out_dir=out, **kw)


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def _lrs(out):
    rows = (out / "metrics.csv").read_text().splitlines()
    col = rows[0].split(",").index("lr")
    return [float(r.split(",")[col]) for r in rows[1:]]


# -- 1: the schedule after extending a run ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("schedule, expected", [
    # cosine over 4 epochs from the start: 0.01·(1 + cos(π t / 4)) / 2 at t = 2, 3
    ("cosine", [0.01, 0.005, 0.005, 0.01 * (1 + 2 ** -0.5 * -1) / 2]),
    # step: ×0.1 at 50 % and 75 % of the 4 epochs; the first 2 epochs ran the 2-epoch plan (milestone 1)
    ("step", [0.01, 0.001, 0.001, 0.0001]),
])
def test_extending_a_run_rebuilds_the_schedule_for_the_new_horizon(tmp_path, schedule, expected):
    out = tmp_path / "r"
    base = ["train", "--model", "linear", "--data", "digits", "--lr", "0.01", "--schedule", schedule,
            "--out", str(out), "--no-progress", "--threads", "1"]
    assert main([*base, "--epochs", "2"]) == 0
    assert main([*base, "--epochs", "4", "--resume"]) == 0
    assert _lrs(out) == pytest.approx(expected, rel=1e-12)


# -- 2: summary.json says how the run ended ---------------------------------------------------------

class _Raise(Callback):
    def __init__(self, exc):
        self.exc = exc

    def on_batch_end(self, trainer, batch_index, loss):
        if trainer.epoch == 1:
            raise self.exc


def test_ctrl_c_is_recorded_as_interrupted(tmp_path):
    t = _trainer(tmp_path / "r", epochs=3, callbacks=[_Raise(KeyboardInterrupt())])
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    s = _summary(tmp_path / "r")
    assert s["status"] == "interrupted" and s["epochs_completed"] == 1


def test_a_full_disk_is_recorded_as_failed_and_the_cli_exits_1(tmp_path, monkeypatch, capsys):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trainer_mod, "save_checkpoint", full)
    t = _trainer(tmp_path / "lib")
    with pytest.raises(OSError):
        t.fit()
    s = _summary(tmp_path / "lib")
    assert s["status"] == "failed" and "No space left" in s["message"]
    code = main(["train", "--model", "linear", "--epochs", "1", "--out", str(tmp_path / "cli"), "--no-progress"])
    assert code == 1 and "No space left" in capsys.readouterr().out
    assert _summary(tmp_path / "cli")["status"] == "failed"


def test_ctrl_c_in_the_cli_exits_130_with_an_interrupted_summary(tmp_path, monkeypatch, capsys):
    def interrupt(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_run_epoch", interrupt)
    assert main(["train", "--model", "linear", "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress"]) == 130
    assert _summary(tmp_path / "r")["status"] == "interrupted"


def test_a_loss_that_does_not_fit_and_an_empty_validation_split_fail_before_training(tmp_path, capsys):
    assert main(["train", "--model", "mlp", "--loss", "mse", "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    assert "--loss mse does not fit the classification data" in capsys.readouterr().err
    assert not (tmp_path / "r" / "summary.json").exists()
    model = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="val_data is empty"):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), _data(), val_data=_data(0))


def test_sanity_failure_stops_with_exit_1(tmp_path, monkeypatch, capsys):
    from deepnotes.train import sanity

    def failing(*a, **k):
        return sanity.SanityResult("overfit_tiny_subset", False, 1.0, 0.05, "forced failure for the test")

    monkeypatch.setattr(sanity, "check_overfit_tiny", failing)
    code = main(["train", "--model", "mlp", "--sanity", "--epochs", "3", "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 1 and "sanity checks failed" in capsys.readouterr().out
    s = _summary(tmp_path / "r")
    assert s["status"] == "failed" and s["epochs_completed"] == 0


# -- 3: a resume keeps the run's settings, read from the checkpoint when config.json is gone -----------

@pytest.mark.slow
def test_resume_without_config_json_refuses_changed_settings(tmp_path, capsys):
    out = tmp_path / "r"
    base = ["train", "--model", "linear", "--out", str(out), "--no-progress", "--threads", "1"]
    assert main([*base, "--epochs", "1", "--lr", "0.001"]) == 0
    (out / "config.json").unlink()
    assert main([*base, "--epochs", "2", "--lr", "0.5", "--resume"]) == 2
    assert "lr: saved 0.001 vs now 0.5" in capsys.readouterr().err
    assert main([*base, "--epochs", "2", "--lr", "0.001", "--resume"]) == 0
    assert json.loads((out / "config.json").read_text())["lr"] == 0.001


# -- 6, 13b: one writer per run directory; a library run never takes over another run's folder --------

HOLDER = textwrap.dedent('''
    import sys, time
    from deepnotes.core.runlock import RunLock
    lock = RunLock(sys.argv[1]).acquire()
    print("held", flush=True)
    time.sleep(60)
''')


def _hold(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_and_a_dead_writer_leaves_no_lock(tmp_path):
    out = tmp_path / "r"
    holder = _hold(out)
    try:
        with pytest.raises(RunDirectoryBusyError, match=rf"in use by process {holder.pid}"):
            _trainer(out).fit()
        assert main(["train", "--model", "linear", "--epochs", "1", "--out", str(out), "--no-progress"]) == 2
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / ".lock").exists()  # the file stays; the kernel released the lock with the process
    _trainer(out, epochs=1).fit()
    with RunLock(out):  # released after fit
        pass


def test_fit_refuses_a_folder_holding_another_runs_checkpoints(tmp_path):
    out = tmp_path / "r"
    _trainer(out, epochs=1).fit()
    before = list_checkpoints(out / "checkpoints")
    config = (out / "config.json").read_text()
    with pytest.raises(ValueError, match="already holds the checkpoints of a run"):
        _trainer(out, epochs=1).fit()
    assert list_checkpoints(out / "checkpoints") == before and (out / "config.json").read_text() == config
    _trainer(out, epochs=2).fit(resume=True)  # continuing it is fine, and keeps its config.json
    assert (out / "config.json").read_text() == config


# -- 8: temporaries of a writer killed mid-write are cleaned on the next start -----------------------

def test_stale_temporaries_are_removed_on_the_next_start(tmp_path):
    out = tmp_path / "r"
    _trainer(out, epochs=1).fit()
    stale = out / "checkpoints" / ".epoch_0002.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    _trainer(out, epochs=2).fit(resume=True)
    assert not stale.exists()


def test_a_writer_killed_mid_checkpoint_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    script = textwrap.dedent('''
        import os, sys, torch
        from torch import nn
        import deepnotes.core.io as io_mod
        from deepnotes.data import TensorDataset
        from deepnotes.train import Trainer
        real = io_mod.os.replace
        def die(src, dst):
            os.kill(os.getpid(), 9)  # killed after the temporary is written, before it is renamed
        io_mod.os.replace = die
        x = torch.randn(16, 4)
        m = nn.Linear(4, 2)
        Trainer(m, torch.optim.SGD(m.parameters(), lr=0.1), TensorDataset(x, (x[:, 0] > 0).long()), epochs=1,
                batch_size=8, out_dir=sys.argv[1]).fit()
    ''')
    out = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    leftovers = list(out.rglob(".*.tmp"))
    assert leftovers, "the kill left a temporary behind"
    _trainer(out, epochs=1).fit()  # no checkpoint was completed: a fresh run may start here
    assert not list(out.rglob(".*.tmp"))


# -- 9: checkpoints that do not fit are named -------------------------------------------------------

def test_checkpoints_that_do_not_fit_this_run_are_named(tmp_path):
    out = tmp_path / "r"
    _trainer(out, epochs=1).fit()
    ckpt = list_checkpoints(out / "checkpoints")[-1]
    other = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))  # another architecture
    with pytest.raises(CheckpointError, match=rf"{ckpt.name}.*does not fit this run"):
        _trainer(out, epochs=2, model=other).fit(resume=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(CheckpointError, match="saved optimizer is a different kind"):
        _trainer(out, epochs=2, model=model, opt=torch.optim.Adam(model.parameters())).fit(resume=True)
    for broken in ({"drop": "model"}, {"rng": {"torch": torch.zeros(3, dtype=torch.uint8)}}):
        state = torch.load(ckpt, weights_only=True)
        if "drop" in broken:
            del state[broken["drop"]]
        else:
            state["rng"] = broken["rng"]
        torch.save(state, ckpt)
        with pytest.raises(CheckpointError, match=rf"{ckpt.name}.*does not fit this run"):
            _trainer(out, epochs=2).fit(resume=True)


# -- 6c: one line per epoch as it ends ------------------------------------------------------------------

def test_epoch_lines_are_emitted_as_each_epoch_ends():
    lines = []

    class Check(Callback):
        def on_epoch_start(self, trainer, epoch):
            assert len([line for line in lines if line.startswith("epoch")]) == epoch - 1

    t = _trainer(None, epochs=3, callbacks=[EpochReporter(lines.append), Check()])
    t.fit()
    assert [line.split()[:2] for line in lines] == [["epoch", "1"], ["epoch", "2"], ["epoch", "3"]]
    assert "val_accuracy" in lines[0]


# -- 7, 11: a bad output location is found before any work ---------------------------------------------

def test_bad_output_locations_are_refused_before_work(tmp_path, monkeypatch, capsys):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    for out, expected in ((afile, "exists and is not a folder"), (afile / "sub", "which is a file"),
                          ("/dev/null", "exists and is not a folder")):
        for cmd in (["train", "--model", "linear", "--epochs", "1"], ["lr-find", "--iters", "5"],
                    ["bench", "--only", "roc_auc", "--quick"], ["tune", "--trials", "1", "--epochs", "1", "--param", "lr=loguniform:1e-3:1e-1"]):
            t0 = time.perf_counter()
            assert main([*cmd, "--out", str(out)]) == 2, cmd
            err = capsys.readouterr().err
            assert expected in err and "Traceback" not in err, (cmd, err)
            assert time.perf_counter() - t0 < 30  # refused at once, not after the work
    real_write = type(tmp_path).write_bytes

    def read_only(self, data):
        if ".write-test-" in self.name:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_write(self, data)

    monkeypatch.setattr(type(tmp_path), "write_bytes", read_only)
    with pytest.raises(ValueError, match="is not writable: Read-only file system"):
        check_writable_folder(tmp_path / "ro")


# -- 10, 14: tune goes on after a failed trial; study names are names -----------------------------------

def test_a_failed_trial_is_recorded_and_the_search_goes_on(tmp_path):
    from deepnotes.train import tune
    from deepnotes.train.trainer import NonFiniteLossError

    space = tune.make_space([tune.parse_param("lr=uniform:0:1")])
    seen = []

    def objective(trial, params):
        seen.append(trial.number)
        if trial.number % 2 == 0:
            raise NonFiniteLossError("loss is nan at epoch 1")
        return params["lr"]

    storage = tune.open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = tune.run_search(objective, space, storage=storage, study_name="s", n_trials=4, sampler="random")
    states = [t.state.name for t in study.trials]
    assert seen == [0, 1, 2, 3] and states == ["FAIL", "COMPLETE", "FAIL", "COMPLETE"]
    assert "loss is nan" in study.trials[0].user_attrs["fail_reason"]


def test_study_names_cannot_escape_the_output_folder(tmp_path, capsys):
    for bad in ("x/../../../escaped", "../up", ".hidden", "", "a/b"):
        assert main(["tune", "--study", bad, "--out", str(tmp_path / "t")]) == 2
        assert "--study must be a name" in capsys.readouterr().err
    assert not any(tmp_path.parent.glob("escaped*"))


# -- 16: bench cleanup runs also when a case fails -------------------------------------------------------

def test_bench_item_cleanup_runs_even_when_timing_fails(tmp_path):
    from deepnotes.bench.api import BenchCase, BenchItem
    from deepnotes.bench.runner import run_case

    cleaned = []

    def boom():
        raise RuntimeError("case failed")

    case = BenchCase("t", "ref", (), None, lambda quick: [BenchItem("s", boom, boom, cleanup=lambda: cleaned.append(1))], "")
    with pytest.raises(RuntimeError):
        run_case(case, quick=True)
    assert cleaned == [1]


# -- 13: the autograd command ----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, expected", [
    (["x/y", "x=1", "y=0"], "division by zero"),
    (["x**1000000", "x=10"], "too large for a float64"),
    (["x*10**400", "x=1"], "too large for a float64"),
    (["+".join(["x"] * 800), "x=1"], "nested too deeply"),
])
def test_autograd_command_mistakes_are_one_line_errors(argv, expected, capsys):
    assert main(["autograd", *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# -- every README command with bad values: exit 2, one line, no traceback ---------------------------------

@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "0"],
    ["train", "--model", "nope"],
    ["train", "--threads", "0"],
    ["train", "--task", "nope"],
    ["train", "--data", "folder:/nonexistent"],
    ["lab", "--only", "99z"],
    ["bench", "--only", "nope"],
    ["bench", "--only", ""],
    ["lr-find", "--model", "nope"],
    ["lr-find", "--threads", "-1"],
    ["tune", "--trials", "0"],
    ["tune", "--param", "lr=nope:1:2"],
    ["topics", "--chapter", "99"],
    ["autograd", "x +", "x=1"],
    ["autograd", "x", "x=abc"],
])
def test_readme_commands_with_bad_values_end_with_one_line(argv, tmp_path, capsys):
    assert main([*argv, *([] if argv[0] in ("autograd", "topics", "lab") else ["--out", str(tmp_path / "o")])]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip() and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv", [
    ["track", "--threads", "0"],
    ["segment", "run", "img.png", "--threads", "two"],
    ["detect", "run", "img.png", "--threads", "0"],
    ["explain", "run", "--threads", "0"],
    ["sample", "run", "--threads", "0"],
])
def test_commands_that_run_models_take_threads(argv, tmp_path, capsys):
    """--threads is checked first (before the run folder), with the option named."""
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--threads must be" in err and "Traceback" not in err


def test_lock_file_records_the_holder(tmp_path):
    with RunLock(tmp_path) as lock:
        assert lock.held and (tmp_path / ".lock").read_text() == str(os.getpid())


# -- 13c: papercuts of the README tour -------------------------------------------------------------------

def test_lr_find_and_tune_take_folder_data_and_lr_find_explains_its_options(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    for name in ("a", "b"):
        for i in range(6):
            (tmp_path / "imgs" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((5, 5, 3), 30 * i + (100 if name == "b" else 0), dtype=np.uint8)).save(
                tmp_path / "imgs" / name / f"{i}.png")
    data = f"folder:{tmp_path / 'imgs'}"
    assert main(["lr-find", "--data", data, "--iters", "5", "--batch-size", "4", "--out", str(tmp_path / "lr")]) == 0
    assert (tmp_path / "lr" / "lr_find.json").is_file()
    assert main(["tune", "--data", data, "--trials", "1", "--epochs", "1", "--batch-size", "4",
                 "--param", "lr=loguniform:1e-3:1e-2", "--out", str(tmp_path / "tune")]) == 0
    with pytest.raises(SystemExit):
        main(["lr-find", "--help"])
    help_text = capsys.readouterr().out
    for option in ("--start-lr", "--end-lr", "--iters", "--threads"):
        line = next(line for line in help_text.splitlines() if option in line)
        assert len(line.split(option, 1)[1].strip()) > 10 or "default" in help_text, option
    assert "first learning rate" in help_text and "training steps over the range" in help_text
