"""The detector zoo: settings read from the registrations, a tiny training through the command
(rows, regenerated tables from every row, the run directory usable by ``deepnotes detect``),
the mask mAP@0.5 against torchmetrics' segm mAP, and the command's errors."""

import json

import pytest
import torch
from torchmetrics.detection import MeanAveragePrecision

from deepnotes.cli import main
from deepnotes.core.registry import MODELS
from deepnotes.detection.zoo import (
    mask_map50,
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
    assert {"yolov1", "centernet", "fcos"} <= set(names)
    for n in names:
        s = zoo_settings(n)
        assert MODELS.meta(n)["task"] == "detect"
        assert s["epochs"] >= 1 and s["target_map50"] is not None


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


def _random_masks(g, n, size=12):
    x0 = torch.randint(0, size - 4, (n,), generator=g)
    y0 = torch.randint(0, size - 4, (n,), generator=g)
    w = torch.randint(2, 5, (n,), generator=g)
    h = torch.randint(2, 5, (n,), generator=g)
    ys, xs = torch.arange(size).view(1, -1, 1), torch.arange(size).view(1, 1, -1)
    m = (xs >= x0.view(-1, 1, 1)) & (xs < (x0 + w).view(-1, 1, 1)) & (ys >= y0.view(-1, 1, 1)) & (ys < (y0 + h).view(-1, 1, 1))
    boxes = torch.stack([x0, y0, x0 + w, y0 + h], 1).float()
    return m, boxes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_map50_equals_torchmetrics_segm(seed):
    g = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for _ in range(5):
        k = int(torch.randint(1, 4, (1,), generator=g))
        gm, gb = _random_masks(g, k)
        gl = torch.randint(1, 3, (k,), generator=g)
        # predictions: the ground truth jittered, plus random extra masks
        d = int(torch.randint(0, 4, (1,), generator=g))
        em, eb = _random_masks(g, d)
        pm = torch.cat([torch.roll(gm, int(torch.randint(-1, 2, (1,), generator=g)), dims=2), em])
        pl = torch.cat([gl, torch.randint(1, 3, (d,), generator=g)])
        scores = torch.rand(k + d, generator=g)
        preds.append({"masks": pm, "labels": pl, "scores": scores, "boxes": torch.cat([gb, eb])})
        targets.append({"masks": gm, "labels": gl, "boxes": gb})
    ref = MeanAveragePrecision(iou_type="segm", backend="pycocotools")
    ref.update([{k: v for k, v in p.items() if k != "boxes"} for p in preds],
               [{k: v for k, v in t.items() if k != "boxes"} for t in targets])
    want = float(ref.compute()["map_50"])
    assert mask_map50(preds, targets) == pytest.approx(want, abs=1e-6)  # torchmetrics returns float32


def test_read_rows_of_an_empty_folder(tmp_path):
    assert read_rows(tmp_path) == []
    assert write_table(tmp_path) == []
    assert (tmp_path / "table.md").read_text().count("\n") == 4
