"""GraphSAGE: a node's own features next to an aggregate of its neighbours', each with its own weight.

    x'_i = W_l · AGG_{j ∈ N(i)} x_j + b + W_r x_i          (then ‖·‖₂-normalized if ``normalize``)

with AGG the mean, the max-pool (``project=True, aggr="max"``: ``max_j ReLU(W_p x_j + b_p)``) or an
LSTM run over the neighbours in edge order. Unlike GCN the node's own term is not mixed into the
average, and the aggregator is a separate module that can be swapped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepnotes.core.checks import check_choice
from deepnotes.graph.message_passing import MessagePassing

SAGE_AGGREGATORS = ("mean", "max", "min", "sum", "add", "lstm")


class LSTMAggregation(nn.Module):
    """Run an LSTM over each node's incoming messages (in edge order) and keep its last output.

    As in PyG, every sequence is zero-padded at the end to the largest in-degree and the output
    at the last padded step is kept; a node without neighbours reads an all-zero sequence. With no
    edges at all the sequences are empty and the result is 0. Edges are first sorted stably by
    receiving node, so unsorted input gives the order of the edges within each node (PyG refuses
    unsorted input).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lstm = nn.LSTM(in_channels, out_channels, batch_first=True)

    def forward(self, messages: Tensor, index: Tensor, num_targets: int) -> Tensor:
        if index.numel() == 0:
            return messages.new_zeros(num_targets, self.out_channels)
        order = torch.sort(index, stable=True).indices
        index, messages = index[order], messages[order]
        count = torch.bincount(index, minlength=num_targets)
        start = torch.cumsum(count, 0) - count
        position = torch.arange(index.numel(), device=index.device) - start[index]
        dense = messages.new_zeros(num_targets, int(count.max()), messages.shape[-1])
        dense[index, position] = messages
        return self.lstm(dense)[0][:, -1]


class SAGEConv(MessagePassing):
    """Same constructor arguments and ``state_dict`` keys as ``torch_geometric.nn.SAGEConv``
    (``lin_l.weight``, ``lin_l.bias``, ``lin_r.weight``, ``lin.*`` with ``project``,
    ``aggr_module.lstm.*`` with ``aggr="lstm"``).

    Parameters
    ----------
    in_channels : int or (int, int)
        A pair for (source, target) features of a bipartite graph (sampled mini-batches).
    out_channels : int
    aggr : ``"mean" | "max" | "min" | "sum" | "lstm"``
    normalize : bool
        L2-normalize each output row.
    root_weight : bool
        Add the node's own transformed features ``W_r x_i``.
    project : bool
        Transform the neighbours by ``ReLU(W_p x_j + b_p)`` before aggregating (max-pool with ``aggr="max"``).
    bias : bool
        Bias of ``lin_l``.

    ``forward(x, edge_index, size=None)``: ``x`` is ``Tensor[N, in]`` or a pair; → ``Tensor[N_target, out]``.
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        aggr: str = "mean",
        normalize: bool = False,
        root_weight: bool = True,
        project: bool = False,
        bias: bool = True,
        flow: str = "source_to_target",
    ):
        super().__init__(check_choice("aggr", aggr, SAGE_AGGREGATORS), flow)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.normalize, self.root_weight, self.project = normalize, root_weight, project
        c_src, c_dst = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        if project:
            self.lin = nn.Linear(c_src, c_src, bias=True)
        self.aggr_module = LSTMAggregation(c_src, c_src) if aggr == "lstm" else None
        self.lin_l = nn.Linear(c_src, out_channels, bias=bias)
        if root_weight:
            self.lin_r = nn.Linear(c_dst, out_channels, bias=False)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor | tuple[Tensor, Tensor | None], edge_index: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        edge_index, size = self.check_inputs(x, edge_index, size)
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        if self.project:
            x_src = F.relu(self.lin(x_src))
        out = self.lin_l(self.propagate(edge_index, (x_src, x_dst), size))
        if self.root_weight and x_dst is not None:
            out = out + self.lin_r(x_dst)
        return F.normalize(out, p=2.0, dim=-1) if self.normalize else out

    def aggregate(self, messages: Tensor, index: Tensor, num_targets: int) -> Tensor:
        if self.aggr_module is not None:
            return self.aggr_module(messages, index, num_targets)
        return super().aggregate(messages, index, num_targets)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, aggr={self.aggr}"
