"""Graph isomorphism network layer (Xu et al.): an injective sum aggregation followed by an MLP.

    x'_i = h_Θ( (1 + ε) · x_i + Σ_{j ∈ N(i)} x_j )

The *sum* (not a mean or max) keeps the multiset of neighbour features distinguishable, which is
what makes GIN as discriminative as the 1-WL test; ε (learnable with ``train_eps``) weighs the
node against its neighbours.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from deepnotes.graph.message_passing import MessagePassing


class GINConv(MessagePassing):
    """Same constructor arguments and ``state_dict`` keys (``eps``, ``nn.*``) as
    ``torch_geometric.nn.GINConv``.

    Parameters
    ----------
    nn : torch.nn.Module
        The MLP ``h_Θ`` mapping ``[N, in]`` to ``[N, out]``.
    eps : float
        Initial ε.
    train_eps : bool
        ε is a parameter; otherwise a buffer (saved in the ``state_dict`` either way).
    aggr, flow : see :class:`MessagePassing` (default ``"add"``).
    """

    def __init__(self, nn: nn.Module, eps: float = 0.0, train_eps: bool = False, aggr: str = "add",
                 flow: str = "source_to_target"):
        super().__init__(aggr, flow)
        self._check_aggr()
        self.nn = nn
        self.initial_eps = eps
        if train_eps:
            self.eps = torch.nn.Parameter(torch.empty(1))
        else:
            self.register_buffer("eps", torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.nn.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        with torch.no_grad():
            self.eps.fill_(self.initial_eps)

    def forward(self, x: Tensor | tuple[Tensor, Tensor | None], edge_index: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        edge_index, size = self.check_inputs(x, edge_index, size)
        x_dst = x if isinstance(x, Tensor) else x[1]
        out = self.propagate(edge_index, x, size)
        if x_dst is not None:
            out = out + (1 + self.eps) * x_dst
        return self.nn(out)

    def extra_repr(self) -> str:
        return f"eps={self.initial_eps}"
