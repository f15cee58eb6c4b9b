"""Graph readouts: one vector per graph from the features of its nodes.

A mini-batch of graphs is one big disconnected graph; ``batch (LongTensor[N])`` says which graph
each node belongs to (PyG's convention). ``global_*_pool(x, batch)`` reduces the rows of
``x (Tensor[N, F])`` per graph into ``Tensor[B, F]``; with ``batch=None`` all nodes form one graph.
A graph without nodes (possible when ``size`` is given) reads 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepnotes.core.checks import check_tensor
from deepnotes.graph.scatter import scatter


def _pool(x: Tensor, batch: Tensor | None, size: int | None, reduce: str) -> Tensor:
    check_tensor("x", x, ndim=2)
    if batch is None:
        batch = x.new_zeros(x.shape[0], dtype=torch.long)
    check_tensor("batch", batch, ndim=1)
    if batch.dtype != torch.long:
        raise TypeError(f"batch must be an int64 tensor, got dtype {batch.dtype}")
    if batch.shape[0] != x.shape[0]:
        raise ValueError(f"batch must have one entry per node ({x.shape[0]}), got {batch.shape[0]}")
    if batch.numel() and int(batch.min()) < 0:
        raise ValueError("batch must hold graph ids >= 0")
    n_graphs = (int(batch.max()) + 1 if batch.numel() else 1) if size is None else size
    if batch.numel() and int(batch.max()) >= n_graphs:
        raise ValueError(f"batch holds graph id {int(batch.max())} but size is {n_graphs}")
    return scatter(x, batch, n_graphs, reduce)


def global_add_pool(x: Tensor, batch: Tensor | None = None, size: int | None = None) -> Tensor:
    """Σ of each graph's node features (injective on multisets: GIN's readout)."""
    return _pool(x, batch, size, "sum")


def global_mean_pool(x: Tensor, batch: Tensor | None = None, size: int | None = None) -> Tensor:
    """Mean of each graph's node features."""
    return _pool(x, batch, size, "mean")


def global_max_pool(x: Tensor, batch: Tensor | None = None, size: int | None = None) -> Tensor:
    """Feature-wise max over each graph's nodes."""
    return _pool(x, batch, size, "max")


