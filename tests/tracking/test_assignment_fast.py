"""The fast assignment path: same total cost as scipy's linear_sum_assignment and as the readable
solver on random square and rectangular matrices (ties, forbidden pairs, large sizes), same gating."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from deepnotes.tracking.assignment import gated_assignment, linear_assignment
from deepnotes.tracking.assignment_fast import fast_gated_assignment, fast_linear_assignment


def _random_cost(g: np.random.Generator, n: int, m: int) -> np.ndarray:
    kind = g.integers(0, 4)
    if kind == 0:
        cost = g.random((n, m))
    elif kind == 1:  # many ties
        cost = g.integers(0, 3, (n, m)).astype(float)
    elif kind == 2:
        cost = g.normal(0, 100, (n, m))
    else:  # forbidden pairs
        cost = g.random((n, m))
        cost[g.random((n, m)) < 0.3] = np.inf
    return cost


def _check_valid(rows, cols, n, m):
    assert rows.dtype == cols.dtype == np.int64
    assert len(rows) == len(cols) == min(n, m)
    assert np.all(np.diff(rows) > 0) and len(set(cols.tolist())) == len(cols)
    assert rows.size == 0 or (rows.min() >= 0 and rows.max() < n and cols.min() >= 0 and cols.max() < m)


@pytest.mark.parametrize("seed", range(4))
def test_fast_total_cost_equals_scipy_and_readable(seed):
    g = np.random.default_rng(seed)
    for _ in range(150):
        n, m = (int(v) for v in g.integers(0, 13, 2))
        cost = _random_cost(g, n, m)
        try:
            r_ref, c_ref = linear_sum_assignment(cost)
        except ValueError:
            with pytest.raises(ValueError, match="infeasible"):
                fast_linear_assignment(cost)
            continue
        rows, cols = fast_linear_assignment(cost)
        _check_valid(rows, cols, n, m)
        expected = cost[r_ref, c_ref].sum()
        assert cost[rows, cols].sum() == pytest.approx(expected, rel=1e-12, abs=1e-9)
        r2, c2 = linear_assignment(cost)
        assert cost[r2, c2].sum() == pytest.approx(cost[rows, cols].sum(), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("shape", [(150, 150), (60, 200), (200, 60), (120, 121)])
def test_fast_equals_scipy_on_large_matrices(shape):
    g = np.random.default_rng(sum(shape))
    for cost in (g.random(shape), g.integers(0, 5, shape).astype(float), -g.exponential(1.0, shape)):
        rows, cols = fast_linear_assignment(cost)
        _check_valid(rows, cols, *shape)
        r_ref, c_ref = linear_sum_assignment(cost)
        assert cost[rows, cols].sum() == pytest.approx(cost[r_ref, c_ref].sum(), rel=1e-12, abs=1e-9)


def test_fast_handles_degenerate_shapes():
    for shape in [(0, 0), (0, 4), (4, 0)]:
        rows, cols = fast_linear_assignment(np.zeros(shape))
        assert rows.size == cols.size == 0
    rows, cols = fast_linear_assignment([[3.0]])
    assert rows.tolist() == [0] and cols.tolist() == [0]
    rows, cols = fast_linear_assignment([[5.0, 1.0, 2.0]])  # one row picks the cheapest column
    assert cols.tolist() == [1]


def test_fast_reports_infeasible_matrices():
    with pytest.raises(ValueError, match="infeasible"):
        fast_linear_assignment([[np.inf, np.inf], [1.0, 2.0]])
    with pytest.raises(ValueError, match="infeasible"):
        fast_linear_assignment([[1.0, np.inf], [2.0, np.inf]])  # both rows need column 0


def test_fast_rejects_nan_and_wrong_rank():
    with pytest.raises(ValueError, match="cost must not contain NaN"):
        fast_linear_assignment([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="cost must be a 2-D matrix"):
        fast_linear_assignment([1.0, 2.0])
    with pytest.raises(TypeError, match="max_cost"):
        fast_gated_assignment([[1.0]], "a")


@pytest.mark.parametrize("seed", range(3))
def test_fast_gated_matches_the_readable_gated_assignment(seed):
    g = np.random.default_rng(seed)
    for _ in range(100):
        n, m = (int(v) for v in g.integers(0, 15, 2))
        cost = -g.random((n, m)) if g.random() < 0.5 else g.random((n, m)).round(1)
        gate = float(g.uniform(-0.8, 0.8))
        ours = fast_gated_assignment(cost, gate)
        ref = gated_assignment(cost, gate)
        assert len(ours[0]) == len(ref[0])  # as many allowed pairs
        assert cost[ours[0], ours[1]].sum() == pytest.approx(cost[ref[0], ref[1]].sum(), abs=1e-9)
        assert np.all(cost[ours[0], ours[1]] <= gate)
        assert sorted(ours[0].tolist() + ours[2].tolist()) == list(range(n))
        assert sorted(ours[1].tolist() + ours[3].tolist()) == list(range(m))
