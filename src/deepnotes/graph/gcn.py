"""Graph convolution (Kipf & Welling): a fixed, degree-normalized average of transformed neighbours.

    X' = D̂^{-1/2} Â D̂^{-1/2} X Θ + b,   Â = A + I,   D̂_ii = Σ_j Â_ji

node by node ``x'_i = Θᵀ Σ_{j ∈ N(i) ∪ {i}} e_ji / √(d̂_j d̂_i) · x_j + b``. The weights depend only
on the degrees — the learnable part is the shared matrix Θ.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from deepnotes.graph.checks import check_edge_weight
from deepnotes.graph.loops import gcn_norm
from deepnotes.graph.message_passing import MessagePassing


def glorot_(weight: Tensor) -> Tensor:
    """Uniform on ±√(6 / (fan_in + fan_out)) over the last two dims (PyG's ``glorot``)."""
    bound = math.sqrt(6.0 / (weight.size(-2) + weight.size(-1)))
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


class GCNConv(MessagePassing):
    """Same constructor arguments and ``state_dict`` keys (``lin.weight``, ``bias``) as
    ``torch_geometric.nn.GCNConv``.

    Parameters
    ----------
    in_channels, out_channels : int
    improved : bool
        ``Â = A + 2I`` (effective only with ``edge_weight``, see :func:`gcn_norm`).
    cached : bool
        Keep the normalized edges of the first call and reuse them (transductive use only).
    add_self_loops : bool or None
        Default: equal to ``normalize``. Loops without normalization are rejected, as in PyG.
    normalize : bool
        Apply the symmetric normalization; ``False`` sums the (weighted) neighbours.
    bias : bool
    aggr, flow : see :class:`MessagePassing` (default ``"add"``).

    Shapes: ``x (Tensor[N, in])``, ``edge_index (LongTensor[2, E])``, ``edge_weight (Tensor[E])``
    → ``Tensor[N, out]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        improved: bool = False,
        cached: bool = False,
        add_self_loops: bool | None = None,
        normalize: bool = True,
        bias: bool = True,
        aggr: str = "add",
        flow: str = "source_to_target",
    ):
        super().__init__(aggr, flow)
        self._check_aggr()
        if add_self_loops is None:
            add_self_loops = normalize
        if add_self_loops and not normalize:
            raise ValueError("add_self_loops=True needs normalize=True (GCNConv adds loops only while normalizing)")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.improved, self.cached = improved, cached
        self.add_self_loops, self.normalize = add_self_loops, normalize
        self._cache: tuple[Tensor, Tensor] | None = None
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_(self.lin.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self._cache = None

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor (GCNConv has no bipartite form), got {type(x).__name__}")
        edge_index, (n, _) = self.check_inputs(x, edge_index)
        if edge_weight is not None:
            check_edge_weight(edge_weight, edge_index.shape[1])
        if self.normalize:
            if self._cache is None:
                edge_index, edge_weight = gcn_norm(
                    edge_index, edge_weight, n, self.improved, self.add_self_loops, self.flow, x.dtype
                )
                if self.cached:
                    self._cache = (edge_index, edge_weight)
            else:
                edge_index, edge_weight = self._cache
        out = self.propagate(edge_index, self.lin(x), edge_weight=edge_weight)
        return out if self.bias is None else out + self.bias

    def message(self, x_j: Tensor, x_i: Tensor | None, edge_weight: Tensor | None = None) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"
