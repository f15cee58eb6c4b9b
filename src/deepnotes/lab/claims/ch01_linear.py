"""Chapter 1: the linear model found three ways."""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.data.builtin import make_linear
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.linear import exhaustive_search, gradient_descent, least_squares
from deepnotes.viz import new_figure


@claim(
    "1a",
    title="Exhaustive search and gradient descent find the same line, and both match least squares",
    topics=("1.1", "1.2", "1.3", "1.4"),
    source='notes 13-20',
    statement='Fit the line y = w·x + b: start from a random w, take the squared error of each sample as its loss and choose the w that minimizes their mean (the MSE cost), for instance by exhaustive search over candidate weights or with an optimizer.',
)
def three_ways(quick: bool, seed: int) -> ClaimResult:
    n = 100 if quick else 1000
    x, y = make_linear(n=n, w=2.0, b=1.0, noise=0.5, seed=seed)
    # numpy's lstsq on the design matrix [x, 1] is the independent reference
    design = np.stack([x.numpy(), np.ones(n)], axis=1)
    (w_ref, b_ref), *_ = np.linalg.lstsq(design, y.numpy(), rcond=None)
    w_ls, b_ls = least_squares(x, y)

    step = 0.02 if quick else 0.005
    w_grid = torch.arange(0.0, 4.0 + step / 2, step, dtype=torch.float64)
    b_grid = torch.arange(-1.0, 3.0 + step / 2, step, dtype=torch.float64)
    search = exhaustive_search(x, y, w_grid, b_grid)
    gd = gradient_descent(x, y, lr=0.1, steps=300 if quick else 1000)

    err = {
        "search_w_error": abs(search.w - w_ref),
        "search_b_error": abs(search.b - b_ref),
        "gd_w_error": abs(gd.w - w_ref),
        "gd_b_error": abs(gd.b - b_ref),
        "closed_form_vs_lstsq": max(abs(w_ls - w_ref), abs(b_ls - b_ref)),
    }
    holds = (
        err["search_w_error"] <= step
        and err["search_b_error"] <= step
        and err["gd_w_error"] < 1e-6
        and err["gd_b_error"] < 1e-6
        and err["closed_form_vs_lstsq"] < 1e-10
    )

    fig, (ax1, ax2) = new_figure(ncols=2)
    costs_at_b = search.costs[:, int(torch.argmin((b_grid - search.b).abs()))]
    ax1.plot(w_grid, costs_at_b, lw=1.5, label=f"cost(w) at b = {search.b:.2f}")
    ax1.axvline(w_ref, color="k", ls="--", lw=1, label=f"least squares w = {w_ref:.4f}")
    ax1.plot([search.w], [search.cost], "o", color="C3", label=f"grid best w = {search.w:.3f}")
    ax1.set(xlabel="w", ylabel="cost (mean squared error)", title="Exhaustive search over w")
    ax1.legend(fontsize=8)
    W, B = np.meshgrid(w_grid.numpy(), b_grid.numpy(), indexing="ij")
    ax2.contour(W, B, np.log10(search.costs.numpy()), levels=25, cmap="viridis", linewidths=0.7)
    ax2.plot(gd.path[:, 0], gd.path[:, 1], ".-", color="C3", ms=3, lw=1, label="gradient descent")
    ax2.plot([w_ref], [b_ref], "k*", ms=12, label="least squares")
    ax2.set(xlabel="w", ylabel="b", title="Cost contours (log10) and the descent path")
    ax2.legend(fontsize=8)

    measured = {
        "n": n,
        "lstsq_w": float(w_ref),
        "lstsq_b": float(b_ref),
        "search_w": search.w,
        "search_b": search.b,
        "grid_step": step,
        "gd_w": gd.w,
        "gd_b": gd.b,
        "gd_steps": len(gd.costs) - 1,
        **{k: float(v) for k, v in err.items()},
    }
    test = (
        f"numpy.linalg.lstsq gives the reference (w, b). The best grid point must lie within one grid "
        f"step ({step}) of it in both w and b; gradient descent (lr 0.1) must reach it to 1e-6; our "
        "closed form must equal lstsq to 1e-10."
    )
    return ClaimResult(measured=measured, test=test, holds=holds, figures=[fig])
