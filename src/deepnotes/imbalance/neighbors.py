"""k-nearest-neighbour search in chunks: a float32 matrix product to shortlist, float64 to decide.

Readable version (:func:`kneighbors_exact`): squared Euclidean distances ranked as
``‖b‖² − 2 q·b`` (the query's own ``‖q‖²`` is constant along a row) in float64, one matrix
product and one ``topk`` per block of queries.

Fast version (:func:`kneighbors`), the one the samplers use:

1. centre both sets on the fitted set's mean (smaller norms, so float32 loses less) and rank by
   ``‖b‖² − 2 q·b`` in float32 — half the memory traffic and about twice the matrix-product
   speed of float64;
2. shortlist ``k + margin`` candidates per query with ``topk``;
3. recompute those candidates' distances exactly in float64 (``Σ (q − b)²``) and keep the ``k``
   nearest, in order.

The result equals the exact search unless more than ``margin`` points sit within float32 rounding
(about ``1e-6`` relative) of the ``k``-th distance — not a case that occurs with real-valued
features; both versions are tested against ``sklearn.neighbors.NearestNeighbors``.

When the queries are rows of the fitted set (``self_index`` given), each query's own row is
excluded explicitly instead of relying on it coming out first with distance 0 — with exact
duplicates sklearn may list the duplicate before the point itself; we always drop the point.
Memory: one float32 score tile of at most ``min(chunk_size, 128) × 8192`` per thread.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

from deepnotes.core.checks import check_int

MARGIN = 4  # extra float32 candidates re-ranked in float64
# 128 x 8192 float32 score tiles (4 MiB) stay in cache between the product and the selection:
# measured 2-5x faster than 2048-row blocks over all columns (one thread per tile)
_TILE_ROWS, _TILE_COLS = 128, 8192


def smallest(score: torch.Tensor, m: int, group: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``m`` smallest values of each row of ``score (r, w)`` and their columns (unordered).

    Equal to ``torch.topk(score, m, largest=False)`` up to ties, but cheaper on wide rows: the row
    is cut into groups of ``group`` columns; the ``m`` smallest elements all lie in the ``m`` groups
    with the smallest minima (a group outside them would have ``m`` smaller minima before its
    element), so a fast ``amin`` pass plus a ``topk`` over ``m · group`` gathered values replaces a
    ``topk`` over the whole row.
    """
    r, w = score.shape
    m = min(m, w)
    n_groups = w // group
    if n_groups <= 2 * m:  # too few groups to save anything
        return torch.topk(score, m, dim=1, largest=False, sorted=False)
    body = n_groups * group
    mins = score[:, :body].unflatten(1, (n_groups, group)).amin(2)  # (r, n_groups)
    pick = torch.topk(mins, m, dim=1, largest=False, sorted=False).indices
    cols = (pick.unsqueeze(2) * group + torch.arange(group)).flatten(1)  # (r, m * group)
    if body < w:  # the last, incomplete group is always a candidate
        cols = torch.cat([cols, torch.arange(body, w).expand(r, -1)], 1)
    v, i = torch.topk(score.gather(1, cols), m, dim=1, largest=False, sorted=False)
    return v, cols.gather(1, i)


def _check(X_fit, n_neighbors, self_index, chunk_size) -> int:
    k = check_int("n_neighbors", n_neighbors, min=1)
    check_int("chunk_size", chunk_size, min=1)
    available = X_fit.shape[0] - (0 if self_index is None else 1)
    if k > available:
        raise ValueError(
            f"n_neighbors ({k}) must be <= the number of candidate neighbours ({available})"
        )
    return k


def kneighbors_exact(
    X_query: torch.Tensor,
    X_fit: torch.Tensor,
    n_neighbors: int,
    *,
    self_index: torch.Tensor | None = None,
    chunk_size: int = 2048,
) -> torch.Tensor:
    """The plain float64 search; same contract as :func:`kneighbors`."""
    k = _check(X_fit, n_neighbors, self_index, chunk_size)
    A, Q = X_fit.to(torch.float64), X_query.to(torch.float64)
    sq = (A * A).sum(1)
    out = []
    for start in range(0, Q.shape[0], chunk_size):  # blocks bound memory; not a per-sample loop
        score = torch.addmm(sq, Q[start : start + chunk_size], A.T, alpha=-2.0)
        if self_index is not None:
            score[torch.arange(score.shape[0]), self_index[start : start + chunk_size]] = float(
                "inf"
            )
        out.append(torch.topk(score, k, dim=1, largest=False, sorted=True).indices)
    return torch.cat(out)


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
    k = _check(X_fit, n_neighbors, self_index, chunk_size)
    n = X_fit.shape[0]
    shortlist = min(k + MARGIN, n - (0 if self_index is None else 1))
    A64 = X_fit.to(torch.float64)
    Q64 = X_query.to(torch.float64)
    centre = A64.mean(0)
    A32 = (A64 - centre).to(torch.float32)
    sq32 = (A32 * A32).sum(1)
    rows = min(chunk_size, _TILE_ROWS)

    def search(lo: int, hi: int) -> list[torch.Tensor]:
        out = []
        for start in range(lo, hi, rows):  # tiles bound memory; not a per-sample loop
            stop = min(start + rows, hi)
            q = Q64[start:stop]
            q32 = (q - centre).to(torch.float32)
            own = None if self_index is None else self_index[start:stop]
            vals, idx = [], []
            for c0 in range(0, n, _TILE_COLS):  # column tiles keep each score block in cache
                score = torch.addmm(
                    sq32[c0 : c0 + _TILE_COLS], q32, A32[c0 : c0 + _TILE_COLS].T, alpha=-2.0
                )
                if own is not None:
                    hit = (own >= c0) & (own < c0 + score.shape[1])
                    score[hit.nonzero().flatten(), own[hit] - c0] = float("inf")
                v, i = smallest(score, shortlist)
                vals.append(v)
                idx.append(i + c0)
            v, i = torch.cat(vals, 1), torch.cat(idx, 1)
            sel = torch.topk(v, shortlist, dim=1, largest=False, sorted=False).indices
            cand = i.gather(1, sel)
            exact = ((A64[cand] - q.unsqueeze(1)) ** 2).sum(-1)  # (rows, shortlist) in float64
            # ties in the exact distance keep the lower row index first (stable sort on ids)
            cand, perm = cand.sort(dim=1)
            exact = exact.gather(1, perm)
            order = torch.sort(exact, dim=1, stable=True).indices[:, :k]
            out.append(cand.gather(1, order))
        return out

    return torch.cat(over_row_ranges(search, Q64.shape[0], rows))


def over_row_ranges(search, m: int, rows: int) -> list[torch.Tensor]:
    """Run ``search(lo, hi)`` on contiguous row ranges, one per torch thread, each single-threaded.

    Coarse-grained parallelism (like scikit-learn's chunked neighbour search): every worker runs
    whole tiles on its own, instead of every small op being split across threads that wait for
    each other at each op's end — on a machine whose cores other processes also use, the per-op
    way was measured up to 10x slower. torch ops release the GIL, so Python threads run in parallel.
    Side effect: torch's intra-op thread count is 1 while the workers run, then restored (it is
    process-wide, so torch work in other Python threads runs single-threaded meanwhile).
    """
    threads = torch.get_num_threads()
    if threads == 1 or m <= rows:
        return search(0, m)
    per = -(-m // threads)
    per = -(-per // rows) * rows  # whole tiles per worker
    ranges = [(lo, min(lo + per, m)) for lo in range(0, m, per)]

    def work(r: tuple[int, int]) -> list[torch.Tensor]:
        return search(*r)

    torch.set_num_threads(1)  # the workers' ops must not fan out again
    try:
        with ThreadPoolExecutor(len(ranges)) as pool:
            parts = list(pool.map(work, ranges))
    finally:
        torch.set_num_threads(threads)
    return [t for part in parts for t in part]
