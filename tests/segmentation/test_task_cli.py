"""The segment task end to end: train/segment commands on a tiny shapes-seg, metrics recomputed."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import torch

from deepnotes.cli import main
from deepnotes.core.registry import DATASETS, MODELS, Entry
from deepnotes.metrics import mean_iou, pixel_accuracy
from deepnotes.segmentation.data import shapes_segmentation
from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint
from deepnotes.train.tasks import get_task, load_tasks

TINY = "shapes-seg-tiny"


@pytest.fixture
def tiny(monkeypatch):
    factory = partial(shapes_segmentation, n_train=16, n_val=8, n_test=12, image_size=32, max_size=16)
    DATASETS.names()  # load the registry first, then add the tiny set for this test only
    monkeypatch.setitem(DATASETS._entries, TINY, Entry(TINY, factory, {"task": "segment"}))
    return factory


@pytest.fixture(scope="module")
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _train(tmp_path, model="fcn8s", epochs=2):
    out = tmp_path / "run"
    code = main(["train", "--task", "segment", "--model", model, "--data", TINY, "--epochs", str(epochs),
                 "--batch-size", "8", "--model-kw", "width=4", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_train_writes_val_miou_and_test_metrics_that_recompute(tmp_path, tiny, _threads):
    out = _train(tmp_path)
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"val_miou", "val_pixel_accuracy", "train_loss"} <= set(header)
    summary = json.loads((out / "summary.json").read_text())
    # recompute the test metrics from the saved model over the whole test split at once
    load_tasks()
    splits = tiny(seed=0)
    model = get_task("segment").build_model("fcn8s", splits, width=4)
    model.load_state_dict(load_checkpoint(list_checkpoints(out / "checkpoints")[-1])["model"])
    model.eval()
    x = torch.stack([splits.test[i][0] for i in range(len(splits.test))])
    y = torch.stack([splits.test[i][1] for i in range(len(splits.test))])
    with torch.no_grad():
        pred = model(x).argmax(1)
    assert summary["test_miou"] == pytest.approx(mean_iou(y, pred, 4), abs=1e-12)
    assert summary["test_pixel_accuracy"] == pytest.approx(pixel_accuracy(y, pred, 4), abs=1e-12)


def test_segment_command_writes_masks_and_overlays(tmp_path, tiny, _threads):
    import matplotlib.pyplot as plt

    out = _train(tmp_path, epochs=1)
    img = np.random.default_rng(0).random((40, 50, 3))
    plt.imsave(tmp_path / "a.png", img)
    assert main(["segment", str(out), str(tmp_path / "a.png"), "--out", str(tmp_path / "masks")]) == 0
    mask = plt.imread(tmp_path / "masks" / "a_mask.png")
    assert mask.shape[:2] == (40, 50)
    assert (tmp_path / "masks" / "a_overlay.png").is_file()


def test_segment_command_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["segment", str(tmp_path), str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_segment_command_rejects_a_classification_run(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"task": "classification"}))
    assert main(["segment", str(tmp_path), str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 2
    assert "not 'segment'" in capsys.readouterr().err


def test_task_rejects_a_model_that_does_not_output_pixel_scores():
    task = get_task("segment")
    with pytest.raises(ValueError, match=r"must output \(N, K, H, W\) scores"):
        task._check(torch.zeros(2, 4), torch.zeros(2, 8, 8, dtype=torch.long))


def test_segment_models_are_listed_for_the_task():
    names = [n for n in MODELS.names() if MODELS.meta(n).get("task") == "segment"]
    assert {"unet", "fcn8s", "deeplabv3plus", "segnet"} <= set(names)
    assert DATASETS.meta("shapes-seg")["task"] == "segment"


def test_segment_table_command_writes_its_table(tmp_path):
    out = tmp_path / "table"
    args = ["segment-table", "--models", "fcn32s", "--minutes", "0.001", "--n-train", "8",
            "--eval-images", "4", "--threads", "1", "--out", str(out)]
    assert main(args) == 0
    rows = json.loads((out / "table.json").read_text())
    assert [r["model"] for r in rows] == ["fcn32s"] and rows[0]["epochs"] == 1
    assert 0.0 <= rows[0]["test_miou"] <= 1.0 and rows[0]["parameters"] > 0
    assert rows[0]["train_cpu_minutes"] > 0 and rows[0]["settings"]["n_train"] == 8
    assert "| fcn32s |" in (out / "table.md").read_text()
    # a second model run into the same folder adds its row; the table keeps both
    fcn8s = dict(rows[0], model="fcn8s", target_miou=0.75, target="missed")
    (out / "rows" / "fcn8s.json").write_text(json.dumps(fcn8s))
    from deepnotes.commands.segment_table import rebuild_table

    assert [r["model"] for r in rebuild_table(out)] == ["fcn32s", "fcn8s"]
    assert "≥ 0.75: missed" in (out / "table.md").read_text()


def test_segment_table_settings_come_from_the_model_record():
    from deepnotes.commands.segment_table import DEFAULTS, model_settings

    s = model_settings("unet")
    assert s["target_miou"] == 0.85 and model_settings("fcn8s")["target_miou"] == 0.75
    assert set(DEFAULTS) <= set(s)
    assert model_settings("unet", lr=0.5, batch_size=None)["lr"] == 0.5
    assert model_settings("unet", batch_size=None)["batch_size"] == s["batch_size"]


def test_cpu_budget_sets_a_cosine_learning_rate_and_stops(monkeypatch):
    import time
    from types import SimpleNamespace

    from deepnotes.commands import segment_table

    clock = [100.0]
    monkeypatch.setattr(time, "process_time", lambda: clock[0])
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    trainer = SimpleNamespace(optimizer=opt, should_stop=False)
    cb = segment_table._cpu_budget(60.0)
    cb.on_fit_start(trainer)
    clock[0] = 130.0  # half the budget used
    cb.on_batch_start(trainer, 0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    cb.on_epoch_end(trainer, 1, {})  # 30 s per epoch: another fits exactly
    assert not trainer.should_stop
    clock[0] = 145.0  # 45 s for 1 epoch: another would overrun
    cb.on_epoch_end(trainer, 1, {})
    assert trainer.should_stop


def test_segment_table_refuses_a_folder_that_holds_the_models_runs(tmp_path, capsys):
    (tmp_path / "unet" / "checkpoints").mkdir(parents=True)
    (tmp_path / "unet" / "checkpoints" / "epoch_1.pt").write_bytes(b"")
    assert main(["segment-table", "--models", "fcn8s", "unet", "--out", str(tmp_path)]) == 2
    assert "already holds runs of unet" in capsys.readouterr().err


def test_segment_table_rejects_a_classification_model(tmp_path, capsys):
    assert main(["segment-table", "--models", "mlp", "--out", str(tmp_path)]) == 2
    assert "not a segmentation model" in capsys.readouterr().err
