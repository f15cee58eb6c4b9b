"""Bad input: a clear error naming the argument, one test per case."""

from __future__ import annotations

import pytest
import torch

from deepnotes.graph import GATConv, GCNConv, GINConv, SAGEConv, global_mean_pool

X = torch.randn(4, 3)
EI = torch.tensor([[0, 1, 2], [1, 2, 3]])


def layers():
    return [GCNConv(3, 2), GATConv(3, 2, heads=2), SAGEConv(3, 2), GINConv(torch.nn.Linear(3, 2))]


@pytest.mark.parametrize("layer", layers(), ids=lambda m: type(m).__name__)
def test_edge_id_not_below_node_count(layer):
    with pytest.raises(ValueError, match=r"edge_index holds target node id 4, but there are only 4 nodes"):
        layer(X, torch.tensor([[0, 1], [1, 4]]))


@pytest.mark.parametrize("layer", layers(), ids=lambda m: type(m).__name__)
def test_negative_edge_id(layer):
    with pytest.raises(ValueError, match="edge_index must hold node ids >= 0"):
        layer(X, torch.tensor([[0, -1], [1, 2]]))


@pytest.mark.parametrize("layer", layers(), ids=lambda m: type(m).__name__)
def test_edge_index_float_dtype(layer):
    with pytest.raises(TypeError, match="edge_index must be an int64"):
        layer(X, EI.float())


@pytest.mark.parametrize("bad", [torch.zeros(3, 4, dtype=torch.long), torch.zeros(6, dtype=torch.long),
                                 torch.zeros(2, 2, 2, dtype=torch.long)])
def test_edge_index_wrong_shape(bad):
    with pytest.raises(ValueError, match=r"edge_index must have shape \(2, E\)"):
        SAGEConv(3, 2)(X, bad)


def test_edge_index_not_a_tensor():
    with pytest.raises(TypeError, match="edge_index must be a torch.Tensor"):
        GCNConv(3, 2)(X, [[0, 1], [1, 2]])


def test_feature_rows_differ_from_node_count():
    with pytest.raises(ValueError, match=r"x\[1\] must have one row per node \(5\), got 4 rows"):
        SAGEConv((3, 3), 2)((X, X), EI, size=(4, 5))
    with pytest.raises(ValueError, match=r"x must have one row per node \(6\), got 4 rows"):
        GATConv(3, 2)(X, EI, size=(6, 6))


def test_features_must_be_floating_2d():
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        GINConv(torch.nn.Identity())(torch.ones(4, 3, dtype=torch.long), EI)
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        SAGEConv(3, 2)(torch.randn(4), EI)


def test_edge_weight_length():
    with pytest.raises(ValueError, match=r"edge_weight must have one value per edge \(3\), got 2"):
        GCNConv(3, 2)(X, EI, torch.ones(2))


def test_gat_edge_attr_rows():
    with pytest.raises(ValueError, match="edge_attr must have one row per edge"):
        GATConv(3, 2, edge_dim=1)(X, EI, torch.ones(5))


def test_constructor_arguments():
    with pytest.raises(ValueError, match="heads must be >= 1"):
        GATConv(3, 2, heads=0)
    with pytest.raises(ValueError, match="aggr must be one of"):
        SAGEConv(3, 2, aggr="median")
    with pytest.raises(ValueError, match="flow must be one of"):
        GINConv(torch.nn.Identity(), flow="sideways")
    with pytest.raises(ValueError, match="add_self_loops=True needs normalize=True"):
        GCNConv(3, 2, add_self_loops=True, normalize=False)


def test_gcn_rejects_bipartite_pair():
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        GCNConv(3, 2)((X, X), EI)


def test_readout_batch_length():
    with pytest.raises(ValueError, match=r"batch must have one entry per node \(4\), got 3"):
        global_mean_pool(X, torch.zeros(3, dtype=torch.long))


def test_empty_edge_index_is_allowed():
    out = SAGEConv(3, 2)(X, torch.zeros(2, 0, dtype=torch.long))
    assert out.shape == (4, 2) and bool(torch.isfinite(out).all())
