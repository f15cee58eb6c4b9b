"""Neighbour sampling: structure, budgets, uniformity, and exactness with unlimited budgets."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.utils as pyu

from deepnotes.graph import SAGEConv, sample_neighbors
from tests._reference import assert_same_maths
from tests.graph._graphs import awkward_graph


def test_unlimited_budget_reaches_the_k_hop_neighbourhood():
    x, ei = awkward_graph(0, n=30, e=60)
    seeds = torch.tensor([3, 7])
    sub = sample_neighbors(ei, seeds, [-1, -1], x.shape[0])
    subset, *_ = pyu.k_hop_subgraph(seeds, 2, ei, num_nodes=x.shape[0])
    assert torch.equal(torch.sort(sub.node_ids).values, subset)
    assert torch.equal(sub.node_ids[:2], seeds)
    assert torch.equal(sub.node_ids[sub.edge_index], ei[:, sub.edge_ids])


def test_two_layer_sage_on_full_sample_equals_full_graph():
    x, ei = awkward_graph(1, n=30, e=80)
    torch.manual_seed(0)
    l1, l2 = SAGEConv(5, 6).double(), SAGEConv(6, 3).double()
    full = l2(l1(x, ei).relu(), ei)
    seeds = torch.tensor([0, 4, 9])
    sub = sample_neighbors(ei, seeds, [-1, -1], x.shape[0])
    xs = x[sub.node_ids]
    out = l2(l1(xs, sub.edge_index).relu(), sub.edge_index)[: sub.num_seeds]
    assert_same_maths(out, full[seeds])


@pytest.mark.parametrize("k", [0, 1, 2, 5])
def test_budget_per_node(k):
    x, ei = awkward_graph(2, n=20, e=120)
    seeds = torch.arange(6)
    sub = sample_neighbors(ei, seeds, [k], x.shape[0], torch.Generator().manual_seed(0))
    chosen = ei[:, sub.edge_ids]
    assert len(torch.unique(sub.edge_ids)) == sub.edge_ids.numel()  # without replacement
    for s in seeds.tolist():
        deg = int((ei[1] == s).sum())
        assert int((chosen[1] == s).sum()) == min(deg, k)
    assert bool(torch.isin(chosen[1], seeds).all())


def test_sampling_is_uniform():
    # node 0 has 6 in-edges; with k = 2 each is kept with probability 1/3
    ei = torch.tensor([[1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]])
    g = torch.Generator().manual_seed(0)
    trials = 3000
    counts = torch.zeros(6)
    for _ in range(trials):
        sub = sample_neighbors(ei, torch.tensor([0]), [2], 7, g)
        counts[sub.edge_ids] += 1
    p = counts / trials
    # binomial sd = sqrt(p(1-p)/n) ≈ 0.0086; 5 sd
    assert bool(((p - 1 / 3).abs() < 5 * 0.0086).all()), p


def test_sampling_bad_input():
    _, ei = awkward_graph(0)
    with pytest.raises(ValueError, match="seeds"):
        sample_neighbors(ei, torch.tensor([0, 99]), [2], 12)
    with pytest.raises(TypeError, match="seeds"):
        sample_neighbors(ei, torch.tensor([0.0]), [2], 12)
    with pytest.raises(ValueError, match="num_neighbors"):
        sample_neighbors(ei, torch.tensor([0]), [-2], 12)
    with pytest.raises(ValueError, match="repeat"):
        sample_neighbors(ei, torch.tensor([0, 0]), [1], 12)


def test_neighbor_batches_cover_the_masked_nodes_once_and_match_full_graph():
    from deepnotes.graph.data import Graph
    from deepnotes.graph.sampling import neighbor_batches

    x, ei = awkward_graph(4, n=40, e=120)
    y = torch.arange(40) % 3
    mask = torch.rand(40, generator=torch.Generator().manual_seed(1)) < 0.5
    g = Graph(x, ei, y=y, mask=mask)
    torch.manual_seed(0)
    l1, l2 = SAGEConv(5, 6).double(), SAGEConv(6, 3).double()
    full = l2(l1(x, ei).relu(), ei)
    seen = []
    for b in neighbor_batches(g, [-1, -1], 7, torch.Generator().manual_seed(0)):
        ids = b.extra["node_ids"][b.mask]
        seen.append(ids)
        assert torch.equal(b.y[b.mask], y[ids])
        assert_same_maths(l2(l1(b.x, b.edge_index).relu(), b.edge_index)[b.mask], full[ids])
    seen = torch.cat(seen)
    assert torch.equal(torch.sort(seen).values, torch.nonzero(mask).flatten())
