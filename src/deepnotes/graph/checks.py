"""Input checks for graphs: an ``edge_index`` and node features that agree on the node count."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from deepnotes.core.checks import check_tensor


def check_edge_index(edge_index: Any, num_nodes: int | tuple[int, int], name: str = "edge_index") -> Tensor:
    """``edge_index`` is an integer ``LongTensor[2, E]`` with ids in ``[0, num_nodes)``.

    ``num_nodes`` may be a pair ``(num_sources, num_targets)`` for a bipartite graph. Raises
    ``TypeError`` for a non-tensor or a non-integer dtype and ``ValueError`` for a wrong shape, a
    negative id or an id not below the node count.
    """
    check_tensor(name, edge_index)
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an int64 (or int32) tensor, got dtype {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"{name} must have shape (2, E), got {tuple(edge_index.shape)}")
    n_src, n_dst = (num_nodes, num_nodes) if isinstance(num_nodes, int) else num_nodes
    if edge_index.numel():
        low = int(edge_index.min())
        if low < 0:
            raise ValueError(f"{name} must hold node ids >= 0, got {low}")
        for row, n, what in ((0, n_src, "source"), (1, n_dst, "target")):
            high = int(edge_index[row].max())
            if high >= n:
                raise ValueError(
                    f"{name} holds {what} node id {high}, but there are only {n} nodes (ids must be < {n})"
                )
    return edge_index.long()


def check_node_features(x: Any, name: str = "x", num_nodes: int | None = None) -> Tensor:
    """``x`` is a floating-point ``Tensor[N, F]``; with ``num_nodes`` given, ``N`` must equal it."""
    check_tensor(name, x, ndim=2, floating=True)
    if num_nodes is not None and x.shape[0] != num_nodes:
        raise ValueError(f"{name} must have one row per node ({num_nodes}), got {x.shape[0]} rows")
    return x


def check_edge_weight(edge_weight: Any, num_edges: int, name: str = "edge_weight") -> Tensor:
    """``edge_weight`` is a floating-point ``Tensor[E]`` with one value per edge."""
    check_tensor(name, edge_weight, ndim=1, floating=True)
    if edge_weight.shape[0] != num_edges:
        raise ValueError(f"{name} must have one value per edge ({num_edges}), got {edge_weight.shape[0]}")
    return edge_weight
