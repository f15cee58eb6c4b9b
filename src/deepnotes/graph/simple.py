"""The simplest GNN and its message-passing upgrade (node, edge and global states).

A graph carries three kinds of state: node features ``V (Tensor[N, Fv])``, edge features
``E (Tensor[M, Fe])`` and a global vector ``u (Tensor[B, Fu])`` per graph.

* :class:`SimpleGNNLayer` — one MLP per kind, applied independently: ``V' = f_V(V)``,
  ``E' = f_E(E)``, ``u' = f_u(u)``. The connectivity is not used at all; the graph only says which
  rows exist.
* :class:`GraphNetworkLayer` — the same three MLPs, now fed by message passing:

      e'_k = f_E(e_k, v_{s_k}, v_{t_k}, u)            every edge sees its two ends
      v'_i = f_V(v_i, Σ_{k : t_k = i} e'_k, u)         every node sums its incoming updated edges
      u'   = f_u(u, mean_i v'_i, mean_k e'_k)          the global state reads the whole graph
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from deepnotes.core.checks import check_tensor
from deepnotes.graph.checks import check_edge_index, check_node_features
from deepnotes.graph.scatter import scatter


class SimpleGNNLayer(nn.Module):
    """``(V, E, u) ↦ (node_mlp(V), edge_mlp(E), global_mlp(u))`` — three independent MLPs."""

    def __init__(self, node_mlp: nn.Module, edge_mlp: nn.Module, global_mlp: nn.Module):
        super().__init__()
        self.node_mlp, self.edge_mlp, self.global_mlp = node_mlp, edge_mlp, global_mlp

    def forward(self, x: Tensor, edge_attr: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.node_mlp(x), self.edge_mlp(edge_attr), self.global_mlp(u)


class GraphNetworkLayer(nn.Module):
    """Edge, node and global updates with message passing (see the module docstring).

    ``edge_mlp`` takes ``[e ‖ v_src ‖ v_dst ‖ u]``, ``node_mlp`` takes ``[v ‖ Σ e' ‖ u]`` and
    ``global_mlp`` takes ``[u ‖ mean v' ‖ mean e']``. ``batch (LongTensor[N])`` assigns nodes
    to graphs (default: one graph); an edge belongs to its target's graph.
    """

    def __init__(self, edge_mlp: nn.Module, node_mlp: nn.Module, global_mlp: nn.Module):
        super().__init__()
        self.edge_mlp, self.node_mlp, self.global_mlp = edge_mlp, node_mlp, global_mlp

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, u: Tensor, batch: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        n = check_node_features(x).shape[0]
        edge_index = check_edge_index(edge_index, n)
        check_tensor("edge_attr", edge_attr, ndim=2, floating=True)
        if edge_attr.shape[0] != edge_index.shape[1]:
            raise ValueError(f"edge_attr must have one row per edge ({edge_index.shape[1]}), got {edge_attr.shape[0]}")
        check_tensor("u", u, ndim=2, floating=True)
        if batch is None:
            batch = torch.zeros(n, dtype=torch.long, device=x.device)
        src, dst = edge_index
        edge_graph = batch[dst]
        e_new = self.edge_mlp(torch.cat([edge_attr, x[src], x[dst], u[edge_graph]], dim=1))
        incoming = scatter(e_new, dst, n, "sum")
        v_new = self.node_mlp(torch.cat([x, incoming, u[batch]], dim=1))
        b = u.shape[0]
        u_new = self.global_mlp(
            torch.cat([u, scatter(v_new, batch, b, "mean"), scatter(e_new, edge_graph, b, "mean")], dim=1)
        )
        return v_new, e_new, u_new
