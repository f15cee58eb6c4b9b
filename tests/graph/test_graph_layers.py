"""Every layer against the installed torch_geometric.nn layer with the same weights (float64):
outputs and gradients w.r.t. inputs and every parameter, on graphs with self-loops, duplicate
edges and isolated nodes."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.nn as pyg

from deepnotes.graph import GATConv, GCNConv, GINConv, SAGEConv
from tests._reference import assert_same_maths
from tests.graph._graphs import awkward_graph, run_with_grads

OURS = {"GCNConv": GCNConv, "GATConv": GATConv, "SAGEConv": SAGEConv, "GINConv": GINConv}


def compare(name: str, args: tuple, kwargs: dict, inputs: dict, seed: int = 0, train: bool = False):
    torch.manual_seed(seed)
    ref = getattr(pyg, name)(*args, **kwargs).double()
    ours = OURS[name](*args, **kwargs).double()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    ours.train(train)
    ref.train(train)
    o1, gi1, gp1 = run_with_grads(ours, inputs)
    o2, gi2, gp2 = run_with_grads(ref, inputs)
    if isinstance(o2, tuple):
        assert torch.equal(o1[1][0], o2[1][0])
        assert_same_maths(o1[1][1], o2[1][1])
        o1, o2 = o1[0], o2[0]
    assert_same_maths(o1, o2)
    assert gi1.keys() == gi2.keys() and gp1.keys() == gp2.keys()
    for k in gi2:
        assert_same_maths(gi1[k], gi2[k])
    for k in gp2:
        assert (gp1[k] is None) == (gp2[k] is None), k
        if gp2[k] is not None:
            assert_same_maths(gp1[k], gp2[k])


GCN_CASES = [
    {},
    {"bias": False},
    {"improved": True},
    {"normalize": False},
    {"add_self_loops": False},
    {"cached": True},
    {"aggr": "mean"},
    {"flow": "target_to_source"},
]


@pytest.mark.parametrize("kwargs", GCN_CASES, ids=str)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_gcn(kwargs, weighted, seed):
    x, ei = awkward_graph(seed)
    inputs = {"x": x, "edge_index": ei}
    if weighted:
        inputs["edge_weight"] = torch.rand(ei.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) + 0.1
    compare("GCNConv", (5, 4), kwargs, inputs, seed)


def test_gcn_cached_reuses_first_graph():
    x, ei = awkward_graph(0)
    layer = GCNConv(5, 3, cached=True).double()
    first = layer(x, ei)
    # a different graph is ignored once cached (PyG's documented transductive behaviour)
    assert torch.equal(layer(x, ei[:, :5]), first)


GAT_CASES = [
    {},
    {"heads": 3},
    {"heads": 3, "concat": False},
    {"heads": 2, "add_self_loops": False},
    {"heads": 2, "negative_slope": 0.05, "bias": False},
    {"heads": 2, "residual": True},
    {"heads": 2, "residual": True, "concat": False},
    {"heads": 2, "dropout": 0.5},  # eval mode: no dropout
    {"heads": 2, "flow": "target_to_source"},
]


@pytest.mark.parametrize("kwargs", GAT_CASES, ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_gat(kwargs, seed):
    x, ei = awkward_graph(seed)
    compare("GATConv", (5, 4), kwargs, {"x": x, "edge_index": ei}, seed)


@pytest.mark.parametrize("fill_value", ["mean", "add", "max", 0.5])
@pytest.mark.parametrize("edge_dim", [1, 3])
def test_gat_edge_features(fill_value, edge_dim):
    x, ei = awkward_graph(2)
    g = torch.Generator().manual_seed(3)
    ea = torch.randn(ei.shape[1], edge_dim, generator=g, dtype=torch.float64)
    if edge_dim == 1:
        ea = ea.view(-1)
    compare("GATConv", (5, 4), {"heads": 2, "edge_dim": edge_dim, "fill_value": fill_value},
            {"x": x, "edge_index": ei, "edge_attr": ea}, 3)


def test_gat_returns_attention_weights():
    x, ei = awkward_graph(4)
    compare("GATConv", (5, 4), {"heads": 2}, {"x": x, "edge_index": ei, "return_attention_weights": True}, 4)


def test_gat_bipartite():
    g = torch.Generator().manual_seed(5)
    xs = torch.randn(9, 5, generator=g, dtype=torch.float64)
    xd = torch.randn(4, 3, generator=g, dtype=torch.float64)
    ei = torch.stack([torch.randint(0, 9, (20,), generator=g), torch.randint(0, 4, (20,), generator=g)])
    compare("GATConv", ((5, 3), 4), {"heads": 2, "residual": True}, {"x": (xs, xd), "edge_index": ei}, 5)


def test_gat_attention_sums_to_one_per_target():
    x, ei = awkward_graph(6)
    layer = GATConv(5, 4, heads=3).double()
    _, (edges, alpha) = layer(x, ei, return_attention_weights=True)
    total = torch.zeros(x.shape[0], 3, dtype=torch.float64).index_add_(0, edges[1], alpha)
    assert_same_maths(total, torch.ones_like(total))


SAGE_CASES = [
    {},
    {"aggr": "max"},
    {"aggr": "max", "project": True},
    {"aggr": "sum"},
    {"aggr": "min"},
    {"normalize": True},
    {"root_weight": False},
    {"bias": False},
    {"flow": "target_to_source"},
]


@pytest.mark.parametrize("kwargs", SAGE_CASES, ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_sage(kwargs, seed):
    x, ei = awkward_graph(seed)
    compare("SAGEConv", (5, 4), kwargs, {"x": x, "edge_index": ei}, seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_sage_lstm_on_target_sorted_edges(seed):
    x, ei = awkward_graph(seed)
    ei = ei[:, torch.sort(ei[1], stable=True).indices]  # PyG's LSTM aggregation needs sorted targets
    compare("SAGEConv", (5, 4), {"aggr": "lstm"}, {"x": x, "edge_index": ei}, seed)


def test_sage_lstm_sorts_unsorted_edges_stably():
    x, ei = awkward_graph(3)
    torch.manual_seed(0)
    ours = SAGEConv(5, 4, aggr="lstm").double()
    ref = pyg.SAGEConv(5, 4, aggr="lstm").double()
    ref.load_state_dict(ours.state_dict())
    sorted_ei = ei[:, torch.sort(ei[1], stable=True).indices]
    assert_same_maths(ours(x, ei), ref(x, sorted_ei))


def test_sage_bipartite_pair_input():
    g = torch.Generator().manual_seed(7)
    xs = torch.randn(9, 5, generator=g, dtype=torch.float64)
    xd = torch.randn(4, 3, generator=g, dtype=torch.float64)
    ei = torch.stack([torch.randint(0, 9, (20,), generator=g), torch.randint(0, 4, (20,), generator=g)])
    compare("SAGEConv", ((5, 3), 6), {}, {"x": (xs, xd), "edge_index": ei}, 7)


@pytest.mark.parametrize("train_eps", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.3])
@pytest.mark.parametrize("aggr", ["add", "mean", "max"])
def test_gin(train_eps, eps, aggr):
    x, ei = awkward_graph(8)
    torch.manual_seed(8)
    mlp_args = dict(nn=torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3)))
    ref = pyg.GINConv(mlp_args["nn"], eps=eps, train_eps=train_eps, aggr=aggr).double()
    import copy

    ours = GINConv(copy.deepcopy(mlp_args["nn"]), eps=eps, train_eps=train_eps, aggr=aggr).double()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    o1, gi1, gp1 = run_with_grads(ours, {"x": x, "edge_index": ei})
    o2, gi2, gp2 = run_with_grads(ref, {"x": x, "edge_index": ei})
    assert_same_maths(o1, o2)
    assert_same_maths(gi1["x"], gi2["x"])
    assert gp1.keys() == gp2.keys()
    for k in gp2:
        assert_same_maths(gp1[k], gp2[k])
    assert ("eps" in gp1) == train_eps


def test_isolated_node_outputs():
    """A node without edges: GCN sees only its loop, SAGE's mean is 0 so only the root term remains."""
    x, ei = awkward_graph(9)
    iso = x.shape[0] - 1
    sage = SAGEConv(5, 4).double()
    expected = sage.lin_l.bias + sage.lin_r(x[iso])
    assert_same_maths(sage(x, ei)[iso], expected)
    gcn = GCNConv(5, 4).double()
    assert_same_maths(gcn(x, ei)[iso], gcn.lin(x[iso]) + gcn.bias)


def test_gat_attention_dropout_in_training_matches_pyg_under_the_same_rng():
    x, ei = awkward_graph(10)
    torch.manual_seed(0)
    ref = pyg.GATConv(5, 4, heads=2, dropout=0.4).double().train()
    ours = GATConv(5, 4, heads=2, dropout=0.4).double().train()
    ours.load_state_dict(ref.state_dict())
    torch.manual_seed(123)
    a = ours(x, ei)
    torch.manual_seed(123)
    b = ref(x, ei)
    assert_same_maths(a, b)
    torch.manual_seed(124)
    assert not torch.allclose(ours(x, ei), a)  # a different draw drops other coefficients
