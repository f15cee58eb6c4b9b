"""Link prediction: held-out edge splits, negative sampling and a dot-product edge scorer.

A model embeds the nodes using only the *training* edges, scores a pair ``(u, v)`` by
``⟨z_u, z_v⟩`` and learns to rank true edges above non-edges. Non-edges are drawn uniformly
(negative sampling) each step for training and once, fixed, for validation and testing.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepnotes.core.checks import check_float, check_int
from deepnotes.graph.checks import check_edge_index
from deepnotes.graph.data import Graph, undirected


def negative_sampling(
    edge_index: Tensor, num_nodes: int, num_samples: int, generator: torch.Generator | None = None
) -> Tensor:
    """``(2, num_samples)`` uniformly drawn pairs ``(u, v)``, ``u ≠ v``, that are not edges of
    ``edge_index`` (in either direction). Draws in rounds of candidates and rejects the bad ones;
    raises ``ValueError`` when the graph is too dense to hold that many non-edges."""
    check_int("num_nodes", num_nodes, min=1)
    check_int("num_samples", num_samples, min=0)
    edge_index = check_edge_index(edge_index, num_nodes)
    key = torch.cat([edge_index[0] * num_nodes + edge_index[1], edge_index[1] * num_nodes + edge_index[0]])
    taken = torch.unique(key)
    free = num_nodes * (num_nodes - 1) - int((taken // num_nodes != taken % num_nodes).sum())
    if num_samples > free:
        raise ValueError(f"num_samples ({num_samples}) exceeds the {free} non-edges of the graph")
    out = torch.zeros(2, 0, dtype=torch.long)
    while out.shape[1] < num_samples:
        cand = torch.randint(0, num_nodes, (2, 2 * (num_samples - out.shape[1]) + 16), generator=generator)
        ok = (cand[0] != cand[1]) & ~torch.isin(cand[0] * num_nodes + cand[1], taken)
        out = torch.cat([out, cand[:, ok]], dim=1)
    return out[:, :num_samples]


def split_edges(
    graph: Graph, val_fraction: float = 0.1, test_fraction: float = 0.1, generator: torch.Generator | None = None
) -> tuple[Graph, Graph, Graph]:
    """Hold out undirected edges for validation and testing.

    Every returned graph keeps ``x`` and passes messages over the *training* edges only (both
    directions); ``extra["pos"]`` holds its split's positive pairs and, for val/test,
    ``extra["neg"]`` as many fixed negatives (non-edges of the whole graph).
    """
    check_float("val_fraction", val_fraction, min=0, max=1)
    check_float("test_fraction", test_fraction, min=0, max=1)
    ei = graph.edge_index
    pairs = torch.unique(torch.stack([ei.min(0).values, ei.max(0).values]), dim=1)
    pairs = pairs[:, pairs[0] != pairs[1]]
    pairs = pairs[:, torch.randperm(pairs.shape[1], generator=generator)]
    n_val, n_test = int(val_fraction * pairs.shape[1]), int(test_fraction * pairs.shape[1])
    val, test, train = pairs[:, :n_val], pairs[:, n_val:n_val + n_test], pairs[:, n_val + n_test:]
    negatives = negative_sampling(ei, graph.num_nodes, n_val + n_test, generator)
    message = undirected(train)

    def part(pos: Tensor, neg: Tensor | None) -> Graph:
        extra = {"pos": pos} if neg is None else {"pos": pos, "neg": neg}
        return Graph(graph.x, message, extra=extra)

    return part(train, None), part(val, negatives[:, :n_val]), part(test, negatives[:, n_val:])


def dot_scores(z: Tensor, pairs: Tensor) -> Tensor:
    """``⟨z_u, z_v⟩`` for every pair column ``(u, v)`` — the logit that ``(u, v)`` is an edge."""
    return (z[pairs[0]] * z[pairs[1]]).sum(-1)
