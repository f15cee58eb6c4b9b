"""Chapter 6: losses — the multi-class SVM worked by hand, initial-loss sanity values, margin
invariances, robustness of the absolute loss, and the (non-)convexity of sigmoid losses."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from deepnotes.lab.api import ClaimResult, claim
from deepnotes.losses import (
    absolute_loss,
    binary_cross_entropy,
    multiclass_svm_loss,
    softmax_cross_entropy,
    squared_loss,
)
from deepnotes.viz import new_figure

# The notes' worked example: three samples, three classes (cat, car, frog), correct 0, 1, 2.
_SCORES = [[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]]
_TARGET = [0, 1, 2]
_EXPECTED = [2.9, 0.0, 12.9]


@claim(
    "6a",
    title="The worked multi-class SVM example gives per-sample losses 2.9, 0, 12.9 (mean ≈ 5.27)",
    topics=("6.4",),
    source='notes 143-157',
    statement="The worked multi-class SVM example: three samples' class scores give per-sample losses 2.9, 0 and 12.9, mean 5.27.",
    kind='worked example',
)
def svm_worked_example(quick: bool, seed: int) -> ClaimResult:
    s = torch.tensor(_SCORES, dtype=torch.float64)
    y = torch.tensor(_TARGET)
    per = multiclass_svm_loss(s, y, reduction="none")
    mean = multiclass_svm_loss(s, y).item()
    # independent check: torch's multi_margin_loss divides the same sum by C
    ref = (3 * F.multi_margin_loss(s, y, reduction="none")).tolist()
    terms = torch.relu(s - s.gather(1, y[:, None]) + 1.0)
    terms[torch.arange(3), y] = 0.0
    err = max(abs(a - b) for a, b in zip(per.tolist(), _EXPECTED))
    ref_err = max(abs(a - b) for a, b in zip(per.tolist(), ref))
    holds = err < 1e-12 and ref_err < 1e-12 and abs(mean - 5.27) < 0.005

    rows = [
        [
            f"sample {i} (y={_TARGET[i]})",
            *[f"{v:g}" for v in _SCORES[i]],
            *[f"{v:.1f}" for v in terms[i].tolist()],
            f"{per[i].item():.1f}",
        ]
        for i in range(3)
    ]
    rows.append(["mean", "", "", "", "", "", "", f"{mean:.4f}"])
    cols = ["", "s0", "s1", "s2", "term j=0", "term j=1", "term j=2", "L_i"]
    fig, ax = new_figure(width=6.0, height=3.4)
    xs = torch.arange(3).numpy()
    for j in range(3):  # stacked hinge terms: each bar is one sample's loss
        bottom = terms[:, :j].sum(1).numpy()
        ax.bar(xs, terms[:, j].numpy(), 0.5, bottom=bottom, label=f"term for class j = {j}")
    ax.scatter(xs, _EXPECTED, marker="_", s=900, color="k", zorder=3, label="the notes' value")
    for i in range(3):
        ax.annotate(f"{per[i].item():.1f}", (xs[i], per[i].item()), textcoords="offset points", xytext=(0, 6),
                    ha="center")
    ax.set_xticks(xs, [f"sample {i}\n(correct class {_TARGET[i]})" for i in range(3)])
    ax.set(ylabel="per-sample SVM loss L_i", ylim=(0, 15),
           title=f"Δ = 1: stacked terms max(0, s_j − s_y + 1); mean {mean:.2f}")
    ax.legend(fontsize=7, loc="upper left")
    details = (
        "| "
        + " | ".join(cols)
        + " |\n|"
        + "---|" * len(cols)
        + "\n"
        + "\n".join("| " + " | ".join(r) + " |" for r in rows)
    )
    measured = {
        "per_sample": per.tolist(),
        "mean": mean,
        "torch_multi_margin_times_C": ref,
        "max_error_vs_notes": err,
    }
    test = (
        "multiclass_svm_loss (Δ = 1) on the three samples must give 2.9, 0, 12.9 to 1e-12, agree "
        "with 3 · F.multi_margin_loss to 1e-12, and have a mean within 0.005 of 5.27."
    )
    return ClaimResult(measured, test, holds, [fig], details)


@claim(
    "6b",
    title="With small random weights the SVM loss starts near C − 1 and the softmax loss near ln C",
    topics=("6.4", "6.5"),
    source='notes 171-173, 202',
    statement='With small random initial weights all scores are near 0, so the initial SVM loss is C - 1 and the initial softmax loss ln C; another value at the first iteration hints at a bug.',
)
def initial_loss(quick: bool, seed: int) -> ClaimResult:
    g = torch.Generator().manual_seed(seed)
    n, d = (200, 256) if quick else (2000, 3072)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    stds = [1e-4, 1e-3, 1e-2, 1e-1]
    measured: dict = {"n": n, "features": d, "weight_std": stds}
    fig, (ax1, ax2) = new_figure(ncols=2)
    holds = True
    for c in (3, 10, 100):
        y = torch.randint(0, c, (n,), generator=g)
        w = torch.randn(d, c, generator=g, dtype=torch.float64)
        svm = [multiclass_svm_loss(x @ (sd * w), y).item() for sd in stds]
        ce = [softmax_cross_entropy(x @ (sd * w), y).item() for sd in stds]
        rel_svm, rel_ce = abs(svm[0] / (c - 1) - 1), abs(ce[0] / math.log(c) - 1)
        holds = holds and rel_svm < 0.01 and rel_ce < 0.01
        measured[f"C={c}"] = {
            "svm": svm,
            "softmax": ce,
            "svm_expected": c - 1,
            "softmax_expected": math.log(c),
            "rel_err_svm_at_1e-4": rel_svm,
            "rel_err_softmax_at_1e-4": rel_ce,
        }
        ax1.semilogx(stds, np.array(svm) / (c - 1), "o-", label=f"C = {c}")
        ax2.semilogx(stds, np.array(ce) / math.log(c), "o-", label=f"C = {c}")
    ax1.set(xlabel="weight std", ylabel="SVM loss / (C − 1)", title="Initial SVM loss")
    ax2.set(xlabel="weight std", ylabel="softmax loss / ln C", title="Initial softmax loss")
    for ax in (ax1, ax2):
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.legend(fontsize=8)
    test = (
        f"Random inputs ({n} × {d}), weights 1e-4 · N(0, 1), C ∈ {{3, 10, 100}}: the mean SVM loss "
        "must be within 1% of C − 1 and the softmax loss within 1% of ln C (larger weight scales "
        "are shown for contrast, not tested)."
    )
    return ClaimResult(measured, test, holds, [fig])


@claim(
    "6c",
    title="SVM loss: including j = y adds exactly Δ; mean vs sum only rescales; zero loss at W "
    "implies "
    "zero loss at 2W",
    topics=("6.4",),
    source='notes 175-187',
    statement='Summing the SVM terms over every class including the correct one adds 1 (the margin); using the mean instead of the sum only rescales the loss; a W with zero loss is not unique, 2W also has zero loss.',
    kind='worked example',
)
def svm_invariances(quick: bool, seed: int) -> ClaimResult:
    g = torch.Generator().manual_seed(seed)
    n, d, c, delta = (100, 20, 5, 1.0) if quick else (2000, 50, 10, 1.0)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w_true = torch.randn(d, c, generator=g, dtype=torch.float64)
    s = x @ w_true
    y = s.argmax(1)
    # (1) all-j sum minus the j != y sum
    all_j = torch.relu(s - s.gather(1, y[:, None]) + delta).sum(1)
    extra = (all_j - multiclass_svm_loss(s, y, delta, "none")).sub(delta).abs().max().item()
    # (2) gradients of sum and mean differ only by the factor N
    w = (0.01 * w_true).requires_grad_()
    (g_mean,) = torch.autograd.grad(multiclass_svm_loss(x @ w, y, delta, "mean"), w)
    (g_sum,) = torch.autograd.grad(multiclass_svm_loss(x @ w, y, delta, "sum"), w)
    rescale = ((g_sum - n * g_mean).abs().max() / g_sum.abs().max()).item()
    # (3) scale W until every margin exceeds Δ (5% slack, so rounding cannot leave a sample
    # exactly on the hinge): the loss is 0, and stays 0 for 2W
    top2 = s.topk(2, dim=1).values
    w_zero = w_true * (1.05 * delta / (top2[:, 0] - top2[:, 1]).min())
    scales = np.linspace(0.0, 3.0, 61)
    curve = [multiclass_svm_loss(x @ (k * w_zero), y, delta).item() for k in scales]
    l1, l2 = (
        multiclass_svm_loss(x @ w_zero, y, delta).item(),
        multiclass_svm_loss(x @ (2 * w_zero), y, delta).item(),
    )
    holds = extra < 1e-12 and rescale < 1e-12 and l1 == 0.0 and l2 == 0.0
    fig, ax = new_figure()
    ax.plot(scales, curve, lw=1.5)
    ax.axvline(1.0, color="C3", ls="--", lw=1, label="W with zero loss")
    ax.axvline(2.0, color="C2", ls=":", lw=1, label="2W")
    ax.set(
        xlabel="scale k", ylabel="mean SVM loss at kW", title="Zero loss is not unique: kW, k ≥ 1"
    )
    ax.legend(fontsize=8)
    measured = {
        "max_abs(all_j − sum_j≠y − Δ)": extra,
        "rel_max(g_sum − N·g_mean)": rescale,
        "loss_at_W": l1,
        "loss_at_2W": l2,
        "loss_at_0.5W": curve[10],
    }
    test = (
        "On random separable data: Σ over all j minus Σ over j ≠ y must equal Δ to 1e-12 per "
        "sample; the gradient of the summed loss must be N times that of the mean to 1e-12 "
        "(relative); with W scaled so every margin is >= 1.05 Δ the loss must be exactly 0 at W "
        "and at 2W."
    )
    return ClaimResult(measured, test, holds, [fig])


@claim(
    "6d",
    title="Moving the correct score while it stays beyond the margin leaves the SVM loss unchanged "
    "but "
    "changes the softmax loss",
    topics=("6.4", "6.5"),
    source='notes 159-161',
    statement='Once the correct score beats the others by more than the margin, small changes of it leave the SVM loss unchanged (at 0).',
    kind='worked example',
)
def margin_insensitivity(quick: bool, seed: int) -> ClaimResult:
    base = torch.tensor(_SCORES[1], dtype=torch.float64)  # correct class 1, margin 4.9 − 2.0 = 2.9
    y = torch.tensor([1])
    s_y = torch.linspace(3.0, 10.0, 71 if quick else 701, dtype=torch.float64)  # all >= 2.0 + Δ
    s = base.repeat(len(s_y), 1)
    s[:, 1] = s_y
    yy = y.repeat(len(s_y))
    svm = multiclass_svm_loss(s, yy, reduction="none")
    ce = softmax_cross_entropy(s, yy, reduction="none")
    svm_change = (svm - svm[0]).abs().max().item()
    ce_change = (ce[0] - ce[-1]).item()
    ce_monotone = bool((ce[1:] < ce[:-1]).all())
    holds = svm_change == 0.0 and ce_change > 1e-3 and ce_monotone
    fig, ax = new_figure()
    ax.plot(s_y, svm, label="SVM loss")
    ax.plot(s_y, ce, label="softmax loss")
    ax.axvline(4.9, color="k", ls=":", lw=1, label="the notes' score 4.9")
    ax.set(
        xlabel="correct-class score s_y (others 1.3, 2.0)",
        ylabel="loss",
        yscale="symlog",
        title="Beyond the margin the SVM loss is flat",
    )
    ax.legend(fontsize=8)
    measured = {
        "s_y_range": [3.0, 10.0],
        "max_svm_change": svm_change,
        "softmax_at_3": ce[0].item(),
        "softmax_at_10": ce[-1].item(),
        "softmax_decreasing": ce_monotone,
    }
    test = (
        "Sample (1.3, s_y, 2.0), correct class 1, s_y swept over [3, 10] (always >= 2.0 + Δ): the "
        "SVM loss must not change at all, while the softmax loss must decrease strictly (total "
        "change > 1e-3)."
    )
    return ClaimResult(measured, test, holds, [fig])


def _fit_line(x: torch.Tensor, y: torch.Tensor, loss, steps: int) -> tuple[float, float]:
    params = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([params], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        loss(params[0] * x + params[1], y).backward()
        opt.step()
        sched.step()
    return params[0].item(), params[1].item()


@claim(
    "6e",
    title="With outliers, an absolute-loss line fit stays near the true line; a squared-loss fit "
    "is pulled away",
    topics=("6.6",),
    source='notes 208-209',
    statement='The squared loss punishes far points more and is sensitive to outliers; the absolute loss is more robust to them.',
)
def robust_line_fit(quick: bool, seed: int) -> ClaimResult:
    g = torch.Generator().manual_seed(seed)
    n, w, b = 100, 2.0, 1.0
    x = torch.rand(n, generator=g, dtype=torch.float64) * 10
    y = w * x + b + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    out = torch.randperm(n, generator=g)[: n // 10]
    y_out = y.clone()
    y_out[out] += 30.0 + 10 * torch.rand(
        len(out), generator=g, dtype=torch.float64
    )  # 10% gross errors
    steps = 1500 if quick else 6000
    fits = {
        name: _fit_line(x, y_out, f, steps)
        for name, f in (("squared", squared_loss), ("absolute", absolute_loss))
    }
    grid = torch.linspace(0, 10, 101, dtype=torch.float64)

    def line_err(p):  # mean vertical distance to the true line over x in [0, 10]
        return (p[0] * grid + p[1] - (w * grid + b)).abs().mean().item()

    err = {k: line_err(p) for k, p in fits.items()}
    holds = err["absolute"] < 0.5 and err["squared"] > 3 * err["absolute"]
    fig, ax = new_figure()
    ax.plot(x, y_out, ".", color="0.5", ms=4, label="data (10% outliers)")
    for (name, p), col in zip(fits.items(), ("C3", "C0")):
        ax.plot(
            grid, p[0] * grid + p[1], color=col, label=f"{name} loss: y = {p[0]:.2f}x + {p[1]:.2f}"
        )
    ax.plot(grid, w * grid + b, "k--", lw=1, label="true: y = 2x + 1")
    ax.set(xlabel="x", ylabel="y", title="Line fits with outliers")
    ax.legend(fontsize=8)
    measured = {
        "n": n,
        "outliers": len(out),
        "fit_squared": fits["squared"],
        "fit_absolute": fits["absolute"],
        "line_error_squared": err["squared"],
        "line_error_absolute": err["absolute"],
    }
    test = (
        "y = 2x + 1 + N(0, 0.5²), 10% of points shifted up by 30–40; lines fitted by Adam on each "
        "loss. Mean vertical distance to the true line over [0, 10]: absolute-loss fit < 0.5 and "
        "squared-loss fit more than 3 times larger."
    )
    return ClaimResult(measured, test, holds, [fig])


@claim(
    "6f",
    title="Squared loss on a sigmoid is non-convex in the weights; cross-entropy is convex",
    topics=("6.1", "6.2"),
    source='notes 206',
    statement='Squared and absolute losses are non-convex on classification problems, which is why they are not used there.',
)
def sigmoid_convexity(quick: bool, seed: int) -> ClaimResult:
    g = torch.Generator().manual_seed(seed)
    n = 20
    x = torch.randn(n, generator=g, dtype=torch.float64)
    t = (x + 0.5 * torch.randn(n, generator=g, dtype=torch.float64) > 0).double()
    k = 41 if quick else 101
    ws = torch.linspace(-8, 8, k, dtype=torch.float64)
    bs = torch.linspace(-8, 8, k, dtype=torch.float64)

    # every grid point (w, b) at once: losses of shape (k², n), averaged over the n points
    w, b = (v.reshape(-1).clone().requires_grad_() for v in torch.meshgrid(ws, bs, indexing="ij"))
    z = w[:, None] * x + b[:, None]
    tt = t.expand_as(z)
    losses = {
        "squared": squared_loss(torch.sigmoid(z), tt, "none").mean(1),
        "cross_entropy": binary_cross_entropy(z, tt, "none").mean(1),
    }
    min_eig, surf = {}, {}
    for name, loss in losses.items():
        # grid points do not interact, so the gradient of the sum holds each point's own gradient,
        # and differentiating it once more gives each point's exact 2×2 Hessian
        gw, gb = torch.autograd.grad(loss.sum(), (w, b), create_graph=True)
        hww, hwb = torch.autograd.grad(gw.sum(), (w, b), retain_graph=True)
        _, hbb = torch.autograd.grad(gb.sum(), (w, b), retain_graph=True)  # z is shared
        hess = torch.stack([torch.stack([hww, hwb], -1), torch.stack([hwb, hbb], -1)], -2)
        min_eig[name] = torch.linalg.eigvalsh(hess.detach())[:, 0].numpy()
        surf[name] = loss.detach().reshape(k, k)
    lo = {name: float(v.min()) for name, v in min_eig.items()}
    holds = lo["squared"] < -1e-3 and lo["cross_entropy"] > -1e-12
    fig, axes = new_figure(ncols=2)
    for ax, name in zip(axes, ("squared", "cross_entropy")):
        cs = ax.contour(ws, bs, surf[name].T.numpy(), levels=20, cmap="viridis", linewidths=0.8)
        ax.clabel(cs, fontsize=6)
        ax.set(xlabel="w", ylabel="b", title=f"{name} on σ(wx + b): min Hessian eig {lo[name]:.3g}")
    measured = {
        "grid": [k, k],
        "min_hessian_eig_squared": lo["squared"],
        "min_hessian_eig_cross_entropy": lo["cross_entropy"],
        "share_nonconvex_points_squared": float(np.mean(min_eig["squared"] < 0)),
    }
    test = (
        f"Exact Hessians (double autograd) of the mean loss over 20 labelled points, on a {k}×{k} "
        "grid of "
        "(w, b) in [−8, 8]²: squared loss on σ must have a Hessian eigenvalue < −1e-3 somewhere; "
        "cross-entropy's smallest eigenvalue must be >= −1e-12 everywhere."
    )
    return ClaimResult(measured, test, holds, [fig])
