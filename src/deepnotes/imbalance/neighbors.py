"""Brute-force k-nearest-neighbour search in chunks: one matrix product and one ``topk`` per block.

Squared Euclidean distances are ranked as ``‖b‖² − 2 q·b`` (the query's own ``‖q‖²`` is constant
along a row, so it is left out of the ranking). Memory is ``chunk_size × n_fit`` per block.

When the queries are rows of the fitted set (``self_index`` given), each query's own row is
excluded explicitly instead of relying on it coming out first with distance 0 — with exact
duplicates sklearn may list the duplicate before the point itself, we always drop the point.
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_int


def kneighbors(
    X_query: torch.Tensor,
    X_fit: torch.Tensor,
    n_neighbors: int,
    *,
    self_index: torch.Tensor | None = None,
    chunk_size: int = 2048,
) -> torch.Tensor:
    """Indices of the ``n_neighbors`` nearest rows of ``X_fit`` for every row of ``X_query``.

    Parameters
    ----------
    X_query : Tensor[m, d]
    X_fit : Tensor[n, d]
    n_neighbors : int
        ``k``; needs ``k <= n`` (``k <= n - 1`` with ``self_index``).
    self_index : Tensor[m] of int64, optional
        Row of ``X_fit`` that each query *is*; that row is never returned for it.
    chunk_size : int
        Query rows per block.

    Returns
    -------
    Tensor[m, k] int64, nearest first (the order of ``sklearn.neighbors.NearestNeighbors``).
    """
    k = check_int("n_neighbors", n_neighbors, min=1)
    check_int("chunk_size", chunk_size, min=1)
    available = X_fit.shape[0] - (0 if self_index is None else 1)
    if k > available:
        raise ValueError(f"n_neighbors ({k}) must be <= the number of candidate neighbours ({available})")
    # float64 ranking so that the order matches sklearn's exact distances on float32 data too
    A = X_fit if X_fit.dtype == torch.float64 else X_fit.to(torch.float64)
    Q = X_query if X_query.dtype == torch.float64 else X_query.to(torch.float64)
    sq = (A * A).sum(1)
    out = []
    for start in range(0, Q.shape[0], chunk_size):  # blocks bound memory; not a per-sample loop
        score = torch.addmm(sq, Q[start : start + chunk_size], A.T, alpha=-2.0)
        if self_index is not None:
            rows = torch.arange(score.shape[0])
            score[rows, self_index[start : start + chunk_size]] = float("inf")
        out.append(torch.topk(score, k, dim=1, largest=False, sorted=True).indices)
    return torch.cat(out)
