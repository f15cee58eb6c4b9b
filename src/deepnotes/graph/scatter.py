"""Scatter reductions and the segment softmax that every message-passing layer is built on.

An edge list in PyG's convention is ``edge_index (LongTensor[2, E])`` whose row 0 holds the
*source* node ``j`` and row 1 the *target* node ``i`` of each edge ``j → i``. A layer computes one
message per edge and reduces the messages that share a target:

    out[i] = ⊕_{e : index[e] = i} src[e]

with ⊕ one of sum, mean, max, min. Nodes that receive no message get 0 (PyG's convention), which
makes isolated nodes well defined for every reduction.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepnotes.core.checks import check_choice

REDUCTIONS = ("sum", "add", "mean", "max", "min")


def scatter(src: Tensor, index: Tensor, dim_size: int, reduce: str = "sum") -> Tensor:
    """Reduce the rows of ``src (Tensor[E, *])`` into ``dim_size`` rows by ``index (LongTensor[E])``.

    ``reduce`` is ``"sum"`` (alias ``"add"``), ``"mean"``, ``"max"`` or ``"min"``; rows that no
    index points at are 0. Sum uses ``index_add_``; the others use ``scatter_reduce`` with
    ``include_self=False``, whose gradient for max/min is split evenly between tied maxima (as
    PyG's native path does).

    >>> scatter(torch.tensor([1., 2., 5.]), torch.tensor([0, 0, 2]), 3, "max")
    tensor([2., 0., 5.])
    """
    check_choice("reduce", reduce, REDUCTIONS)
    shape = (dim_size,) + tuple(src.shape[1:])
    if reduce in ("sum", "add"):
        return src.new_zeros(shape).index_add_(0, index, src)
    if reduce == "mean":
        total = src.new_zeros(shape).index_add_(0, index, src)
        count = torch.bincount(index, minlength=dim_size).clamp_(min=1).to(src.dtype)
        return total / count.view((-1,) + (1,) * (src.dim() - 1))
    expanded = index.view((-1,) + (1,) * (src.dim() - 1)).expand_as(src)
    op = "amax" if reduce == "max" else "amin"
    return src.new_zeros(shape).scatter_reduce(0, expanded, src, op, include_self=False)


def segment_softmax(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """Softmax of ``src (Tensor[E, *])`` over the groups of rows that share ``index``.

        α_e = exp(s_e − m_i) / (Σ_{e' → i} exp(s_e' − m_i) + 1e-16),   m_i = max_{e' → i} s_e'

    The shift by the group maximum keeps ``exp`` finite; the 1e-16 (PyG's constant) keeps a group
    of underflowed terms at 0 instead of NaN.
    """
    shift = scatter(src.detach(), index, dim_size, "max")
    e = (src - shift.index_select(0, index)).exp()
    total = scatter(e, index, dim_size, "sum") + 1e-16
    return e / total.index_select(0, index)


def degree(index: Tensor, num_nodes: int, dtype: torch.dtype | None = None) -> Tensor:
    """Number of entries of ``index`` equal to each node id ``0..num_nodes-1``."""
    return torch.bincount(index, minlength=num_nodes).to(dtype or torch.float32)
