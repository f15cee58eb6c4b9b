import json
import subprocess
import sys

import pytest

from deepnotes import __version__
from deepnotes.cli import build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("topics", "lab", "bench", "train"):
        assert cmd in out
    sub = build_parser()._subparsers._group_actions[0].choices
    for name, parser in sub.items():
        assert parser.format_help(), name


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_version_via_python_m():
    out = subprocess.run([sys.executable, "-m", "deepnotes", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"deepnotes {__version__}"


def test_topics_lists_ids_and_status(capsys):
    assert main(["topics", "--chapter", "1"]) == 0
    out = capsys.readouterr().out
    assert "1.1" in out and "1.4" in out and "1a" in out and "implemented" in out
    assert main(["topics", "--chapter", "99"]) == 2


def test_lab_quick_end_to_end(tmp_path, capsys):
    assert main(["lab", "--quick", "--only", "1a", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results[0]["id"] == "1a" and results[0]["verdict"] == "holds"
    assert (tmp_path / "report.html").is_file()
    assert main(["lab", "--only", "1zz", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown claim '1zz'" in err and "1a" in err


def test_bench_quick_end_to_end(tmp_path, capsys):
    assert main(["bench", "--quick", "--only", "trainer_overhead", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "bench.json").read_text())
    assert rows[0]["case"] == "trainer_overhead" and rows[0]["ratio"] > 0
    assert main(["bench", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert "trainer_overhead" in capsys.readouterr().err


def test_train_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "mlp", "--data", "digits", "--optimizer", "torch_sgd", "--lr", "0.1",
            "--batch-size", "64", "--seed", "1", "--device", "cpu", "--out", str(out), "--no-progress"]
    assert main([*args, "--epochs", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and 0 <= summary["test_accuracy"] <= 1
    assert main([*args, "--epochs", "2"]) == 2  # checkpoints exist: refuse to overwrite silently
    assert "pass --resume" in capsys.readouterr().err
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs_completed"] == 2
    changed = [a if a != "0.1" else "0.2" for a in args]
    assert main([*changed, "--epochs", "3", "--resume"]) == 2
    assert "lr: saved 0.1 vs now 0.2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "kind", "valid"),
    [("--model", "transformerxl", "model", "mlp"), ("--data", "imagenet", "dataset", "digits"),
     ("--optimizer", "lion", "optimizer", "torch_sgd")],
)
def test_train_unknown_names_list_valid_ones(tmp_path, capsys, flag, value, kind, valid):
    assert main(["train", flag, value, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"unknown {kind} '{value}'" in err and valid in err


def test_train_bad_values_and_list(tmp_path, capsys):
    assert main(["train", "--lr", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "--lr must be > 0" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    assert "models" in out and "digits" in out


def test_threads_option_is_validated(tmp_path, capsys):
    assert main(["lab", "--threads", "0", "--only", "1a", "--out", str(tmp_path)]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err
    assert main(["bench", "--threads", "0", "--only", "trainer_overhead", "--out", str(tmp_path)]) == 2


def test_train_schedule_and_model_kw(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "mlp", "--data", "digits", "--optimizer", "torch_sgd", "--lr", "0.1",
            "--epochs", "2", "--schedule", "cosine", "--model-kw", "hidden=16", "--model-kw", "depth=1",
            "--device", "cpu", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    lrs = [float(r.split(",")[6]) for r in rows]
    assert lrs == pytest.approx([0.1, 0.05])  # cosine over 2 epochs: 0.1, then 0.1·(1 + cos(π/2))/2
    config = json.loads((out / "config.json").read_text())
    assert config["schedule"] == "cosine" and config["model_kw"] == ["hidden=16", "depth=1"]
    assert main([*args, "--model-kw", "hidden", "--out", str(tmp_path / "b")]) == 2
    assert "--model-kw must look like KEY=VALUE" in capsys.readouterr().err
    assert main([*args, "--model-kw", "widht=3", "--out", str(tmp_path / "c")]) == 2
    assert "widht" in capsys.readouterr().err
