"""``--task segment --data shapes``: the segment task trains on a detection dataset's semantic masks,
while ``--data shapes`` alone (or ``--task detect``) stays a detection run; shapes-seg still works."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch

from deepnotes.cli import main
from deepnotes.commands.train import _resolve_task
from deepnotes.core.registry import DATASETS, Entry
from deepnotes.data.shapes import shapes
from deepnotes.data.splits import DataSplits
from deepnotes.metrics import mean_iou
from deepnotes.segmentation.data import pixel_classes, semantic_target, shapes_segmentation
from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint
from deepnotes.train.tasks import get_task, load_tasks

TINY = "shapes-detect-tiny"


@pytest.fixture
def tiny(monkeypatch):
    factory = partial(shapes, n_train=16, n_val=8, n_test=12, image_size=32, max_objects=3, max_size=16)
    DATASETS.names()  # load the registry first, then add the tiny detection set for this test only
    monkeypatch.setitem(DATASETS._entries, TINY, Entry(TINY, factory, {"task": "detect"}))
    return factory


@pytest.fixture(scope="module")
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_segment_task_accepts_shapes_and_detect_stays_detect():
    load_tasks()
    assert _resolve_task("segment", "unet", "shapes").name == "segment"
    assert _resolve_task(None, "centernet", "shapes").name == "detect"
    assert _resolve_task("detect", "centernet", "shapes").name == "detect"
    assert _resolve_task(None, "unet", "shapes-seg").name == "segment"  # the segmentation view remains
    with pytest.raises(ValueError, match="not a model for task 'detect'"):
        _resolve_task(None, "unet", "shapes")


def test_collate_reads_the_semantic_mask_of_detection_items():
    splits = shapes(n_train=3, n_val=1, n_test=1, image_size=32, max_size=16)
    task = get_task("segment")
    x, y = task.collate([splits.train[i] for i in range(3)])
    assert x.shape == (3, 3, 32, 32) and y.shape == (3, 32, 32) and y.dtype == torch.int64
    for i in range(3):
        assert torch.equal(y[i], splits.train[i][1]["semantic"])
    assert pixel_classes(splits) == splits.num_classes + 1 == 4
    seg = shapes_segmentation(n_train=2, n_val=1, n_test=1, image_size=32, max_size=16)
    assert pixel_classes(seg) == 4
    _, masks = task.collate([seg.train[0], seg.train[1]])
    assert torch.equal(masks[1], seg.train[1][1])


def test_detection_data_without_semantic_masks_is_refused():
    target = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    with pytest.raises(ValueError, match="needs a 'semantic' mask"):
        semantic_target(target)
    with pytest.raises(TypeError, match="target must be a mask tensor"):
        semantic_target([1, 2])
    data = [(torch.zeros(3, 8, 8), target)]
    splits = DataSplits(data, data, data, in_shape=(3, 8, 8), num_classes=2, task="detect")
    with pytest.raises(ValueError, match="needs a 'semantic' mask"):
        get_task("segment").build_model("fcn8s", splits)


def test_train_segment_on_detection_shapes_writes_test_miou(tmp_path, tiny, _threads):
    out = tmp_path / "run"
    code = main(["train", "--task", "segment", "--model", "fcn8s", "--data", TINY, "--epochs", "1",
                 "--batch-size", "8", "--model-kw", "width=4", "--out", str(out), "--no-progress"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "segment" and config["data"] == TINY
    # the saved model scores 4 pixel classes and its test mIoU recomputes from the semantic masks
    splits = tiny(seed=0)
    model = get_task("segment").build_model("fcn8s", splits, width=4)
    model.load_state_dict(load_checkpoint(list_checkpoints(out / "checkpoints")[-1])["model"])
    model.eval()
    x = torch.stack([splits.test[i][0] for i in range(len(splits.test))])
    y = torch.stack([splits.test[i][1]["semantic"] for i in range(len(splits.test))])
    with torch.no_grad():
        scores = model(x)
    assert scores.shape[1] == 4
    assert summary["test_miou"] == pytest.approx(mean_iou(y, scores.argmax(1), 4), abs=1e-12)
