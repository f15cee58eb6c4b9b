"""GNN layer forward passes on a random graph: our cached-CSR fast path vs torch_geometric.

* ``gnn_gcn``, ``gnn_gat``, ``gnn_sage``, ``gnn_gin``: 50,000 nodes, 500,000 random directed
  edges, 64 features (quick: 5,000 / 50,000), float32, no autograd. Ours is
  :func:`deepnotes.graph.fast.fast_forward` on a :class:`~deepnotes.graph.fast.FastGraph` built once
  before timing (the CSR adjacency is cached per graph, the point of the fast path); PyG's layer
  gets the ``edge_index`` as usual. Both use the same weights and are checked equal first.
  Target (issue 18): ratio <= 0.2 each.
"""

from __future__ import annotations

import torch

from deepnotes.bench.api import BenchItem, bench_case
from deepnotes.bench.cases.classic import single_thread


def _graph(quick: bool):
    n, e, f = (5_000, 50_000, 64) if quick else (50_000, 500_000, 64)
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, n, (2, e), generator=g), torch.randn(n, f, generator=g), n, e, f


def _items(name: str, quick: bool) -> list[BenchItem]:
    import torch_geometric.nn as pyg

    from deepnotes.graph import GATConv, GCNConv, GINConv, SAGEConv
    from deepnotes.graph.fast import FastGraph, fast_forward

    edge_index, x, n, e, f = _graph(quick)
    torch.manual_seed(0)

    def mlp():
        return torch.nn.Sequential(torch.nn.Linear(f, f), torch.nn.ReLU(), torch.nn.Linear(f, f))

    ours, ref = {
        "gcn": lambda: (GCNConv(f, f), pyg.GCNConv(f, f)),
        "gat": lambda: (GATConv(f, f), pyg.GATConv(f, f)),
        "sage": lambda: (SAGEConv(f, f), pyg.SAGEConv(f, f)),
        "gin": lambda: (GINConv(mlp()), pyg.GINConv(mlp())),
    }[name]()
    ours.load_state_dict(ref.state_dict())
    graph = FastGraph(edge_index, n)

    @torch.no_grad()
    def run_ours():
        return fast_forward(ours, x, graph)

    @torch.no_grad()
    def run_ref():
        return ref(x, edge_index)

    torch.testing.assert_close(run_ours(), run_ref(), rtol=1e-4, atol=1e-4)
    size = f"{n} nodes, {e} edges, {f} features"
    return [BenchItem(size=size, ours=run_ours, reference=run_ref, repeats=5),
            BenchItem(size=size + ", 1 thread", ours=single_thread(run_ours), reference=single_thread(run_ref),
                      repeats=5)]


def _register(name: str, label: str) -> None:
    @bench_case(f"gnn_{name}", reference=f"torch_geometric.nn.{label}", requires=("torch_geometric",), target=0.2,
                description=f"{label} forward on a cached CSR adjacency vs PyG's scatter-based layer")
    def case(quick: bool) -> list[BenchItem]:
        return _items(name, quick)


for _name, _label in (("gcn", "GCNConv"), ("gat", "GATConv"), ("sage", "SAGEConv"), ("gin", "GINConv")):
    _register(_name, _label)
