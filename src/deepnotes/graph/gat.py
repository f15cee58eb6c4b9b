"""Graph attention (Veličković et al.): learned, per-edge weights normalized over each neighbourhood.

For every head ``h`` with its own projection ``W`` and attention vectors ``a_src, a_dst``:

    e_ji = LeakyReLU( a_srcᵀ W x_j + a_dstᵀ W x_i [+ a_edgeᵀ W_e e_ji] )
    α_ji = softmax_{j ∈ N(i) ∪ {i}} (e_ji)
    x'_i = ‖_h Σ_j α_ji W x_j   (concatenated heads)   or   mean_h (...)   (+ residual) + b

Splitting ``aᵀ[W x_i ‖ W x_j]`` into a source and a target half lets each half be computed once
per node rather than once per edge.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepnotes.core.checks import check_int, check_tensor
from deepnotes.graph.gcn import glorot_
from deepnotes.graph.loops import add_self_loops as add_loops
from deepnotes.graph.loops import remove_self_loops
from deepnotes.graph.message_passing import MessagePassing
from deepnotes.graph.scatter import segment_softmax


class GATConv(MessagePassing):
    """Same constructor arguments and ``state_dict`` keys as ``torch_geometric.nn.GATConv``.

    Parameters
    ----------
    in_channels : int or (int, int)
        A pair gives separate source/target projections ``lin_src``/``lin_dst`` (bipartite).
    out_channels : int
        Channels per head.
    heads : int
    concat : bool
        Concatenate the heads (``heads * out_channels`` outputs) or average them.
    negative_slope : float
        LeakyReLU slope of the attention logits.
    dropout : float
        Dropout on the attention coefficients while training.
    add_self_loops : bool
        Remove existing loops, then add one per node whose features are ``fill_value``.
    edge_dim : int or None
        Size of the edge features that enter the attention logits.
    fill_value : float, Tensor or ``"mean" | "add" | "max" | "min"``
        Edge features of the added loops (default: the mean of the node's incoming edges).
    bias, residual : bool

    ``forward(x, edge_index, edge_attr=None, size=None, return_attention_weights=None)``; with
    ``return_attention_weights`` set, also returns ``(edge_index, alpha (Tensor[E', heads]))``.
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        edge_dim: int | None = None,
        fill_value: float | Tensor | str = "mean",
        bias: bool = True,
        residual: bool = False,
        aggr: str = "add",
        flow: str = "source_to_target",
    ):
        super().__init__(aggr, flow)
        self._check_aggr()
        check_int("heads", heads, min=1)
        self.in_channels, self.out_channels, self.heads, self.concat = in_channels, out_channels, heads, concat
        self.negative_slope, self.dropout = negative_slope, dropout
        self.add_self_loops, self.edge_dim, self.fill_value, self.residual = add_self_loops, edge_dim, fill_value, residual
        hc = heads * out_channels
        self.lin = self.lin_src = self.lin_dst = None
        if isinstance(in_channels, int):
            self.lin = nn.Linear(in_channels, hc, bias=False)
        else:
            self.lin_src = nn.Linear(in_channels[0], hc, bias=False)
            self.lin_dst = nn.Linear(in_channels[1], hc, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        if edge_dim is not None:
            self.lin_edge = nn.Linear(edge_dim, hc, bias=False)
            self.att_edge = nn.Parameter(torch.empty(1, heads, out_channels))
        else:
            self.lin_edge = None
            self.register_parameter("att_edge", None)
        total = hc if concat else out_channels
        target_in = in_channels if isinstance(in_channels, int) else in_channels[1]
        self.res = nn.Linear(target_in, total, bias=False) if residual else None
        self.bias = nn.Parameter(torch.empty(total)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin, self.lin_src, self.lin_dst, self.lin_edge, self.res):
            if lin is not None:
                glorot_(lin.weight)
        for att in (self.att_src, self.att_dst, self.att_edge):
            if att is not None:
                glorot_(att)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _project(self, x: Tensor | tuple[Tensor, Tensor | None]) -> tuple[Tensor, Tensor | None]:
        H, C = self.heads, self.out_channels
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        lin_src = self.lin if self.lin is not None else self.lin_src
        lin_dst = self.lin if self.lin is not None else self.lin_dst
        h_src = lin_src(x_src).view(-1, H, C)
        if isinstance(x, Tensor) and self.lin is not None:
            return h_src, h_src
        return h_src, None if x_dst is None else lin_dst(x_dst).view(-1, H, C)

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Tensor,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
        return_attention_weights: bool | None = None,
    ):
        edge_index, (n_src, n_dst) = self.check_inputs(x, edge_index, size)
        if edge_attr is not None:
            check_tensor("edge_attr", edge_attr, ndim=(1, 2), floating=True)
            if edge_attr.shape[0] != edge_index.shape[1]:
                raise ValueError(f"edge_attr must have one row per edge ({edge_index.shape[1]}), got {edge_attr.shape[0]}")
        x_dst_in = x if isinstance(x, Tensor) else x[1]
        h_src, h_dst = self._project(x)
        # per-node halves of the attention logit: a_srcᵀ W x_j and a_dstᵀ W x_i
        score_src = (h_src * self.att_src).sum(-1)
        score_dst = None if h_dst is None else (h_dst * self.att_dst).sum(-1)
        if self.add_self_loops:
            edge_index, edge_attr = remove_self_loops(edge_index, edge_attr)
            edge_index, edge_attr = add_loops(edge_index, edge_attr, self.fill_value, min(n_src, n_dst))
        j, i = self.edge_ends(edge_index)
        logits = score_src.index_select(0, j)
        if score_dst is not None:
            logits = logits + score_dst.index_select(0, i)
        if edge_index.shape[1] > 0 and edge_attr is not None and self.lin_edge is not None:
            e = self.lin_edge(edge_attr.view(-1, 1) if edge_attr.dim() == 1 else edge_attr)
            logits = logits + (e.view(-1, self.heads, self.out_channels) * self.att_edge).sum(-1)
        alpha = segment_softmax(F.leaky_relu(logits, self.negative_slope), i, n_dst)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        out = self.propagate(edge_index, (h_src, h_dst), (n_src, n_dst), alpha=alpha)
        out = out.reshape(-1, self.heads * self.out_channels) if self.concat else out.mean(dim=1)
        if self.res is not None and x_dst_in is not None:
            out = out + self.res(x_dst_in)
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            return out, (edge_index, alpha)
        return out

    def message(self, x_j: Tensor, x_i: Tensor | None, alpha: Tensor) -> Tensor:
        return alpha.unsqueeze(-1) * x_j

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, heads={self.heads}"
