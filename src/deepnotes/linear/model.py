"""The linear model ``ŷ = w·x + b`` and the vocabulary of its training.

* **loss** — the error of one sample, here the squared error ``(ŷᵢ − yᵢ)²``;
* **cost** — the mean of the losses over the data set (mean squared error);
* **objective** — what the optimizer minimizes: the cost, plus any penalty.

Three ways to find ``w`` and ``b`` are written out and agree (lab claim 1a):
:func:`exhaustive_search` evaluates the cost on a grid of candidates, :func:`gradient_descent`
follows the negative gradient, and :func:`least_squares` solves the normal equations in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepnotes.core.checks import as_tensor, check_float, check_int, check_same_length, check_tensor


def _xy(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x = check_tensor("x", as_tensor("x", x, dtype=torch.float64), ndim=1, finite=True, nonempty=True)
    y = check_tensor("y", as_tensor("y", y, dtype=torch.float64), ndim=1, finite=True)
    check_same_length(x=x, y=y)
    return x, y


def predict(x: torch.Tensor, w, b=0.0) -> torch.Tensor:
    """``ŷ = w·x + b``; ``w`` and ``b`` broadcast (a column of candidates gives a grid of predictions)."""
    return w * x + b


def sample_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared error of each sample, ``(ŷᵢ − yᵢ)²`` (the *loss*)."""
    return (y_hat - y) ** 2


def cost(x, y, w, b=0.0) -> torch.Tensor:
    """Mean squared error over the samples (the *cost*) for each candidate ``(w, b)``.

    Parameters
    ----------
    x, y : Tensor[N]
    w, b : float or Tensor[...]
        Candidates; the result has their broadcast shape (the sample axis is averaged away).

    Examples
    --------
    >>> import torch
    >>> float(cost(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]), w=2.0))
    0.0
    """
    x, y = _xy(x, y)
    w = torch.as_tensor(w, dtype=torch.float64).unsqueeze(-1)
    b = torch.as_tensor(b, dtype=torch.float64).unsqueeze(-1)
    return sample_loss(predict(x, w, b), y).mean(-1)


@dataclass
class SearchResult:
    w: float
    b: float
    cost: float
    w_grid: torch.Tensor  # (W,)
    b_grid: torch.Tensor  # (B,)
    costs: torch.Tensor  # (W, B): cost at every grid point


def exhaustive_search(x, y, w_grid, b_grid=(0.0,)) -> SearchResult:
    """Evaluate the cost at every ``(w, b)`` of a grid and return the best point.

    The whole grid is evaluated in one broadcast (``W × B × N`` values, chunked over ``w`` so memory
    stays bounded). Ties go to the first grid point in ``w``-major order.
    """
    x, y = _xy(x, y)
    wg = check_tensor("w_grid", as_tensor("w_grid", w_grid, dtype=torch.float64).reshape(-1), finite=True, nonempty=True)
    bg = check_tensor("b_grid", as_tensor("b_grid", b_grid, dtype=torch.float64).reshape(-1), finite=True, nonempty=True)
    # chunk over w so each temporary holds about 2**21 float64 values (16 MB); the result is written
    # into one preallocated table so no small per-chunk tensor outlives its large temporaries
    chunk = max(1, 2**21 // (len(bg) * len(x)))
    costs = torch.empty(len(wg), len(bg), dtype=torch.float64)
    for start in range(0, len(wg), chunk):
        costs[start : start + chunk] = cost(x, y, wg[start : start + chunk].view(-1, 1), bg.view(1, -1))
    flat = int(torch.argmin(costs))
    i, j = divmod(flat, len(bg))
    return SearchResult(float(wg[i]), float(bg[j]), float(costs[i, j]), wg, bg, costs)


@dataclass
class DescentResult:
    w: float
    b: float
    path: torch.Tensor  # (steps + 1, 2): (w, b) after each step, starting point first
    costs: torch.Tensor  # (steps + 1,)


def gradient_descent(x, y, lr: float = 0.1, steps: int = 200, w0: float = 0.0, b0: float = 0.0, fit_intercept: bool = True) -> DescentResult:
    """Full-batch gradient descent on the mean squared error.

    ``∂cost/∂w = 2·mean((ŷ − y)·x)`` and ``∂cost/∂b = 2·mean(ŷ − y)``; each step moves
    ``(w, b)`` by ``−lr`` times the gradient. With ``fit_intercept=False``, ``b`` stays at ``b0``.
    """
    x, y = _xy(x, y)
    lr = check_float("lr", lr, min=0.0, min_inclusive=False)
    steps = check_int("steps", steps, min=0)
    w, b = check_float("w0", w0), check_float("b0", b0)
    path, costs = [(w, b)], [float(cost(x, y, w, b))]
    for _ in range(steps):
        r = predict(x, w, b) - y
        w -= lr * float(2 * (r * x).mean())
        if fit_intercept:
            b -= lr * float(2 * r.mean())
        path.append((w, b))
        costs.append(float(cost(x, y, w, b)))
    return DescentResult(w, b, torch.tensor(path, dtype=torch.float64), torch.tensor(costs, dtype=torch.float64))


def least_squares(x, y, fit_intercept: bool = True) -> tuple[float, float]:
    """Closed-form minimizer of the mean squared error.

    With an intercept: ``w = cov(x, y) / var(x)``, ``b = ȳ − w·x̄``; without: ``w = Σxy / Σx²``.
    Raises ``ValueError`` when ``x`` has no spread (the minimizer is not unique).
    """
    x, y = _xy(x, y)
    if fit_intercept:
        xc, yc = x - x.mean(), y - y.mean()
        denom = float((xc * xc).sum())
        if denom == 0.0:
            raise ValueError("x must not be constant: with an intercept the least-squares w is not unique")
        w = float((xc * yc).sum()) / denom
        return w, float(y.mean() - w * x.mean())
    denom = float((x * x).sum())
    if denom == 0.0:
        raise ValueError("x must not be all zeros: the least-squares w is not unique")
    return float((x * y).sum()) / denom, 0.0
