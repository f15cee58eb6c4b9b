"""Contract over the dataset registry: every factory returns consistent DataSplits."""

import pytest
import torch

from deepnotes.core.registry import DATASETS, TASKS
from deepnotes.data import DataSplits


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_honours_the_contract(name):
    splits = DATASETS.create(name, seed=0)
    assert isinstance(splits, DataSplits)
    assert splits.task in TASKS.names()
    assert DATASETS.meta(name).get("task", "classification") == splits.task, "registry metadata names its task"
    assert min(len(splits.train), len(splits.val), len(splits.test)) > 0
    item = splits.train[0]
    if not isinstance(item, (tuple, list)):  # a graph: its task's collate makes the (input, target) batch
        batch = TASKS.create(splits.task).collate([item])
        x_graph = batch[0] if isinstance(batch, (tuple, list)) else batch
        assert x_graph.x.shape[1:] == tuple(splits.in_shape) and torch.isfinite(x_graph.x).all()
        again = DATASETS.create(name, seed=0).train[0]
        assert torch.equal(again.x, item.x) and torch.equal(again.edge_index, item.edge_index)
        return
    x, y = item
    assert tuple(x.shape) == tuple(splits.in_shape), (name, x.shape, splits.in_shape)
    assert torch.isfinite(x).all()
    if splits.task == "classification":
        y = torch.as_tensor(y)  # a class index, or one per time step (copy task)
        assert bool((y >= 0).all()) and bool((y < splits.num_classes).all())
    if splits.task == "detect":  # torchvision's target dicts: labels 1..num_classes, 0 = background
        assert y["boxes"].shape == (len(y["labels"]), 4)
        assert bool((y["labels"] >= 1).all()) and bool((y["labels"] <= splits.num_classes).all())
    again = DATASETS.create(name, seed=0)
    assert torch.equal(again.train[0][0], x), "a dataset must be reproducible from its seed"
