"""A faster forward for GCN, GAT, GraphSAGE and GIN on a fixed graph: cached CSR adjacencies.

The readable layers gather one message per edge (``x[edge_index[0]]``, an ``E × F`` tensor) and
scatter it back; here the graph is turned once into a compressed sparse row matrix whose row ``i``
lists the sources of ``i``'s in-edges, and each aggregation becomes one sparse-dense product
(``Â X``) or one sorted segment reduction — no ``E × F`` message tensor is built for sum/mean.

:class:`FastGraph` holds the graph and caches every derived adjacency it is asked for (GCN's
normalized weights, GAT's loop-replaced edges, mean weights); :func:`fast_forward` runs a layer
of this package on it with the layer's own parameters and agrees with ``layer(x, edge_index)``
(tested). Configurations the fast path does not cover — bipartite input, ``flow="target_to_source"``,
the LSTM aggregator, GAT edge features or attention dropout while training, returned attention
weights — run the layer's own forward, so every call is correct.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor

from deepnotes.core.checks import check_int
from deepnotes.graph.checks import check_edge_index, check_edge_weight, check_node_features
from deepnotes.graph.gat import GATConv
from deepnotes.graph.gcn import GCNConv
from deepnotes.graph.gin import GINConv
from deepnotes.graph.loops import add_self_loops, gcn_norm, remove_self_loops
from deepnotes.graph.sage import SAGEConv

# edges gathered at once by the max/min segment reduction and the value gradient: bounds the
# temporary (chunk × features) tensors whatever the graph size
EDGE_CHUNK = 1 << 17


@dataclass(frozen=True)
class CSR:
    """Entries sorted by target row. ``crow (n+1)``, ``col``/``row (nnz)``: source and target of
    each entry; ``order``: the input edge of each entry; ``crow_t``/``perm_t``: the transpose
    (entries sorted by source), for the backward product."""

    crow: Tensor
    col: Tensor
    row: Tensor
    order: Tensor
    crow_t: Tensor
    perm_t: Tensor
    num_nodes: int

    @classmethod
    def from_edges(cls, src: Tensor, dst: Tensor, n: int) -> CSR:
        order = torch.sort(dst, stable=True).indices
        row, col = dst[order], src[order]
        perm_t = torch.sort(col, stable=True).indices
        return cls(_ptr(row, n), col, row, order, _ptr(col[perm_t], n), perm_t, n)

    @property
    def lengths(self) -> Tensor:
        return self.crow[1:] - self.crow[:-1]

    @cached_property
    def _indices(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``crow, col`` and the transpose's ``crow, col``, as int32 when they fit: the sparse
        product's kernel takes 32-bit indices, and int64 ones are converted on every call."""
        small = max(self.num_nodes, self.col.numel()) < 2**31 - 1
        dtype = torch.int32 if small else torch.int64
        return (self.crow.to(dtype), self.col.to(dtype), self.crow_t.to(dtype), self.row[self.perm_t].to(dtype))

    def matrix(self, values: Tensor, transpose: bool = False) -> Tensor:
        crow, col, crow_t, col_t = self._indices
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            if transpose:
                return torch.sparse_csr_tensor(crow_t, col_t, values[self.perm_t], (self.num_nodes, self.num_nodes),
                                               check_invariants=False)
            return torch.sparse_csr_tensor(crow, col, values, (self.num_nodes, self.num_nodes),
                                           check_invariants=False)


def _ptr(sorted_index: Tensor, n: int) -> Tensor:
    ptr = torch.zeros(n + 1, dtype=torch.long, device=sorted_index.device)
    ptr[1:] = torch.cumsum(torch.bincount(sorted_index, minlength=n), 0)
    return ptr


class _SpMM(torch.autograd.Function):
    """``out = A(values) @ x`` with gradients for both the entry values and ``x``."""

    @staticmethod
    def forward(ctx, values: Tensor, x: Tensor, csr: CSR) -> Tensor:
        ctx.save_for_backward(values, x)
        ctx.csr = csr
        return csr.matrix(values) @ x

    @staticmethod
    def backward(ctx, grad: Tensor):
        values, x = ctx.saved_tensors
        csr: CSR = ctx.csr
        grad_values = grad_x = None
        if ctx.needs_input_grad[1]:
            grad_x = csr.matrix(values, transpose=True) @ grad
        if ctx.needs_input_grad[0]:
            # ∂L/∂A_ij = <grad_i, x_j>, in chunks of edges
            grad_values = torch.cat([
                (grad[csr.row[s:s + EDGE_CHUNK]] * x[csr.col[s:s + EDGE_CHUNK]]).sum(-1)
                for s in range(0, values.numel(), EDGE_CHUNK)
            ]) if values.numel() else values.new_zeros(0)
        return grad_values, grad_x, None


def spmm(csr: CSR, values: Tensor, x: Tensor) -> Tensor:
    """``Σ_{entries (i ← j)} values · x_j`` for every row ``i`` — a CSR sparse-dense product."""
    return _SpMM.apply(values, x, csr)


def segment_extreme(csr: CSR, x: Tensor, reduce: str) -> Tensor:
    """Feature-wise max or min of the sources of each row (0 for an empty row), a block of rows
    at a time so that at most ``EDGE_CHUNK`` source rows are gathered at once. Ties share the
    gradient evenly, as in :func:`~deepnotes.graph.scatter.scatter`."""
    out, start, op = [], 0, "amax" if reduce == "max" else "amin"
    while start < csr.num_nodes:
        limit = int(torch.searchsorted(csr.crow, csr.crow[start] + EDGE_CHUNK, right=True)) - 1
        end = min(max(limit, start + 1), csr.num_nodes)
        a, b = int(csr.crow[start]), int(csr.crow[end])
        local = (csr.row[a:b] - start).unsqueeze(-1).expand(-1, x.shape[1])
        block = x.new_zeros(end - start, x.shape[1])
        out.append(block.scatter_reduce(0, local, x[csr.col[a:b]], op, include_self=False))
        start = end
    return torch.cat(out) if out else x.new_zeros(0, x.shape[1])


class FastGraph:
    """A graph prepared once for repeated layer calls: ``FastGraph(edge_index, num_nodes)``.

    ``edge_weight`` (optional, treated as a constant) is used by GCN. Derived adjacencies are built on first use and kept
    on this object (bounded by a handful of ``nnz``-sized tensors).
    """

    def __init__(self, edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None):
        self.num_nodes = check_int("num_nodes", num_nodes, min=0)
        self.edge_index = check_edge_index(edge_index, num_nodes)
        if edge_weight is not None:
            check_edge_weight(edge_weight, self.edge_index.shape[1])
        # a constant of the cached graph: gradients do not flow into it
        self.edge_weight = None if edge_weight is None else edge_weight.detach()
        self.csr = CSR.from_edges(self.edge_index[0], self.edge_index[1], num_nodes)
        self._cache: dict[tuple, object] = {}

    def _cached(self, key: tuple, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def gcn(self, improved: bool, loops: bool, normalize: bool, dtype: torch.dtype) -> tuple[CSR, Tensor]:
        def build():
            ei, w = self.edge_index, self.edge_weight
            if normalize:
                ei, w = gcn_norm(ei, w, self.num_nodes, improved, loops, dtype=dtype)
            elif w is None:
                w = torch.ones(ei.shape[1], dtype=dtype)
            csr = CSR.from_edges(ei[0], ei[1], self.num_nodes)
            return csr, w.to(dtype)[csr.order]
        return self._cached(("gcn", improved, loops, normalize, dtype), build)

    def gat(self, loops: bool) -> CSR:
        def build():
            ei = self.edge_index
            if loops:
                ei, _ = remove_self_loops(ei)
                ei, _ = add_self_loops(ei, None, num_nodes=self.num_nodes)
            return CSR.from_edges(ei[0], ei[1], self.num_nodes)
        return self._cached(("gat", loops), build)

    def with_loops(self, loop_weight: float, dtype: torch.dtype) -> tuple[CSR, Tensor]:
        """The graph with one extra self-loop per node (beside any loops it has) and its entry
        values: 1 for the edges, ``loop_weight`` for the extra loops. GIN's ``(1 + ε) x_i`` term
        becomes part of one product. Only the latest ``(loop_weight, dtype)`` values are kept."""
        def build():
            loops = torch.arange(self.num_nodes, device=self.edge_index.device)
            src, dst = self.edge_index
            csr = CSR.from_edges(torch.cat([src, loops]), torch.cat([dst, loops]), self.num_nodes)
            return csr, csr.order >= src.numel()
        csr, is_loop = self._cached(("loops",), build)
        key = (loop_weight, dtype)
        if self._cache.get("loop_values", (None,))[0] != key:
            values = torch.where(is_loop, torch.tensor(loop_weight, dtype=dtype), torch.ones((), dtype=dtype))
            self._cache["loop_values"] = (key, values)
        return csr, self._cache["loop_values"][1]

    def aggregate(self, x: Tensor, reduce: str) -> Tensor:
        """Sum, mean, max or min of each node's in-neighbours' features (0 without any)."""
        csr = self.csr
        if reduce in ("max", "min"):
            return segment_extreme(csr, x, reduce)
        key = ("weights", reduce, x.dtype)
        if reduce == "mean":
            w = self._cached(key, lambda: (1.0 / csr.lengths.clamp(min=1).to(x.dtype))[csr.row])
        else:
            w = self._cached(key, lambda: torch.ones(csr.col.numel(), dtype=x.dtype))
        return spmm(csr, w, x)


def _gcn(layer: GCNConv, x: Tensor, graph: FastGraph) -> Tensor:
    csr, w = graph.gcn(layer.improved, layer.add_self_loops, layer.normalize, x.dtype)
    out = spmm(csr, w, layer.lin(x))
    return out if layer.bias is None else out + layer.bias


def _gat(layer: GATConv, x: Tensor, graph: FastGraph) -> Tensor:
    H, C = layer.heads, layer.out_channels
    csr = graph.gat(layer.add_self_loops)
    h = layer.lin(x).view(-1, H, C)
    s_src = torch.einsum("nhc,hc->nh", h, layer.att_src[0])
    s_dst = torch.einsum("nhc,hc->nh", h, layer.att_dst[0])
    logits = F.leaky_relu(s_src[csr.col] + s_dst[csr.row], layer.negative_slope)
    shift = torch.segment_reduce(logits.detach(), "max", lengths=csr.lengths, axis=0, unsafe=True)
    e = (logits - shift[csr.row]).exp()
    denominator = torch.segment_reduce(e, "sum", lengths=csr.lengths, axis=0, unsafe=True) + 1e-16
    # Σ_j α_ji h_j = (Σ_j e_ji h_j) / Σ_j e_ji : one sparse product per head, one division per node
    heads = [spmm(csr, e[:, k].contiguous(), h[:, k].contiguous()) for k in range(H)]
    out = torch.stack(heads, 1) / denominator.unsqueeze(-1)
    out = out.reshape(-1, H * C) if layer.concat else out.mean(1)
    if layer.res is not None:
        out = out + layer.res(x)
    return out if layer.bias is None else out + layer.bias


def _sage(layer: SAGEConv, x: Tensor, graph: FastGraph) -> Tensor:
    src = F.relu(layer.lin(x)) if layer.project else x
    out = layer.lin_l(graph.aggregate(src, layer.aggr))
    if layer.root_weight:
        out = out.addmm(x, layer.lin_r.weight.t())  # W_r x_i added inside the product
    return F.normalize(out, p=2.0, dim=-1) if layer.normalize else out


def _gin(layer: GINConv, x: Tensor, graph: FastGraph) -> Tensor:
    if layer.aggr in ("add", "sum") and not (torch.is_grad_enabled() and layer.eps.requires_grad):
        # Σ_j x_j + (1 + ε) x_i as one product: the self term is an extra entry of weight 1 + ε
        csr, values = graph.with_loops(1 + float(layer.eps), x.dtype)
        return layer.nn(spmm(csr, values, x))
    # a trainable ε: its gradient is Σ grad · x from the separate term, not one per product entry
    return layer.nn(torch.addcmul(graph.aggregate(x, layer.aggr), x, 1 + layer.eps))


def _covered(layer, x) -> bool:
    if not isinstance(x, Tensor) or getattr(layer, "flow", None) != "source_to_target":
        return False
    if isinstance(layer, GCNConv):
        return layer.aggr in ("add", "sum") and not layer.cached
    if isinstance(layer, GATConv):
        return (layer.lin is not None and layer.lin_edge is None and layer.aggr in ("add", "sum")
                and not (layer.training and layer.dropout > 0))
    if isinstance(layer, SAGEConv):
        return layer.aggr != "lstm"
    return isinstance(layer, GINConv)


def fast_forward(layer, x: Tensor, graph: FastGraph) -> Tensor:
    """``layer(x, graph.edge_index)`` computed on the cached adjacency when the layer's
    configuration is covered (see the module docstring), by the layer itself otherwise."""
    check_node_features(x, "x", graph.num_nodes)
    if not _covered(layer, x):
        if isinstance(layer, GCNConv):
            return layer(x, graph.edge_index, graph.edge_weight)
        return layer(x, graph.edge_index)
    if isinstance(layer, GCNConv):
        return _gcn(layer, x, graph)
    if isinstance(layer, GATConv):
        return _gat(layer, x, graph)
    if isinstance(layer, SAGEConv):
        return _sage(layer, x, graph)
    return _gin(layer, x, graph)
