"""The cached-CSR fast path agrees with the readable layers (values and gradients, float64)."""

from __future__ import annotations

import pytest
import torch

from deepnotes.graph import GATConv, GCNConv, GINConv, SAGEConv
from deepnotes.graph import fast as fast_module
from deepnotes.graph.fast import FastGraph, fast_forward
from tests._reference import assert_same_maths
from tests.graph._graphs import awkward_graph


def _mlp():
    return torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.ReLU(), torch.nn.Linear(6, 4))


LAYERS = [
    ("gcn", lambda: GCNConv(5, 4)),
    ("gcn-improved", lambda: GCNConv(5, 4, improved=True)),
    ("gcn-raw", lambda: GCNConv(5, 4, normalize=False)),
    ("gat", lambda: GATConv(5, 4)),
    ("gat-3heads", lambda: GATConv(5, 4, heads=3)),
    ("gat-mean-res", lambda: GATConv(5, 4, heads=2, concat=False, residual=True)),
    ("gat-noloops", lambda: GATConv(5, 4, heads=2, add_self_loops=False)),
    ("sage", lambda: SAGEConv(5, 4)),
    ("sage-maxpool", lambda: SAGEConv(5, 4, aggr="max", project=True)),
    ("sage-min-norm", lambda: SAGEConv(5, 4, aggr="min", normalize=True)),
    ("sage-sum", lambda: SAGEConv(5, 4, aggr="sum", root_weight=False)),
    ("gin", lambda: GINConv(_mlp(), eps=0.2, train_eps=True)),
    ("gin-fixed-eps (self term folded into the product)", lambda: GINConv(_mlp(), eps=-0.3)),
    ("gin-mean", lambda: GINConv(_mlp(), aggr="mean")),
    ("gin-max", lambda: GINConv(_mlp(), aggr="max", train_eps=True)),
    ("sage-lstm (falls back)", lambda: SAGEConv(5, 4, aggr="lstm")),
]


@pytest.mark.parametrize("name,make", LAYERS, ids=[n for n, _ in LAYERS])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_equals_readable(name, make, weighted, seed, monkeypatch):
    monkeypatch.setattr(fast_module, "EDGE_CHUNK", 7)  # exercise the chunked paths on a small graph
    x, ei = awkward_graph(seed)
    w = torch.rand(ei.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) + 0.1
    torch.manual_seed(seed)
    layer = make().double()
    graph = FastGraph(ei, x.shape[0], w if weighted else None)
    extra = (w,) if weighted and isinstance(layer, GCNConv) else ()
    width = layer(x, ei, *extra).shape[1]
    go = torch.randn(x.shape[0], width, dtype=torch.float64, generator=torch.Generator().manual_seed(9))

    def run(fn):
        xx = x.clone().requires_grad_(True)
        layer.zero_grad(set_to_none=True)
        out = fn(xx)
        (out * go).sum().backward()
        return out.detach(), xx.grad, {k: p.grad.clone() for k, p in layer.named_parameters()}

    o1, gx1, gp1 = run(lambda xx: fast_forward(layer, xx, graph))
    o2, gx2, gp2 = run(lambda xx: layer(xx, ei, *extra))
    assert_same_maths(o1, o2)
    assert_same_maths(gx1, gx2)
    for k in gp2:
        assert_same_maths(gp1[k], gp2[k])
    # the cached adjacency is reused: a second call gives the same result
    assert_same_maths(fast_forward(layer, x, graph), o1)


def test_fast_graph_rejects_bad_input():
    x, ei = awkward_graph(0)
    with pytest.raises(ValueError, match="edge_index"):
        FastGraph(ei, 5)
    graph = FastGraph(ei, x.shape[0])
    with pytest.raises(ValueError, match="x must have one row per node"):
        fast_forward(GCNConv(5, 4).double(), x[:-1], graph)


def test_fast_graph_without_edges():
    x = torch.randn(4, 5, dtype=torch.float64)
    graph = FastGraph(torch.zeros(2, 0, dtype=torch.long), 4)
    sage = SAGEConv(5, 3, aggr="max").double()
    assert_same_maths(fast_forward(sage, x, graph), sage.lin_l.bias + sage.lin_r(x))


@pytest.mark.parametrize("aggr", ["max", "min"])
def test_fast_extreme_aggregation_in_one_block(aggr):
    """The unchunked max/min path (one scatter_reduce over all edges) has the same values and grads."""
    x, ei = awkward_graph(3)
    torch.manual_seed(3)
    layer = GINConv(_mlp(), aggr=aggr, train_eps=True).double()
    graph = FastGraph(ei, x.shape[0])
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    o1, o2 = fast_forward(layer, a, graph), layer(b, ei)
    o1.sum().backward()
    o2.sum().backward()
    assert_same_maths(o1, o2)
    assert_same_maths(a.grad, b.grad)


def test_fast_gin_folds_a_trainable_eps_only_without_grad():
    """Under ``no_grad`` a trainable ε also takes the one-product path (self-loop entries of
    weight 1 + ε, beside the graph's own loops and multi-edges); the values agree."""
    x, ei = awkward_graph(2)
    torch.manual_seed(2)
    layer = GINConv(_mlp(), eps=0.7, train_eps=True).double()
    graph = FastGraph(ei, x.shape[0])
    with torch.no_grad():
        assert_same_maths(fast_forward(layer, x, graph), layer(x, ei))
    assert ("loops",) in graph._cache
    layer.eps.data.fill_(-0.4)  # a new ε replaces the cached entry values
    with torch.no_grad():
        assert_same_maths(fast_forward(layer, x, graph), layer(x, ei))
