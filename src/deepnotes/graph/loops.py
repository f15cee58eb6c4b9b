"""Self-loops and the symmetric GCN normalization  D̂^{-1/2} Â D̂^{-1/2}.

Each function takes and returns ``edge_index (LongTensor[2, E])`` plus optional per-edge values
and follows ``torch_geometric.utils`` exactly, so that the layers built on them agree with PyG
edge for edge (the order of the returned edges included).
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepnotes.graph.scatter import scatter


def remove_self_loops(edge_index: Tensor, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Drop every edge ``i → i``."""
    keep = edge_index[0] != edge_index[1]
    return edge_index[:, keep], None if edge_attr is None else edge_attr[keep]


def _loop_values(edge_index: Tensor, edge_attr: Tensor, num_nodes: int, fill_value) -> Tensor:
    """Features of the new loop ``i → i``: a constant, or a reduction of the edges into ``i``."""
    shape = (num_nodes,) + tuple(edge_attr.shape[1:])
    if isinstance(fill_value, str):
        return scatter(edge_attr, edge_index[1], num_nodes, fill_value)
    if isinstance(fill_value, Tensor):
        return fill_value.to(edge_attr).expand(shape).clone()
    return edge_attr.new_full(shape, float(1.0 if fill_value is None else fill_value))


def add_self_loops(
    edge_index: Tensor, edge_attr: Tensor | None = None, fill_value=1.0, num_nodes: int = 0
) -> tuple[Tensor, Tensor | None]:
    """Append one loop ``i → i`` for every node (existing loops are kept, so call
    :func:`remove_self_loops` first to have exactly one).

    ``fill_value`` gives the loops' features: a number, a tensor, or ``"add" | "mean" | "max" |
    "min"`` to reduce the features of the edges entering each node (0 for a node with none).
    """
    loops = torch.arange(num_nodes, device=edge_index.device).repeat(2, 1)
    out = torch.cat([edge_index, loops], dim=1)
    if edge_attr is None:
        return out, None
    return out, torch.cat([edge_attr, _loop_values(edge_index, edge_attr, num_nodes, fill_value)], 0)


def add_remaining_self_loops(
    edge_index: Tensor, edge_weight: Tensor | None, fill_value: float, num_nodes: int
) -> tuple[Tensor, Tensor | None]:
    """Replace the loops of the graph by exactly one loop per node, appended at the end.

    A node that had a loop keeps that loop's weight (with several, the one ``index_put`` writes
    last, as in PyG); the others get ``fill_value``. Without weights nothing is filled.
    """
    is_edge = edge_index[0] != edge_index[1]
    loops = torch.arange(num_nodes, device=edge_index.device).repeat(2, 1)
    out = torch.cat([edge_index[:, is_edge], loops], dim=1)
    if edge_weight is None:
        return out, None
    loop_w = edge_weight.new_full((num_nodes,) + tuple(edge_weight.shape[1:]), fill_value)
    loop_w[edge_index[0][~is_edge]] = edge_weight[~is_edge]
    return out, torch.cat([edge_weight[is_edge], loop_w], dim=0)


def gcn_norm(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_nodes: int = 0,
    improved: bool = False,
    add_self_loops: bool = True,
    flow: str = "source_to_target",
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """Edge weights of ``Â = A + I`` scaled by ``1/√(d̂_j d̂_i)``, ``d̂_i = Σ_j Â_ji`` (in-degree).

    ``improved`` uses ``A + 2I`` — but, as in PyG 2.8, only when ``edge_weight`` is given: without
    weights every edge, loops included, weighs 1. A node of degree 0 (possible only without
    self-loops) gets weight 0 on its edges instead of ``inf``.
    """
    if add_self_loops:
        edge_index, edge_weight = add_remaining_self_loops(
            edge_index, edge_weight, 2.0 if improved else 1.0, num_nodes
        )
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.shape[1], dtype=dtype, device=edge_index.device)
    src, dst = edge_index[0], edge_index[1]
    deg = scatter(edge_weight, dst if flow == "source_to_target" else src, num_nodes, "sum")
    inv_sqrt = deg.pow(-0.5).masked_fill_(deg == 0, 0.0)
    return edge_index, inv_sqrt[src] * edge_weight * inv_sqrt[dst]
