"""Feeding strategies: the batches equal torch's BatchSampler(RandomSampler) for one generator."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

from deepnotes.optim import batch_indices


@pytest.mark.parametrize("n, size", [(10, 3), (7, 7), (5, 1), (1, 4)])
def test_minibatches_equal_torch_batch_sampler(n, size):
    ours = batch_indices(n, "minibatch", size, generator=torch.Generator().manual_seed(3))
    ref = list(BatchSampler(RandomSampler(range(n), generator=torch.Generator().manual_seed(3)), size, False))
    assert [b.tolist() for b in ours] == ref


def test_unshuffled_equals_sequential_sampler():
    ours = batch_indices(9, "minibatch", 4, shuffle=False)
    assert [b.tolist() for b in ours] == list(BatchSampler(SequentialSampler(range(9)), 4, False))


def test_full_and_stochastic():
    full = batch_indices(6, "full", generator=torch.Generator().manual_seed(0))
    assert len(full) == 1 and sorted(full[0].tolist()) == list(range(6))
    sto = batch_indices(6, "stochastic", generator=torch.Generator().manual_seed(0))
    assert [len(b) for b in sto] == [1] * 6
    assert sorted(torch.cat(sto).tolist()) == list(range(6))


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_samples"):
        batch_indices(0, "full")
    with pytest.raises(ValueError, match="strategy"):
        batch_indices(5, "online")
    with pytest.raises(ValueError, match="batch_size"):
        batch_indices(5, "minibatch")
    with pytest.raises(ValueError, match="batch_size"):
        batch_indices(5, "minibatch", 0)
