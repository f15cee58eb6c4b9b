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
    x, y = splits.train[0]
    assert tuple(x.shape) == tuple(splits.in_shape), (name, x.shape, splits.in_shape)
    assert torch.isfinite(x).all()
    if splits.task == "classification":
        y = torch.as_tensor(y)  # a class index, or one per time step (copy task)
        assert bool((y >= 0).all()) and bool((y < splits.num_classes).all())
    again = DATASETS.create(name, seed=0)
    assert torch.equal(again.train[0][0], x), "a dataset must be reproducible from its seed"
