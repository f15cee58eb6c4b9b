"""GNN models for the three graph tasks, one class over the four layer types.

``GNN(conv, in_channels, hidden_channels, out_channels, num_layers)`` stacks ``num_layers``
message-passing layers with ReLU and dropout between them:

* node classification (``readout=None``): the last layer outputs the class logits of every node;
* graph classification (``readout="add" | "mean" | "max"``): the node states are pooled per graph
  and a linear layer gives the class logits;
* link prediction: :meth:`GNN.embed` gives node embeddings scored by a dot product.

Registered as ``gcn``, ``gat``, ``sage`` and ``gin`` (factories ``f(in_shape, num_classes, **kw)``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from deepnotes.core.checks import check_choice, check_int, check_probability
from deepnotes.core.registry import MODELS
from deepnotes.graph.data import Graph
from deepnotes.graph.gat import GATConv
from deepnotes.graph.gcn import GCNConv
from deepnotes.graph.gin import GINConv
from deepnotes.graph.readout import global_add_pool, global_max_pool, global_mean_pool
from deepnotes.graph.sage import SAGEConv

CONVS = ("gcn", "gat", "sage", "gin")
READOUTS = {"add": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


def make_conv(kind: str, in_channels: int, out_channels: int, heads: int = 4, last: bool = False) -> nn.Module:
    """One layer of the given kind mapping ``in_channels`` to ``out_channels`` features."""
    if kind == "gcn":
        return GCNConv(in_channels, out_channels)
    if kind == "gat":
        # hidden layers: ``heads`` concatenated heads of out/heads channels; the last: heads averaged
        if last or out_channels % heads:
            return GATConv(in_channels, out_channels, heads=heads, concat=False)
        return GATConv(in_channels, out_channels // heads, heads=heads)
    if kind == "sage":
        return SAGEConv(in_channels, out_channels)
    mlp = nn.Sequential(nn.Linear(in_channels, out_channels), nn.ReLU(), nn.Linear(out_channels, out_channels))
    return GINConv(mlp, train_eps=True)


class GNN(nn.Module):
    def __init__(
        self,
        conv: str,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int = 2,
        dropout: float = 0.5,
        readout: str | None = None,
        heads: int = 4,
    ):
        super().__init__()
        self.conv = check_choice("conv", conv, CONVS)
        check_int("num_layers", num_layers, min=1)
        self.dropout = check_probability("dropout", dropout)
        self.readout = None if readout is None else check_choice("readout", readout, READOUTS)
        node_out = out_channels if readout is None else hidden_channels
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [node_out]
        self.layers = nn.ModuleList(
            make_conv(conv, widths[k], widths[k + 1], heads, last=k == num_layers - 1) for k in range(num_layers)
        )
        self.head = None if readout is None else nn.Linear(hidden_channels, out_channels)

    def node_states(self, x: Tensor, edge_index: Tensor) -> list[Tensor]:
        """The node features after every layer (``[h_1, ..., h_L]``, before the final activation)."""
        states = []
        for k, layer in enumerate(self.layers):
            if k:
                x = F.dropout(F.relu(x), self.dropout, self.training)
            x = layer(x, edge_index)
            states.append(x)
        return states

    def embed(self, graph: Graph) -> Tensor:
        return self.node_states(graph.x, graph.edge_index)[-1]

    def forward(self, graph: Graph) -> Tensor:
        h = self.embed(graph)
        if self.readout is None:
            return h
        pooled = READOUTS[self.readout](F.relu(h), graph.batch, size=graph.num_graphs if graph.batch is not None else None)
        return self.head(pooled)


def _factory(kind: str):
    def create(in_shape: tuple[int, ...], num_classes: int, hidden: int = 32, layers: int = 2,
               dropout: float = 0.5, readout: str | None = None, heads: int = 4) -> GNN:
        return GNN(kind, int(in_shape[0]), hidden, num_classes, layers, dropout, readout, heads)
    create.__name__ = f"{kind}_model"
    create.__doc__ = f"A {kind.upper()} network (see :class:`GNN`); ``readout`` set for graph classification."
    return create


for _kind in CONVS:
    MODELS.register(_kind, task=("node", "graph", "link"), description=f"{_kind.upper()} graph network (node/graph/link tasks)")(
        _factory(_kind)
    )
