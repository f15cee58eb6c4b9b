"""Graph data: the bundled karate club against networkx, generator statistics, family structure,
batching, negative sampling and edge splits; the GNN models' shapes and gradients."""

from __future__ import annotations

import networkx as nx
import pytest
import torch

from deepnotes.graph.data import Graph, collate_graphs
from deepnotes.graph.datasets import (
    cycle_graph,
    graph_families,
    graph_families_data,
    grid_graph,
    karate,
    karate_club_edges,
    karate_club_labels,
    random_tree,
    sbm,
    stochastic_block_model,
)
from deepnotes.graph.link import negative_sampling, split_edges
from deepnotes.graph.models import GNN


def test_karate_club_equals_networkx():
    g = nx.karate_club_graph()
    ours = {tuple(e) for e in karate_club_edges().t().tolist()}
    assert len(ours) == g.number_of_edges() == 78
    assert ours == {(min(u, v), max(u, v)) for u, v in g.edges()}
    expected = [int(g.nodes[i]["club"] == "Officer") for i in range(34)]
    assert karate_club_labels().tolist() == expected


def test_karate_splits_are_disjoint_and_cover_the_graph():
    s = karate(seed=3)
    masks = [s.train[0].mask, s.val[0].mask, s.test[0].mask]
    assert torch.equal(sum(m.long() for m in masks), torch.ones(34, dtype=torch.long))
    assert [int(m.sum()) for m in masks] == [8, 8, 18]
    train = s.train[0]
    assert torch.equal(torch.bincount(train.y[train.mask]), torch.tensor([4, 4]))
    assert train.num_edges == 156 and s.task == "node" and s.num_classes == 2


def test_sbm_edge_densities_match_probabilities():
    g = torch.Generator().manual_seed(0)
    ei, block = stochastic_block_model([200, 200], 0.1, 0.02, g)
    same = block[ei[0]] == block[ei[1]]
    pairs_in, pairs_out = 2 * 200 * 199 / 2, 200 * 200
    p_in, p_out = same.sum().item() / 2 / pairs_in, (~same).sum().item() / 2 / pairs_out
    # binomial standard errors: ~0.0015 and ~0.0007; allow 5 of them
    assert abs(p_in - 0.1) < 5 * (0.1 * 0.9 / pairs_in) ** 0.5
    assert abs(p_out - 0.02) < 5 * (0.02 * 0.98 / pairs_out) ** 0.5
    assert bool((ei[0] != ei[1]).all())


def test_sbm_dataset_is_reproducible():
    a, b = sbm(seed=1), sbm(seed=1)
    assert torch.equal(a.train[0].x, b.train[0].x) and torch.equal(a.train[0].edge_index, b.train[0].edge_index)


@pytest.mark.parametrize("n", [3, 7])
def test_family_generators_against_networkx(n):
    def as_nx(ei, nodes):
        g = nx.Graph()
        g.add_nodes_from(range(nodes))
        g.add_edges_from(ei.t().tolist())
        return g

    assert nx.is_isomorphic(as_nx(cycle_graph(n), n), nx.cycle_graph(n))
    assert nx.is_isomorphic(as_nx(grid_graph(2, n), 2 * n), nx.grid_2d_graph(2, n))
    assert nx.is_tree(as_nx(random_tree(n, torch.Generator().manual_seed(n)), n))


def test_graph_families_labels_and_batching():
    graphs = graph_families(9, torch.Generator().manual_seed(0))
    assert [int(g.y) for g in graphs] == [0, 1, 2] * 3
    batch = collate_graphs(graphs[:3])
    assert batch.num_graphs == 3 and batch.num_nodes == sum(g.num_nodes for g in graphs[:3])
    assert torch.equal(batch.y, torch.tensor([0, 1, 2]))
    # edges stay inside their graph after the shift
    assert torch.equal(batch.batch[batch.edge_index[0]], batch.batch[batch.edge_index[1]])
    s = graph_families_data(seed=0, n_graphs=30)
    assert len(s.train) + len(s.val) + len(s.test) == 30 and s.task == "graph"


def test_negative_sampling_avoids_edges_and_loops():
    ei = karate(0).train[0].edge_index
    neg = negative_sampling(ei, 34, 300, torch.Generator().manual_seed(0))
    assert neg.shape == (2, 300)
    assert bool((neg[0] != neg[1]).all())
    edges = set(map(tuple, ei.t().tolist()))
    assert not any(tuple(p) in edges for p in neg.t().tolist())


def test_negative_sampling_too_dense():
    ei = torch.tensor([[0, 1, 0, 2, 1, 2], [1, 0, 2, 0, 2, 1]])  # a triangle has no non-edges
    with pytest.raises(ValueError, match="num_samples"):
        negative_sampling(ei, 3, 1)


def test_split_edges_partitions_the_undirected_edges():
    g = karate(0).train[0]
    train, val, test = split_edges(g, 0.1, 0.2, torch.Generator().manual_seed(0))
    parts = [p.extra["pos"] for p in (train, val, test)]
    assert [p.shape[1] for p in parts] == [56, 7, 15]  # floor(0.1·78), floor(0.2·78), the rest
    all_pairs = {tuple(p) for part in parts for p in part.t().tolist()}
    assert all_pairs == {tuple(p) for p in karate_club_edges().t().tolist()}
    held = {tuple(p) for part in parts[1:] for p in part.t().tolist()}
    message = {(min(u, v), max(u, v)) for u, v in train.edge_index.t().tolist()}
    assert not held & message  # held-out edges do not carry messages
    assert val.extra["neg"].shape == (2, 7) and test.extra["neg"].shape == (2, 15)


def test_graph_rejects_feature_rows_that_differ_from_edge_ids():
    with pytest.raises(ValueError, match="edge_index holds"):
        Graph(torch.ones(3, 1), torch.tensor([[0, 1], [1, 3]]))
    with pytest.raises(ValueError, match="mask must be a bool tensor with one entry per node"):
        Graph(torch.ones(3, 1), torch.tensor([[0], [1]]), mask=torch.ones(2, dtype=torch.bool))


@pytest.mark.parametrize("conv", ["gcn", "gat", "sage", "gin"])
@pytest.mark.parametrize("readout", [None, "add", "mean", "max"])
def test_models_shapes_and_gradients(conv, readout):
    torch.manual_seed(0)
    graphs = graph_families(4, torch.Generator().manual_seed(1))
    batch = collate_graphs(graphs)
    model = GNN(conv, 1, 8, 3, num_layers=3, readout=readout)
    out = model(batch)
    assert out.shape == ((4, 3) if readout else (batch.num_nodes, 3))
    out.square().sum().backward()
    assert all(p.grad is not None for p in model.parameters())
