"""The message-passing base: gather, message, aggregate, update.

For a target node ``i`` with in-neighbours ``N(i) = {j : (j → i) ∈ E}``,

    h'_i = update( ⊕_{j ∈ N(i)} message(h_i, h_j, e_ji) )

and a layer only says what ``message``, ``⊕`` and ``update`` are. Messages are computed on every
edge at once: ``x_j = x[edge_index[0]]`` and ``x_i = x[edge_index[1]]`` are gathered with
``index_select``, reduced by target with :func:`~deepnotes.graph.scatter.scatter`. With
``flow="target_to_source"`` the two rows of ``edge_index`` swap roles, as in PyG.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from deepnotes.core.checks import check_choice
from deepnotes.graph.checks import check_edge_index, check_node_features
from deepnotes.graph.scatter import REDUCTIONS, scatter

FLOWS = ("source_to_target", "target_to_source")


class MessagePassing(nn.Module):
    """Base class; subclasses override :meth:`message` (and :meth:`aggregate` or :meth:`update`).

    Parameters
    ----------
    aggr : ``"add" | "sum" | "mean" | "max" | "min"``
        The reduction ⊕ over a node's incoming messages (0 for a node without any).
    flow : ``"source_to_target" | "target_to_source"``
        Which row of ``edge_index`` holds the node that *receives* the message (row 1 by default).
    """

    def __init__(self, aggr: str = "add", flow: str = "source_to_target"):
        super().__init__()
        self.aggr = aggr
        self.flow = check_choice("flow", flow, FLOWS)

    def _check_aggr(self) -> None:
        check_choice("aggr", self.aggr, REDUCTIONS)

    @staticmethod
    def graph_size(x: Tensor | tuple[Tensor, Tensor | None], size: tuple[int, int] | None) -> tuple[int, int]:
        """``(num_sources, num_targets)`` from the features (or the explicit ``size``)."""
        if size is not None:
            return int(size[0]), int(size[1])
        if isinstance(x, Tensor):
            return x.shape[0], x.shape[0]
        x_src, x_dst = x
        if x_dst is None:
            raise ValueError("size must be given when the target features x[1] are None")
        return x_src.shape[0], x_dst.shape[0]

    def edge_ends(self, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        """``(j, i)``: the sending and the receiving node of every edge."""
        if self.flow == "source_to_target":
            return edge_index[0], edge_index[1]
        return edge_index[1], edge_index[0]

    def check_inputs(
        self, x: Tensor | tuple[Tensor, Tensor | None], edge_index: Tensor, size: tuple[int, int] | None = None
    ) -> tuple[Tensor, tuple[int, int]]:
        """Validate ``x`` and ``edge_index`` against each other; return the edges and the size."""
        pair = (x, x) if isinstance(x, Tensor) else tuple(x)
        if len(pair) != 2:
            raise ValueError("x must be a tensor or a pair (x_source, x_target)")
        check_node_features(pair[0], "x" if isinstance(x, Tensor) else "x[0]",
                            None if size is None else int(size[0]))
        if pair[1] is not None and not isinstance(x, Tensor):
            check_node_features(pair[1], "x[1]", None if size is None else int(size[1]))
        n_src, n_dst = self.graph_size(x, size)
        counts = (n_src, n_dst) if self.flow == "source_to_target" else (n_dst, n_src)
        return check_edge_index(edge_index, counts), (n_src, n_dst)

    def propagate(
        self,
        edge_index: Tensor,
        x: Tensor | tuple[Tensor, Tensor | None],
        size: tuple[int, int] | None = None,
        **edge_kwargs: Any,
    ) -> Tensor:
        """Run gather → :meth:`message` → :meth:`aggregate` → :meth:`update` over every edge.

        ``x`` is ``Tensor[N, *]`` or a pair for a bipartite graph; ``edge_kwargs`` are per-edge
        tensors (weights, attention) passed to :meth:`message` by name.
        """
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        _, n_dst = self.graph_size(x, size)
        j, i = self.edge_ends(edge_index)
        x_i = None if x_dst is None else x_dst.index_select(0, i)
        messages = self.message(x_src.index_select(0, j), x_i, **edge_kwargs)
        return self.update(self.aggregate(messages, i, n_dst))

    def message(self, x_j: Tensor, x_i: Tensor | None, **edge_kwargs: Any) -> Tensor:
        """The message sent along each edge; by default the sender's features ``x_j``."""
        return x_j

    def aggregate(self, messages: Tensor, index: Tensor, num_targets: int) -> Tensor:
        """Reduce the messages by receiving node with ``self.aggr``."""
        return scatter(messages, index, num_targets, self.aggr)

    def update(self, aggregated: Tensor) -> Tensor:
        return aggregated
