"""A faster exact solver of the assignment problem: Jonker–Volgenant's initialisation, then
shortest augmenting paths that settle all tied columns at once.

It returns an optimal assignment of the same total cost as :func:`~deepnotes.tracking.linear_assignment`
(the readable version, which adds every row by its own Dijkstra search from zero potentials) and
``scipy.optimize.linear_sum_assignment``; where several assignments are optimal, it may return a
different one. What makes it faster (for an ``(n, m)`` matrix with ``n <= m``, after transposing):

1. **Initial duals and a greedy start.** A square matrix starts from column minima
   (``v[j] = min_i cost[i, j]``; each row takes a column it is the minimum of) followed by the
   reduction transfer (an assigned row's column gets the row's whole slack); a rectangular one from
   row minima with ``v = 0`` (so unmatched columns keep ``v[j] = 0``, which optimality needs there).
   Both are dual-feasible and tight on every pair they assign — often most rows.
2. **Augmenting row reduction**: a free row takes its cheapest column, pushing that
   column's price down to the row's second-cheapest reduced cost; the row it displaces becomes free.
   Two passes, each bounded to a few steps per row, assign most remaining rows without any search.
3. **Shortest augmenting paths** for the rest, as in the readable version, except that the
   potentials of the rows are never stored (``u[i] = cost[i, col(i)] − v[col(i)]`` on a tight pair)
   and every column at the current shortest distance is settled in one vectorised step, so the
   plateaus of equal costs a gated tracker matrix is full of cost one step, not one per column.

Every phase keeps ``cost[i, j] − u[i] − v[j] ≥ 0`` with equality on the assigned pairs, which is the
optimality certificate of the final assignment. Memory is ``O(n + m)`` beyond the matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_float
from deepnotes.tracking.assignment import _cost_matrix, _gated

__all__ = ["fast_gated_assignment", "fast_linear_assignment"]


def _column_reduction(c: np.ndarray, v: np.ndarray, col_of_row: np.ndarray, row_of_col: np.ndarray) -> None:
    """Square start: ``v`` = column minima, each row takes one column it is the minimum of, then the
    reduction transfer gives each assigned row's slack to its column."""
    n = c.shape[0]
    v[:] = c.min(0)
    argmin = c.argmin(0)
    rows, first = np.unique(argmin, return_index=True)  # one column per row that is some column's minimum
    col_of_row[rows] = first
    row_of_col[first] = rows
    # reduction transfer: v[j] -= min over the row's other columns of the reduced cost (>= 0)
    red = c[rows] - v
    red[np.arange(rows.size), first] = np.inf
    slack = red.min(1) if n > 1 else np.zeros(rows.size)
    v[first] -= np.where(np.isfinite(slack), slack, 0.0)


def _row_reduction(c: np.ndarray, col_of_row: np.ndarray, row_of_col: np.ndarray) -> None:
    """Rectangular start (``v = 0``): each column goes to the first row whose minimum it is."""
    argmin = c.argmin(1)
    cols, first = np.unique(argmin, return_index=True)
    col_of_row[first] = cols
    row_of_col[cols] = first


def _augmenting_row_reduction(c: np.ndarray, v: np.ndarray, col_of_row: np.ndarray, row_of_col: np.ndarray) -> None:
    """Jonker–Volgenant's augmenting row reduction (two passes). It only lowers the price of a column
    it assigns, and never frees a column, so a rectangular start's free columns keep ``v = 0``."""
    n = c.shape[0]
    if n < 2:
        return
    for _ in range(2):
        free = list(np.flatnonzero(col_of_row < 0))
        steps, limit = 0, 2 * n  # displaced rows can chain: bound the pass, the search does the rest
        while free and steps < limit:
            steps += 1
            i = free.pop()
            red = c[i] - v
            j1 = int(red.argmin())
            u1 = red[j1]
            red[j1] = np.inf
            j2 = int(red.argmin())
            u2 = red[j2]
            if not np.isfinite(u1):
                continue  # row with no finite cost: the search will report infeasibility
            i0 = row_of_col[j1]
            if u1 < u2:
                if np.isfinite(u2):
                    v[j1] -= u2 - u1  # row i now reaches j1 and j2 at the same reduced cost u2
            elif i0 >= 0:
                if row_of_col[j2] >= 0:
                    continue  # a tie between taken columns: leave the row to the search
                j1, i0 = j2, -1  # a tie with a free column: take the free one
            if i0 >= 0:
                col_of_row[i0] = -1
                free.append(i0)
            col_of_row[i] = j1
            row_of_col[j1] = i
        if not free:
            return


def _augment(c: np.ndarray, v: np.ndarray, col_of_row: np.ndarray, row_of_col: np.ndarray, start: int) -> None:
    """Add free row ``start`` by a shortest augmenting path over reduced costs; update ``v``."""
    m = c.shape[1]
    d = c[start] - v  # shortest distances from `start`, up to the constant u[start]
    pred = np.full(m, start, dtype=np.int64)
    todo = np.arange(m)
    settled = []
    while True:
        dt = d[todo]
        mu = dt.min()
        if not np.isfinite(mu):
            raise ValueError("cost matrix is infeasible: no complete assignment of finite cost")
        tie = dt == mu
        cols = todo[tie]
        free = cols[row_of_col[cols] < 0]
        if free.size:
            sink = int(free[0])
            break
        settled.append(cols)
        todo = todo[~tie]
        if todo.size == 0:
            raise ValueError("cost matrix is infeasible: no complete assignment of finite cost")
        rows = row_of_col[cols]
        # reduced cost through row i (tight on its column j): mu + cost[i, k] - v[k] - (cost[i, j] - v[j])
        offset = c[rows, cols] - v[cols] - mu
        if rows.size == 1:
            best = c[rows[0], todo] - v[todo] - offset[0]
            better = best < d[todo]
            upd = todo[better]
            d[upd] = best[better]
            pred[upd] = rows[0]
        else:
            cand = c[np.ix_(rows, todo)] - v[todo] - offset[:, None]
            who = cand.argmin(0)
            best = cand[who, np.arange(todo.size)]
            better = best < d[todo]
            upd = todo[better]
            d[upd] = best[better]
            pred[upd] = rows[who[better]]
    if settled:
        done = np.concatenate(settled)
        v[done] += d[done] - mu
    # flip the path back to `start`
    j = sink
    while True:
        i = int(pred[j])
        row_of_col[j] = i
        col_of_row[i], j = j, int(col_of_row[i])
        if i == start:
            break


def fast_linear_assignment(cost: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a minimum-cost assignment (same total cost as ``linear_sum_assignment``).

    Parameters
    ----------
    cost : array-like (n, m)
        Finite costs; ``+inf`` marks a forbidden pair.

    Returns
    -------
    rows, cols : int64 arrays of length ``min(n, m)``, sorted by row.

    Raises ``ValueError`` if every complete assignment uses a forbidden pair.

    >>> rows, cols = fast_linear_assignment([[4, 1, 3], [2, 0, 5], [3, 2, 2]])
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
    if np.isposinf(c).all(1).any():
        raise ValueError("cost matrix is infeasible: no complete assignment of finite cost")
    c = np.ascontiguousarray(c)
    v = np.zeros(m)
    col_of_row = np.full(n, -1, dtype=np.int64)
    row_of_col = np.full(m, -1, dtype=np.int64)
    if n == m and np.isfinite(c).any(0).all():
        _column_reduction(c, v, col_of_row, row_of_col)
    else:
        _row_reduction(c, col_of_row, row_of_col)
    _augmenting_row_reduction(c, v, col_of_row, row_of_col)
    for start in np.flatnonzero(col_of_row < 0):
        _augment(c, v, col_of_row, row_of_col, int(start))
    rows = np.arange(n, dtype=np.int64)
    if transposed:
        order = np.argsort(col_of_row)
        return col_of_row[order], rows[order]
    return rows, col_of_row


def fast_gated_assignment(
    cost: Any, max_cost: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~deepnotes.tracking.gated_assignment` solved with :func:`fast_linear_assignment`."""
    return _gated(_cost_matrix(cost), check_float("max_cost", max_cost), fast_linear_assignment)
