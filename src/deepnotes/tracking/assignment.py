"""Minimum-cost bipartite matching (the Hungarian problem) and the gated matching trackers use.

:func:`linear_assignment` solves ``min Σ cost[i, σ(i)]`` over one-to-one assignments of the
smaller side of an ``(n, m)`` matrix, by successive shortest augmenting paths with dual
potentials ``u`` (rows) and ``v`` (columns) — the Jonker–Volgenant family that
``scipy.optimize.linear_sum_assignment`` also uses. Each row is added in turn: a Dijkstra search
over reduced costs ``cost[i, j] − u[i] − v[j] ≥ 0`` finds the cheapest path from the new row to a
free column through already-assigned pairs, the potentials are updated so reduced costs stay
non-negative, and the path's assignments are flipped. ``O(n² m)`` in all; each Dijkstra step is
one vectorised pass over the columns.

:func:`gated_assignment` is what a tracker needs: pairs whose cost exceeds ``max_cost`` may not be
matched. Forbidden pairs get a cost larger than any assignment of allowed pairs can reach
(``2 · min(n, m) · max|cost| + 1``), so the solver first maximises the number of allowed pairs and
then minimises their cost; forbidden pairs are dropped from the answer (motmetrics does the same).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_float

__all__ = ["gated_assignment", "linear_assignment"]


def _cost_matrix(cost: Any) -> np.ndarray:
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {c.shape}")
    if np.isnan(c).any() or np.isneginf(c).any():
        raise ValueError("cost must not contain NaN or -inf (use +inf for forbidden pairs)")
    return c


def linear_assignment(cost: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a minimum-cost assignment, as ``scipy.optimize.linear_sum_assignment``.

    Parameters
    ----------
    cost : array-like (n, m)
        Finite costs; ``+inf`` marks a forbidden pair.

    Returns
    -------
    rows, cols : int64 arrays of length ``min(n, m)``, sorted by row.

    Raises ``ValueError`` if every complete assignment uses a forbidden pair.

    >>> rows, cols = linear_assignment([[4, 1, 3], [2, 0, 5], [3, 2, 2]])
    >>> cols.tolist()
    [1, 0, 2]
    """
    c = _cost_matrix(cost)
    transposed = c.shape[0] > c.shape[1]
    if transposed:
        c = c.T
    n, m = c.shape
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    u, v = np.zeros(n), np.zeros(m)
    col_of_row = np.full(n, -1, dtype=np.int64)
    row_of_col = np.full(m, -1, dtype=np.int64)
    for start in range(n):
        # Dijkstra over columns: shortest[j] = cheapest reduced-cost path from `start` to column j
        shortest = np.full(m, np.inf)
        via_row = np.full(m, -1, dtype=np.int64)
        done_col = np.zeros(m, dtype=bool)
        rows_on_tree = [start]
        i, reached, sink = start, 0.0, -1
        while sink < 0:
            open_cols = ~done_col
            reduced = reached + c[i] - u[i] - v
            better = open_cols & (reduced < shortest)
            shortest[better] = reduced[better]
            via_row[better] = i
            candidates = np.flatnonzero(open_cols)
            best = shortest[candidates].min()
            if not np.isfinite(best):
                raise ValueError("cost matrix is infeasible: no complete assignment of finite cost")
            ties = candidates[shortest[candidates] == best]
            free = ties[row_of_col[ties] < 0]
            j = int(free[0] if free.size else ties[0])  # prefer ending the path at a free column
            reached = best
            done_col[j] = True
            if row_of_col[j] < 0:
                sink = j
            else:
                i = int(row_of_col[j])
                rows_on_tree.append(i)
        # keep reduced costs non-negative and zero along the assignment
        tree = np.asarray(rows_on_tree)
        u[start] += reached
        others = tree[1:]
        u[others] += reached - shortest[col_of_row[others]]
        v[done_col] -= reached - shortest[done_col]
        # flip the augmenting path
        j = sink
        while True:
            i = int(via_row[j])
            row_of_col[j] = i
            col_of_row[i], j = j, col_of_row[i]
            if i == start:
                break
    rows = np.arange(n, dtype=np.int64)
    if transposed:
        order = np.argsort(col_of_row)
        return col_of_row[order], rows[order]
    return rows, col_of_row


def gated_assignment(
    cost: Any, max_cost: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Match as many pairs with ``cost <= max_cost`` as possible, at the least total cost.

    Parameters
    ----------
    cost : array-like (n, m), finite or ``+inf`` (forbidden)
    max_cost : float
        Gate: pairs above it are never matched.

    Returns
    -------
    rows, cols : matched pairs (sorted by row); unmatched_rows, unmatched_cols : the rest.
    """
    return _gated(_cost_matrix(cost), check_float("max_cost", max_cost), linear_assignment)


def _gated(c: np.ndarray, max_cost: float, solve) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`gated_assignment` of a checked matrix with solver ``solve`` (shared with the fast path)."""
    n, m = c.shape
    allowed = c <= max_cost
    if n == 0 or m == 0 or not allowed.any():
        rows = cols = np.zeros(0, dtype=np.int64)
    else:
        big = 2.0 * min(n, m) * float(np.abs(c[allowed]).max()) + 1.0
        rows, cols = solve(np.where(allowed, c, big))
        ok = allowed[rows, cols]
        rows, cols = rows[ok], cols[ok]
    unmatched_rows = np.setdiff1d(np.arange(n), rows)
    unmatched_cols = np.setdiff1d(np.arange(m), cols)
    return rows, cols, unmatched_rows, unmatched_cols
