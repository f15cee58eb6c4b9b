"""The detector zoo: settings read from the registrations, a tiny training through the command
(rows, regenerated tables from every row, the run directory usable by ``deepnotes detect``),
the mask mAP@0.5 against torchmetrics' segm mAP, and the command's errors."""

import json

import pytest
import torch

from deepnotes.cli import main
from deepnotes.core.registry import MODELS
from deepnotes.detection.zoo import (
    read_rows,
    target_status,
    write_table,
    zoo_models,
    zoo_settings,
)

TINY = ["--set", "epochs=1", "--set", "batch_size=4",
        "--set", "data_kw={'n_train': 4, 'n_val': 2, 'n_test': 3, 'image_size': 64, 'max_size': 24}"]


def test_every_zoo_model_is_a_detector_with_a_target():
    names = zoo_models()
    assert {"yolov1", "centernet", "fcos", "ssd", "retinanet", "overfeat"} <= set(names)
    for n in names:
        s = zoo_settings(n)
        assert MODELS.meta(n)["task"] == "detect"
        assert s["epochs"] >= 1
        if n in ("yolov1", "centernet", "fcos", "ssd", "retinanet"):  # the targets
            assert s["target_map50"] == (0.5 if n == "yolov1" else 0.8)


def test_zoo_command_trains_writes_rows_and_regenerates_the_table(tmp_path, capsys):
    out = tmp_path / "zoo"
    assert main(["zoo", "detect", "--models", "yolov1", "--out", str(out), "--threads", "1", *TINY]) == 0
    row = json.loads((out / "rows" / "yolov1.json").read_text())
    assert set(row) >= {"map_50", "map", "mask_map_50", "cpu_minutes", "fps", "params", "target"}
    assert row["mask_map_50"] is None and row["epochs"] == 1 and row["n_test"] == 3
    assert 0 <= row["map_50"] <= 1 and row["cpu_minutes"] > 0 and row["fps"] > 0
    assert row["params"] == sum(p.numel() for p in MODELS.create("yolov1", (3, 64, 64), 3).parameters())
    assert row["overrides"]["epochs"] == 1
    # a second person's row in the same folder: the table is rebuilt from both
    other = dict(row, model="other", map_50=0.9, target_map50=0.8, target="met", overrides={})
    (out / "rows" / "other.json").write_text(json.dumps(other))
    rows = write_table(out)
    assert [r["model"] for r in rows] == ["other", "yolov1"]
    md = (out / "table.md").read_text()
    assert "| other | 0.900 |" in md and "| yolov1 * |" in md
    assert "| met |" in md and "not tested (overridden settings)" in md  # a reduced run tests no target
    assert json.loads((out / "table.json").read_text())[0]["model"] == "other"
    assert (out / "table.png").stat().st_size > 1000
    # the run directory is a detection run `deepnotes detect` can load
    config = json.loads((out / "runs" / "yolov1" / "config.json").read_text())
    assert config["task"] == "detect" and config["model"] == "yolov1"
    assert list((out / "runs" / "yolov1" / "checkpoints").glob("*.pt"))
    # training it again needs --replace
    capsys.readouterr()
    assert main(["zoo", "detect", "--models", "yolov1", "--out", str(out), *TINY]) == 2
    assert "--replace" in capsys.readouterr().err


def test_zoo_command_errors(tmp_path, capsys):
    assert main(["zoo", "detect", "--models", "mlp", "--out", str(tmp_path)]) == 2
    assert "not a detector" in capsys.readouterr().err
    assert main(["zoo", "detect", "--models", "nosuch", "--out", str(tmp_path)]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert main(["zoo", "detect", "--models", "yolov1", "--out", str(tmp_path), "--set", "epoch=3"]) == 2
    assert "unknown keys ['epoch']" in capsys.readouterr().err
    assert main(["zoo", "detect", "--out", str(tmp_path), "--set", "schedule='step'"]) == 2
    assert "schedule" in capsys.readouterr().err
    (tmp_path / "rows").mkdir()
    (tmp_path / "rows" / "bad.json").write_text("{")
    assert main(["zoo", "detect", "--out", str(tmp_path), "--table-only"]) == 2
    assert "bad.json" in capsys.readouterr().err
    assert not list(tmp_path.glob("runs"))


def test_target_status():
    assert target_status(0.81, 9.0, 0.8) == "met"
    assert target_status(0.79, 9.0, 0.8) == "missed (mAP)"
    assert target_status(0.81, 10.5, 0.8) == "missed (time)"
    assert target_status(0.1, 1.0, None) == "-"
    assert target_status(0.86, 14.0, 0.85, budget_minutes=15.0) == "met"  # a two-stage budget
    assert target_status(0.86, 15.5, 0.85, budget_minutes=15.0) == "missed (time)"


def _random_masks(g, n, size=12):
    x0 = torch.randint(0, size - 4, (n,), generator=g)
    y0 = torch.randint(0, size - 4, (n,), generator=g)
    w = torch.randint(2, 5, (n,), generator=g)
    h = torch.randint(2, 5, (n,), generator=g)
    ys, xs = torch.arange(size).view(1, -1, 1), torch.arange(size).view(1, 1, -1)
    m = (xs >= x0.view(-1, 1, 1)) & (xs < (x0 + w).view(-1, 1, 1)) & (ys >= y0.view(-1, 1, 1)) & (ys < (y0 + h).view(-1, 1, 1))
    boxes = torch.stack([x0, y0, x0 + w, y0 + h], 1).float()
    return m, boxes


def test_read_rows_of_an_empty_folder(tmp_path):
    assert read_rows(tmp_path) == []
    assert write_table(tmp_path) == []
    assert (tmp_path / "table.md").read_text().count("\n") == 4


@pytest.mark.parametrize("name", ["ssd", "retinanet", "overfeat"])
def test_each_new_detector_trains_through_the_trainer(tmp_path, name):
    from deepnotes.detection.zoo import train_and_measure

    over = {"epochs": 1, "batch_size": 4, "model_kw": {"width": 8},
            "data_kw": {"n_train": 4, "n_val": 2, "n_test": 3, "image_size": 64, "max_size": 24}}
    row = train_and_measure(name, tmp_path, overrides=over)
    assert row["model"] == name and 0 <= row["map_50"] <= 1 and row["epochs"] == 1
    assert row["params"] == sum(p.numel() for p in MODELS.create(name, (3, 64, 64), 3, width=8).parameters())
    assert (tmp_path / "rows" / f"{name}.json").is_file()
