import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.data import make_linear
from deepnotes.linear import (
    cost,
    exhaustive_search,
    gradient_descent,
    least_squares,
    linear_workflow,
    sample_loss,
)

SETTINGS = settings(derandomize=True, deadline=None, max_examples=40)


def _lstsq(x, y, intercept=True):
    cols = [x.numpy(), np.ones(len(x))] if intercept else [x.numpy()]
    sol, *_ = np.linalg.lstsq(np.stack(cols, 1), y.numpy(), rcond=None)
    return (float(sol[0]), float(sol[1])) if intercept else (float(sol[0]), 0.0)


@SETTINGS
@given(n=st.integers(3, 200), w=st.floats(-5, 5), b=st.floats(-5, 5), noise=st.floats(0, 2), seed=st.integers(0, 10**6))
def test_least_squares_matches_numpy_lstsq(n, w, b, noise, seed):
    x, y = make_linear(n=n, w=w, b=b, noise=noise, seed=seed)
    for intercept in (True, False):
        ours = least_squares(x, y, fit_intercept=intercept)
        ref = _lstsq(x, y, intercept)
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_cost_is_the_mean_of_sample_losses_and_broadcasts():
    x, y = make_linear(n=50, seed=1)
    w = torch.tensor([[0.5], [2.0]])
    b = torch.tensor([[0.0, 1.0, -1.0]])
    grid = cost(x, y, w, b)
    assert grid.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            expected = sample_loss(float(w[i, 0]) * x + float(b[0, j]), y).mean()
            torch.testing.assert_close(grid[i, j], expected, rtol=1e-12, atol=1e-12)


def test_exhaustive_search_returns_the_grid_argmin():
    x, y = make_linear(n=80, w=1.3, b=-0.4, seed=2)
    wg, bg = torch.linspace(-3, 3, 121, dtype=torch.float64), torch.linspace(-2, 2, 81, dtype=torch.float64)
    res = exhaustive_search(x, y, wg, bg)
    # slow reference: a python double loop
    best = min((float(cost(x, y, float(w), float(b))), float(w), float(b)) for w in wg for b in bg)
    assert (res.w, res.b) == (best[1], best[2])
    assert res.costs.shape == (121, 81)
    w_ls, b_ls = least_squares(x, y)
    assert abs(res.w - w_ls) <= 0.05 and abs(res.b - b_ls) <= 0.05


def test_gradient_descent_reaches_least_squares_and_its_gradient_is_autograds():
    x, y = make_linear(n=100, w=-1.5, b=2.0, seed=3)
    gd = gradient_descent(x, y, lr=0.1, steps=500)
    np.testing.assert_allclose((gd.w, gd.b), least_squares(x, y), atol=1e-9)
    assert bool((gd.costs[1:] <= gd.costs[:-1] + 1e-15).all())  # monotone on a convex quadratic
    # the first step equals one step along torch's autograd gradient
    w = torch.zeros((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    ((w * x + b - y) ** 2).mean().backward()
    torch.testing.assert_close(gd.path[1], torch.stack([-0.1 * w.grad, -0.1 * b.grad]))
    no_b = gradient_descent(x, y, lr=0.1, steps=300, fit_intercept=False)
    assert no_b.b == 0.0
    np.testing.assert_allclose(no_b.w, least_squares(x, y, fit_intercept=False)[0], atol=1e-9)


def test_workflow_learns_the_line_and_predicts():
    res = linear_workflow(n=200, w=2.0, b=1.0, noise=0.1, epochs=400, seed=0)
    assert abs(res.w - 2.0) < 0.05 and abs(res.b - 1.0) < 0.05
    torch.testing.assert_close(res.y_pred, res.w * res.x_new + res.b)
    assert res.costs[-1] < res.costs[0]


def test_errors_name_the_argument():
    x, y = make_linear(n=10)
    with pytest.raises(ValueError, match="inconsistent lengths: x has 10, y has 9"):
        cost(x, y[:9], 1.0)
    with pytest.raises(ValueError, match="x must not be empty"):
        cost(torch.empty(0), torch.empty(0), 1.0)
    with pytest.raises(ValueError, match="x must have 1 dimensions"):
        least_squares(x.view(2, 5), y)
    with pytest.raises(ValueError, match="y must be finite"):
        least_squares(x, torch.full((10,), float("nan")))
    with pytest.raises(ValueError, match="x must not be constant"):
        least_squares(torch.ones(10), y)
    with pytest.raises(ValueError, match="lr must be > 0"):
        gradient_descent(x, y, lr=0)
    with pytest.raises(ValueError, match="w_grid must not be empty"):
        exhaustive_search(x, y, [])
    with pytest.raises(TypeError, match="x must hold numbers"):
        cost(["a"] * 10, y, 1.0)
