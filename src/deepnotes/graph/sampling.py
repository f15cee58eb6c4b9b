"""Neighbour sampling for mini-batch training on one large graph (GraphSAGE).

A ``L``-layer GNN's output at a node depends on its ``L``-hop in-neighbourhood, which on a real
graph is most of the graph. Sampling at most ``k_l`` in-edges per node at hop ``l`` bounds the
work per seed node by ``Π k_l`` while keeping every sampled node's aggregate an unbiased
(mean-aggregator) estimate of the full one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from deepnotes.core.checks import check_int, check_tensor
from deepnotes.graph.checks import check_edge_index


@dataclass
class SampledSubgraph:
    """``node_ids (LongTensor[n])``: the global ids of the subgraph's nodes, the seeds first;
    ``edge_index (LongTensor[2, m])``: the sampled edges in local ids (rows index ``node_ids``);
    ``edge_ids (LongTensor[m])``: their positions in the original ``edge_index``;
    ``num_seeds``: run the GNN on the subgraph and keep ``out[:num_seeds]``."""

    node_ids: Tensor
    edge_index: Tensor
    edge_ids: Tensor
    num_seeds: int


def sample_neighbors(
    edge_index: Tensor,
    seeds: Tensor,
    num_neighbors: Sequence[int],
    num_nodes: int,
    generator: torch.Generator | None = None,
) -> SampledSubgraph:
    """Sample, hop by hop, at most ``num_neighbors[l]`` incoming edges of every frontier node.

    Within a node's in-edges the choice is uniform without replacement; a node with fewer edges
    than the budget keeps them all (``-1`` keeps all edges at that hop). Nodes reached at one hop
    form the frontier of the next; a node is expanded once.
    """
    check_int("num_nodes", num_nodes, min=0)
    edge_index = check_edge_index(edge_index, num_nodes)
    check_tensor("seeds", seeds, ndim=1)
    if seeds.dtype != torch.long:
        raise TypeError(f"seeds must be an int64 tensor, got dtype {seeds.dtype}")
    if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= num_nodes):
        raise ValueError(f"seeds must be node ids in [0, {num_nodes})")
    if len(torch.unique(seeds)) != seeds.numel():
        raise ValueError("seeds must not repeat a node")
    for hop, k in enumerate(num_neighbors):
        check_int(f"num_neighbors[{hop}]", k, min=-1)

    # in-edges grouped by target: edges_by_target[ptr[i]:ptr[i+1]] enter node i
    src, dst = edge_index
    edges_by_target = torch.sort(dst, stable=True).indices
    count = torch.bincount(dst, minlength=num_nodes)
    ptr = torch.cumsum(count, 0) - count

    local = torch.full((num_nodes,), -1, dtype=torch.long)
    local[seeds] = torch.arange(seeds.numel())
    node_ids, frontier, kept = [seeds], seeds, []
    for k in num_neighbors:
        deg = count[frontier]
        # every in-edge of every frontier node, as (owner position, edge id)
        owner = torch.repeat_interleave(torch.arange(frontier.numel()), deg)
        offset = torch.arange(owner.numel()) - torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
        edges = edges_by_target[ptr[frontier][owner] + offset]
        if k >= 0:
            # a random key per edge; the k smallest keys of each owner are a uniform k-subset
            key = torch.rand(edges.numel(), generator=generator)
            order = torch.sort(key).indices
            order = order[torch.sort(owner[order], stable=True).indices]
            rank = torch.arange(order.numel()) - torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
            edges = edges[order[rank < k]]
        kept.append(edges)
        new = torch.unique(src[edges])
        new = new[local[new] < 0]
        local[new] = torch.arange(new.numel()) + sum(t.numel() for t in node_ids)
        node_ids.append(new)
        frontier = new
    edge_ids = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.long)
    return SampledSubgraph(
        node_ids=torch.cat(node_ids),
        edge_index=local[edge_index[:, edge_ids]],
        edge_ids=edge_ids,
        num_seeds=seeds.numel(),
    )


def neighbor_batches(
    graph,
    num_neighbors: Sequence[int],
    batch_size: int,
    generator: torch.Generator | None = None,
    shuffle: bool = True,
):
    """Mini-batches for node classification on one large graph (GraphSAGE-style training).

    The nodes of ``graph.mask`` (all nodes without a mask) are split into seed batches of
    ``batch_size``; each batch is the :func:`sample_neighbors` subgraph as a
    :class:`~deepnotes.graph.data.Graph` whose ``mask`` marks its seeds (its first nodes), with
    ``x`` and ``y`` restricted to the subgraph — so a node-classification step runs unchanged.
    """
    from deepnotes.graph.data import Graph

    check_int("batch_size", batch_size, min=1)
    nodes = torch.arange(graph.num_nodes) if graph.mask is None else torch.nonzero(graph.mask).flatten()
    if shuffle:
        nodes = nodes[torch.randperm(nodes.numel(), generator=generator)]
    for seeds in torch.split(nodes, batch_size):
        sub = sample_neighbors(graph.edge_index, seeds, num_neighbors, graph.num_nodes, generator)
        mask = torch.zeros(sub.node_ids.numel(), dtype=torch.bool)
        mask[: sub.num_seeds] = True
        y = None if graph.y is None else graph.y[sub.node_ids]
        yield Graph(graph.x[sub.node_ids], sub.edge_index, y=y, mask=mask, extra={"node_ids": sub.node_ids})
