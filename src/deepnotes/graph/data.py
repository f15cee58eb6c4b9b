"""A graph as one object, and batching several graphs into one disconnected graph.

``Graph(x, edge_index, y=None, mask=None, batch=None)`` holds node features ``x (Tensor[N, F])``,
directed edges ``edge_index (LongTensor[2, E])`` (an undirected edge is stored both ways), targets
``y`` (one per node, or one per graph) and optionally a boolean node ``mask`` (the nodes whose
labels a split may use) and ``batch (LongTensor[N])`` (the graph of each node after
:func:`collate_graphs`). The constructor validates everything against the node count.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from deepnotes.core.checks import check_tensor
from deepnotes.graph.checks import check_edge_index, check_node_features


@dataclass
class Graph:
    x: Tensor
    edge_index: Tensor
    y: Tensor | None = None
    mask: Tensor | None = None
    batch: Tensor | None = None
    num_graphs: int = 1
    extra: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = check_node_features(self.x).shape[0]
        self.edge_index = check_edge_index(self.edge_index, n)
        if self.mask is not None:
            check_tensor("mask", self.mask, ndim=1)
            if self.mask.dtype != torch.bool or self.mask.shape[0] != n:
                raise ValueError(f"mask must be a bool tensor with one entry per node ({n})")
        if self.batch is not None:
            check_tensor("batch", self.batch, ndim=1)
            if self.batch.shape[0] != n:
                raise ValueError(f"batch must have one entry per node ({n}), got {self.batch.shape[0]}")

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    @property
    def num_edges(self) -> int:
        return self.edge_index.shape[1]

    def to(self, device) -> Graph:
        def move(v):
            return v.to(device) if isinstance(v, Tensor) else v
        return replace(self, x=move(self.x), edge_index=move(self.edge_index), y=move(self.y), mask=move(self.mask),
                       batch=move(self.batch), extra={k: move(v) for k, v in self.extra.items()})


def collate_graphs(graphs: list[Graph]) -> Graph:
    """Stack graphs into one: node ids of graph ``k`` are shifted by the nodes before it, and
    ``batch`` records each node's graph. Graph-level targets are stacked into ``y (Tensor[B])``."""
    if not graphs:
        raise ValueError("graphs must not be empty")
    sizes = torch.tensor([g.num_nodes for g in graphs])
    offsets = torch.cumsum(sizes, 0) - sizes
    edge_index = torch.cat([g.edge_index + off for g, off in zip(graphs, offsets.tolist())], dim=1)
    batch = torch.repeat_interleave(torch.arange(len(graphs)), sizes)
    ys = [g.y for g in graphs]
    y = None if any(v is None for v in ys) else torch.stack([torch.as_tensor(v) for v in ys])
    return Graph(torch.cat([g.x for g in graphs]), edge_index, y=y, batch=batch, num_graphs=len(graphs))


def undirected(edges: Tensor) -> Tensor:
    """``(2, E)`` pairs → ``(2, 2E)`` with every edge stored in both directions."""
    return torch.cat([edges, edges.flip(0)], dim=1)
