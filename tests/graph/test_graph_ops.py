"""Scatter ops, self-loop utilities, GCN normalization and readouts against torch_geometric.utils
and torch_geometric.nn pools; the message-passing base and the simple GNNs against slow loops."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.nn as pyg
import torch_geometric.utils as pyu
from torch_geometric.nn.conv.gcn_conv import gcn_norm as pyg_gcn_norm

from deepnotes.graph import (
    GraphNetworkLayer,
    MessagePassing,
    SimpleGNNLayer,
    add_remaining_self_loops,
    add_self_loops,
    gcn_norm,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
    remove_self_loops,
    scatter,
    segment_softmax,
)
from tests._reference import assert_same_maths
from tests.graph._graphs import awkward_graph


@pytest.mark.parametrize("reduce", ["sum", "add", "mean", "max", "min"])
def test_scatter_matches_pyg(reduce):
    g = torch.Generator().manual_seed(0)
    src = torch.randn(30, 4, dtype=torch.float64, generator=g)
    index = torch.randint(0, 8, (30,), generator=g)  # nodes 8, 9 receive nothing
    go = torch.randn(10, 4, dtype=torch.float64, generator=g)
    a, b = src.clone().requires_grad_(True), src.clone().requires_grad_(True)
    ours = scatter(a, index, 10, reduce)
    ref = pyu.scatter(b, index, 0, 10, reduce)
    (ours * go).sum().backward()
    (ref * go).sum().backward()
    assert_same_maths(ours, ref)
    assert_same_maths(a.grad, b.grad)
    assert torch.equal(ours[8:], torch.zeros(2, 4, dtype=torch.float64))


def test_scatter_max_splits_gradient_between_ties():
    src = torch.tensor([[2.0], [2.0], [1.0]], requires_grad=True)
    scatter(src, torch.tensor([0, 0, 0]), 1, "max").sum().backward()
    assert torch.equal(src.grad, torch.tensor([[0.5], [0.5], [0.0]]))


def test_segment_softmax_matches_pyg():
    g = torch.Generator().manual_seed(1)
    src = torch.randn(25, 3, dtype=torch.float64, generator=g) * 30  # large logits: the shift matters
    index = torch.randint(0, 6, (25,), generator=g)
    go = torch.randn(25, 3, dtype=torch.float64, generator=g)
    a, b = src.clone().requires_grad_(True), src.clone().requires_grad_(True)
    ours, ref = segment_softmax(a, index, 7), pyu.softmax(b, index, num_nodes=7)
    (ours * go).sum().backward()
    (ref * go).sum().backward()
    assert_same_maths(ours, ref)
    assert_same_maths(a.grad, b.grad)


@pytest.mark.parametrize("weighted", [False, True])
def test_loop_utilities_match_pyg(weighted):
    x, ei = awkward_graph(3)
    n = x.shape[0]
    w = torch.rand(ei.shape[1], dtype=torch.float64) if weighted else None
    for ours, ref in [
        (remove_self_loops(ei, w), pyu.remove_self_loops(ei, w)),
        (add_self_loops(ei, w, 0.5, n), pyu.add_self_loops(ei, w, 0.5, n)),
        (add_remaining_self_loops(ei, w, 2.0, n), pyu.add_remaining_self_loops(ei, w, 2.0, n)),
    ]:
        assert torch.equal(ours[0], ref[0])
        assert (ours[1] is None) == (ref[1] is None)
        if ours[1] is not None:
            assert_same_maths(ours[1], ref[1])


@pytest.mark.parametrize("fill", ["mean", "add", "max", "min"])
def test_add_self_loops_reduced_fill_matches_pyg(fill):
    x, ei = awkward_graph(4)
    attr = torch.randn(ei.shape[1], 3, dtype=torch.float64)
    ours, ref = add_self_loops(ei, attr, fill, x.shape[0]), pyu.add_self_loops(ei, attr, fill, x.shape[0])
    assert torch.equal(ours[0], ref[0])
    assert_same_maths(ours[1], ref[1])


@pytest.mark.parametrize("improved", [False, True])
@pytest.mark.parametrize("loops", [False, True])
@pytest.mark.parametrize("flow", ["source_to_target", "target_to_source"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gcn_norm_matches_pyg(improved, loops, flow, weighted):
    x, ei = awkward_graph(5)
    w = torch.rand(ei.shape[1], dtype=torch.float64) + 0.1 if weighted else None
    e1, w1 = gcn_norm(ei, w, x.shape[0], improved, loops, flow, torch.float64)
    e2, w2 = pyg_gcn_norm(ei, w, x.shape[0], improved, loops, flow, torch.float64)
    assert torch.equal(e1, e2)
    assert_same_maths(w1, w2)


@pytest.mark.parametrize("ours,ref", [(global_add_pool, pyg.global_add_pool),
                                      (global_mean_pool, pyg.global_mean_pool),
                                      (global_max_pool, pyg.global_max_pool)])
def test_readouts_match_pyg(ours, ref):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(20, 3, dtype=torch.float64, generator=g)
    batch = torch.sort(torch.randint(0, 4, (20,), generator=g)).values
    go = torch.randn(5, 3, dtype=torch.float64, generator=g)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    o1, o2 = ours(a, batch, size=5), ref(b, batch, size=5)  # graph 4 has no nodes
    (o1 * go).sum().backward()
    (o2 * go).sum().backward()
    assert_same_maths(o1, o2)
    assert_same_maths(a.grad, b.grad)
    assert_same_maths(ours(x), ref(x, None))


class _WeightedSum(MessagePassing):
    """x'_i = Σ_{j→i} w_ji (x_j − x_i)  (uses both ends and a per-edge value)."""

    def forward(self, x, edge_index, w):
        edge_index, _ = self.check_inputs(x, edge_index)
        return self.propagate(edge_index, x, w=w)

    def message(self, x_j, x_i, w):
        return w.view(-1, 1) * (x_j - x_i)


@pytest.mark.parametrize("flow", ["source_to_target", "target_to_source"])
@pytest.mark.parametrize("aggr", ["add", "mean", "max"])
def test_message_passing_base_equals_loop(flow, aggr):
    x, ei = awkward_graph(7)
    w = torch.rand(ei.shape[1], dtype=torch.float64)
    out = _WeightedSum(aggr=aggr, flow=flow)(x, ei, w)
    src, dst = (ei[0], ei[1]) if flow == "source_to_target" else (ei[1], ei[0])
    expected = torch.zeros_like(x)
    for i in range(x.shape[0]):
        msgs = [w[e] * (x[src[e]] - x[i]) for e in range(ei.shape[1]) if dst[e] == i]
        if msgs:
            stacked = torch.stack(msgs)
            expected[i] = {"add": stacked.sum(0), "mean": stacked.mean(0), "max": stacked.max(0).values}[aggr]
    assert_same_maths(out, expected)


def test_simple_gnn_layer_applies_three_independent_mlps():
    torch.manual_seed(0)
    fv, fe, fu = torch.nn.Linear(3, 2), torch.nn.Linear(4, 2), torch.nn.Linear(5, 2)
    layer = SimpleGNNLayer(fv, fe, fu)
    v, e, u = torch.randn(6, 3), torch.randn(9, 4), torch.randn(1, 5)
    out = layer(v, e, u)
    assert all(torch.equal(a, b) for a, b in zip(out, (fv(v), fe(e), fu(u))))


def test_graph_network_layer_equals_loop():
    torch.manual_seed(1)
    x, ei = awkward_graph(8)
    n, m = x.shape[0], ei.shape[1]
    batch = torch.tensor([0] * 6 + [1] * (n - 6))
    keep = batch[ei[0]] == batch[ei[1]]  # edges inside one graph
    ei = ei[:, keep]
    m = ei.shape[1]
    ea, u = torch.randn(m, 2, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    f_e = torch.nn.Linear(2 + 5 + 5 + 3, 4).double()
    f_v = torch.nn.Linear(5 + 4 + 3, 6).double()
    f_u = torch.nn.Linear(3 + 6 + 4, 3).double()
    v2, e2, u2 = GraphNetworkLayer(f_e, f_v, f_u)(x, ei, ea, u, batch)
    for k in range(m):
        s, t = ei[:, k]
        assert_same_maths(e2[k], f_e(torch.cat([ea[k], x[s], x[t], u[batch[t]]])))
    for i in range(n):
        inc = sum((e2[k] for k in range(m) if ei[1, k] == i), torch.zeros(4, dtype=torch.float64))
        assert_same_maths(v2[i], f_v(torch.cat([x[i], inc, u[batch[i]]])))
    for b in range(2):
        nodes = v2[batch == b].mean(0)
        edges = e2[batch[ei[1]] == b]
        edges = edges.mean(0) if len(edges) else torch.zeros(4, dtype=torch.float64)
        assert_same_maths(u2[b], f_u(torch.cat([u[b], nodes, edges])))
