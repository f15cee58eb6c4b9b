"""Exact k-nearest-neighbour search (squared Euclidean distance): the definition, in chunks.

For every query ``q`` and fitted row ``b`` the squared distance is ``Σ_j (q_j − b_j)²`` in
float64; each query keeps the ``k`` smallest, nearest first, equal distances by the lower row
index (the order of ``sklearn.neighbors.NearestNeighbors``). Memory stays bounded by walking over
blocks of queries and blocks of fitted rows and merging each block's candidates into a running
list of the ``k`` best.

Both sets are first multiplied by one power of two (exact) that brings the largest absolute value
to at most 1, so no square overflows whatever the magnitude of the (finite) input; distances are
scaled back at the end.

:func:`deepnotes.classic.neighbors_fast.kneighbors` returns the same neighbours faster (a
low-precision filter, then this exact ranking on the few survivors).

Example
-------
>>> import torch
>>> A = torch.tensor([[0.0], [1.0], [3.0], [1.0]])
>>> kneighbors_exact(torch.tensor([[0.9]]), A, 3).tolist()
[[1, 3, 0]]
"""

from __future__ import annotations

import math

import torch

from deepnotes.core.checks import check_int

_BLOCK = 1 << 22  # elements of the (queries × fitted rows × features) difference block


def kneighbors_exact(
    X_query: torch.Tensor,
    X_fit: torch.Tensor,
    n_neighbors: int,
    *,
    self_index: torch.Tensor | None = None,
    chunk_size: int = 2048,
    return_distance: bool = False,
    squared: bool = False,
):
    """Indices of the ``n_neighbors`` nearest rows of ``X_fit`` for every row of ``X_query``.

    Parameters
    ----------
    X_query : Tensor[m, d]
    X_fit : Tensor[n, d]
        Finite values (NaN or infinity raise ``ValueError``).
    n_neighbors : int
        ``k``; needs ``k <= n`` (``k <= n - 1`` with ``self_index``).
    self_index : Tensor[m] of int64, optional
        Row of ``X_fit`` that each query *is*; that row is never returned for it (with exact
        duplicates scikit-learn may list the duplicate before the point itself; we always drop
        the point).
    chunk_size : int
        At most this many queries per block.
    return_distance : bool
        Also return the distances (float64), as ``(dist, idx)``.
    squared : bool
        Return squared distances.

    Returns
    -------
    Tensor[m, k] int64, nearest first; with ``return_distance``, ``(Tensor[m, k] float64, idx)``.
    """
    k = check_inputs(X_query, X_fit, n_neighbors, self_index, chunk_size)
    s = common_scale(X_query, X_fit)
    Q, A = X_query.to(torch.float64) * s, X_fit.to(torch.float64) * s
    (m, d), n = Q.shape, A.shape[0]
    rows = max(1, min(chunk_size, _BLOCK // max(1, n * d)))  # queries per block
    cols = max(k, _BLOCK // max(1, rows * d))  # fitted rows per block
    dist, idx = [], []
    for r0 in range(0, m, rows):  # blocks bound memory; not a per-sample loop
        q = Q[r0 : r0 + rows]
        best_d = torch.empty(len(q), 0, dtype=torch.float64, device=Q.device)
        best_i = torch.empty(len(q), 0, dtype=torch.int64, device=Q.device)
        for c0 in range(0, n, cols):
            d2 = (q.unsqueeze(1) - A[c0 : c0 + cols].unsqueeze(0)).square_().sum(-1)
            ids = torch.arange(c0, c0 + d2.shape[1], device=Q.device).expand_as(d2)
            if self_index is not None:  # a query is never its own neighbour
                d2 = d2.masked_fill(ids == self_index[r0 : r0 + rows, None], math.inf)
            D, ids = torch.cat([best_d, d2], 1), torch.cat([best_i, ids], 1)
            best_d, best_i = first_k(D, ids, min(k, D.shape[1]))
        dist.append(best_d)
        idx.append(best_i)
    return result(torch.cat(idx), torch.cat(dist), s, return_distance, squared)


def common_scale(*tensors: torch.Tensor) -> float:
    """A power of two ``s`` with ``max |s·x| <= 1`` over all ``tensors`` (1 for all-zero input).

    Scaling by a power of two is exact (barring underflow to subnormals), so it changes no
    neighbour, and the squares of ``s·x`` cannot overflow.
    """
    top = max((max_abs(t) for t in tensors), default=0.0)
    return 2.0 ** -math.frexp(top)[1] if top > 0 else 1.0


def max_abs(t: torch.Tensor) -> float:
    """``max |t|`` (0 for an empty tensor), in one pass and without an ``abs`` copy."""
    if not t.numel():
        return 0.0
    lo, hi = torch.aminmax(t)
    return max(-float(lo), float(hi))


def result(idx, d2, s, return_distance, squared):
    """``idx``, or ``(dist, idx)`` with the scaled squared distances ``d2`` scaled back by ``s``."""
    if not return_distance:
        return idx
    return (d2 / (s * s) if squared else d2.sqrt() / s), idx


def first_k(D: torch.Tensor, ids: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest of each row of ``D`` and their ``ids``, equal values by smaller ``ids``.

    ``topk`` breaks ties arbitrarily, so it takes ``k + 1`` values and the rare rows with two
    equal finite values among them are redone by index order then a stable sort on ``D``.
    """
    m = min(k + 1, D.shape[1])
    d, j = torch.topk(D, m, dim=1, largest=False, sorted=True)
    tie = ((d[:, 1:] == d[:, :-1]) & torch.isfinite(d[:, 1:])).any(1).nonzero().flatten()
    d, i = d[:, :k], ids.gather(1, j[:, :k])
    if len(tie):
        Ii, perm = torch.sort(torch.where(ids[tie] < 0, ids.new_tensor(2**62), ids[tie]), dim=1)
        Di = D[tie].gather(1, perm)
        order = torch.sort(Di, dim=1, stable=True).indices[:, :k]
        d[tie], i[tie] = Di.gather(1, order), Ii.gather(1, order)
    return d, i


def finite(X: torch.Tensor) -> bool:
    """No NaN or infinity in ``X``: one summing pass, the elementwise test only if the sum is not
    finite (a sum of finite values can also overflow)."""
    if not X.is_floating_point() or X.numel() == 0:
        return True
    return math.isfinite(float(X.sum())) or bool(torch.isfinite(X).all())


def check_inputs(X_query, X_fit, n_neighbors, self_index, chunk_size, fit_checked=False) -> int:
    """Validate the search's arguments (``fit_checked``: ``X_fit`` was already); returns ``k``."""
    for name, X in (("X_query", X_query), ("X_fit", X_fit)):
        if not isinstance(X, torch.Tensor) or X.dim() != 2:
            raise ValueError(f"{name} must be a 2-d tensor (n, d)")
        if not (fit_checked and X is X_fit) and not finite(X):
            raise ValueError(f"{name} contains NaN or infinite values")
    if X_query.shape[1] != X_fit.shape[1]:
        raise ValueError(
            f"X_query has {X_query.shape[1]} features but X_fit has {X_fit.shape[1]}"
        )
    k = check_int("n_neighbors", n_neighbors, min=1)
    check_int("chunk_size", chunk_size, min=1)
    if self_index is not None and len(self_index) != X_query.shape[0]:
        raise ValueError(
            f"self_index has {len(self_index)} entries for {X_query.shape[0]} queries"
        )
    available = X_fit.shape[0] - (0 if self_index is None else 1)
    if k > available:
        raise ValueError(
            f"n_neighbors ({k}) must be <= the number of candidate neighbours ({available})"
        )
    return k
