"""Chapter 3 claims: gradient descent, momentum, adaptive steps, saddles and mini-batch noise."""

from __future__ import annotations

import math

import numpy as np
import torch

from deepnotes.core.threads import single_threaded as one_thread
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.optim import SGD, Adagrad, Adam, Momentum, RMSProp, batch_indices
from deepnotes.viz import new_figure


def descend(opt_cls, f, start, steps: int, **kw) -> torch.Tensor:
    """Positions ``(steps + 1, dim)`` visited by ``opt_cls`` minimizing ``f`` from ``start``."""
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = opt_cls([p], **kw)
    out = [p.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        f(p).backward()
        opt.step()
        out.append(p.detach().clone())
    return torch.stack(out)


def _contour(ax, f, xlim, ylim, levels=30):
    xs = torch.linspace(*xlim, 200, dtype=torch.float64)
    ys = torch.linspace(*ylim, 200, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    z = f(torch.stack([gx, gy]))
    ax.contour(gx.numpy(), gy.numpy(), z.numpy(), levels=levels, cmap="Greys", linewidths=0.6)


def _first(mask: torch.Tensor) -> int | None:
    idx = mask.nonzero()
    return int(idx[0]) if len(idx) else None


@claim("3a", title="GD finds the minimum of a convex quadratic but stops in a local minimum otherwise", topics=("3.1", "3.2"),
    source='notes 58',
    statement='Gradient descent steps along the negative gradient of the cost with the learning rate as step size; it finds the global optimum of a convex function and a local optimum of a non-convex one.')
@one_thread
def gd_convex_vs_nonconvex(quick: bool, seed: int) -> ClaimResult:
    def convex(w):
        return ((w - 2.0) ** 2 + 1.0).sum()

    def nonconvex(w):
        return (w**4 - 3 * w**2 + w).sum()

    steps = 300 if quick else 2000
    pc = descend(SGD, convex, [-3.0], steps, lr=0.1)[:, 0]
    pn = descend(SGD, nonconvex, [2.0], steps, lr=0.01)[:, 0]
    # the stationary points of w^4 - 3w^2 + w: roots of 4w^3 - 6w + 1
    roots = np.sort(np.roots([4.0, 0.0, -6.0, 1.0]).real)
    global_min, local_min = roots[0], roots[2]
    g = lambda w: w**4 - 3 * w**2 + w  # noqa: E731
    end = pn[-1].item()
    convex_err = abs(pc[-1].item() - 2.0)
    fig, axes = new_figure(2)
    w = np.linspace(-4, 4, 300)
    axes[0].plot(w, (w - 2) ** 2 + 1, color="0.6")
    axes[0].plot(pc.numpy(), ((pc - 2) ** 2 + 1).numpy(), "o-", ms=3, label="GD path")
    axes[0].set_title("convex: (w-2)² + 1")
    axes[0].set_ylabel("cost")
    w = np.linspace(-2.0, 2.1, 300)
    axes[1].plot(w, g(w), color="0.6")
    axes[1].plot(pn.numpy(), g(pn).numpy(), "o-", ms=3, label="GD path from w=2")
    axes[1].axvline(global_min, ls="--", color="g", label="global minimum")
    axes[1].set_title("non-convex: w⁴ - 3w² + w")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.set_xlabel("w")
    return ClaimResult(
        measured={
            "convex_final_error": convex_err,
            "nonconvex_final_w": end,
            "local_minimizer": float(local_min),
            "global_minimizer": float(global_min),
            "nonconvex_final_cost": float(g(end)),
            "global_min_cost": float(g(global_min)),
        },
        test=(
            f"GD (our SGD, full batch) for {steps} steps: on (w-2)^2+1 from w=-3 the error |w-2| must be "
            "< 1e-6; on w^4-3w^2+w from w=2 it must end within 1e-4 of the local minimizer (a root of "
            "4w^3-6w+1) with a cost at least 1 above the global minimum"
        ),
        holds=convex_err < 1e-6 and abs(end - local_min) < 1e-4 and g(end) > g(global_min) + 1.0,
        figures=[fig],
    )


KAPPA = 50.0  # curvature ratio of the valley


def valley(p):
    return 0.5 * (p[0] ** 2 + KAPPA * p[1] ** 2)


@claim(
    "3b",
    title="In a narrow valley SGD zig-zags; momentum damps the zig-zag and arrives sooner",
    topics=("3.2",),
    source="notes 60, 64",
    statement="Stochastic gradient descent oscillates across valleys; the momentum method adds inertia: each "
    "step is the previous step, decayed, plus the learning rate times the current gradient.",
)
@one_thread
def valley_momentum(quick: bool, seed: int) -> ClaimResult:
    lr = 0.035  # |1 - lr * KAPPA| = 0.75: SGD is stable and flips across the valley every step
    steps = 400 if quick else 2000
    start = [-10.0, 1.0]
    runs = {
        "SGD": descend(SGD, valley, start, steps, lr=lr),
        "momentum 0.5": descend(Momentum, valley, start, steps, lr=lr, momentum=0.5),
        "momentum 0.9": descend(Momentum, valley, start, steps, lr=lr, momentum=0.9),
    }
    f0 = valley(torch.tensor(start, dtype=torch.float64)).item()
    window = 30
    stats = {}
    for name, path in runs.items():
        f = 0.5 * (path[:, 0] ** 2 + KAPPA * path[:, 1] ** 2)
        y = path[:, 1]
        stats[name] = {
            # zig-zag, defined once for every optimizer: the share of steps on which the position
            # across the valley (y) changes sign, over the first `window` steps
            "zigzag_share": ((y[1 : window + 1] * y[:window]) < 0).double().mean().item(),
            "steps_to_1e-6_f0": _first(f < 1e-6 * f0),
            "travel_across_valley": (y[1:] - y[:-1]).abs().sum().item(),
        }
    sgd = stats["SGD"]
    judged = ("momentum 0.9",)  # the customary value; 0.5 is shown for comparison
    zigzag = sgd["zigzag_share"] >= 0.9
    damped = {m: stats[m]["zigzag_share"] <= 0.5 * sgd["zigzag_share"] for m in judged}
    sooner = {m: (stats[m]["steps_to_1e-6_f0"] or math.inf) < (sgd["steps_to_1e-6_f0"] or math.inf) for m in judged}
    fig, ax = new_figure(width=7, height=3.8)
    _contour(ax, lambda p: valley(p), (-11, 5), (-1.5, 1.5))
    for name, path in runs.items():
        ax.plot(path[:60, 0].numpy(), path[:60, 1].numpy(), ".-", ms=3, lw=0.8, label=name)
    ax.set(xlabel="x (along the valley)", ylabel="y (across the valley)",
           title=f"first 60 steps on 0.5(x² + {KAPPA:g}y²), lr {lr}")
    ax.legend(fontsize=7)
    travel = {m: stats[m]["travel_across_valley"] / sgd["travel_across_valley"] for m in ("momentum 0.5", "momentum 0.9")}
    return ClaimResult(
        measured=stats,
        test=(
            f"on 0.5(x² + {KAPPA:g}y²) from (-10, 1), lr {lr}. Zig-zag is defined before measuring as the share of "
            f"the first {window} steps on which y (across the valley) changes sign. Holds if SGD zig-zags (share "
            ">= 0.9) and momentum 0.9 (the customary value; 0.5 shown beside it) at least halves that share "
            "(damping) and reaches f < 1e-6·f0 in fewer steps than SGD. The runs are deterministic, so no seed enters"
        ),
        holds=bool(zigzag and all(damped.values()) and all(sooner.values())),
        figures=[fig],
        observation=(
            "With momentum 0.9 the fewer reversals are wider swings: its total travel across the valley "
            f"(sum of |Δy|) is {travel['momentum 0.9']:.1f}× SGD's (momentum 0.5: {travel['momentum 0.5']:.2f}×). "
            "Inertia trades many small reversals for a few slow, large oscillations."
        ),
    )


@claim("3c", title="Adagrad's effective step only shrinks; RMSProp's recovers", topics=("3.2",),
    source='notes 66-70',
    statement='Adagrad divides the learning rate by the square root of the sum of all past squared gradients; that sum only grows, so the step becomes smaller and smaller.')
@one_thread
def adagrad_vs_rmsprop_step(quick: bool, seed: int) -> ClaimResult:
    steps = 1500 if quick else 6000  # RMSProp (alpha 0.99) needs a few hundred steps to forget
    switch = steps // 3
    g = torch.Generator().manual_seed(seed)
    # gradients of size ~1 for the first third, then ~0.01 (the landscape flattens)
    scale = torch.where(torch.arange(steps) < switch, 1.0, 0.01).to(torch.float64)
    grads = scale * (1 + 0.2 * torch.randn(steps, generator=g, dtype=torch.float64))
    eff = {}
    for name, cls, kw in (("Adagrad", Adagrad, {"lr": 0.1}), ("RMSProp", RMSProp, {"lr": 0.1, "alpha": 0.99})):
        p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = cls([p], **kw)
        key = "sum" if name == "Adagrad" else "square_avg"
        out = []
        for t in range(steps):
            p.grad = grads[t : t + 1].clone()
            opt.step()
            # the step a unit gradient would get now: lr / (sqrt(accumulator) + eps)
            acc = opt.state[p][key]
            out.append((kw["lr"] / (acc.sqrt() + opt.param_groups[0]["eps"])).item())
        eff[name] = torch.tensor(out)
    ada_increase = (eff["Adagrad"][1:] - eff["Adagrad"][:-1]).max().item()
    rms_recovery = (eff["RMSProp"][-1] / eff["RMSProp"][:switch].min()).item()
    fig, ax = new_figure()
    for name, e in eff.items():
        ax.semilogy(e.numpy(), label=name)
    ax.axvline(switch, ls="--", color="0.5", label="gradients shrink 100x")
    ax.set_xlabel("step")
    ax.set_ylabel("effective step lr / (sqrt(acc) + eps)")
    ax.legend(fontsize=7)
    return ClaimResult(
        measured={
            "adagrad_largest_step_increase": ada_increase,
            "adagrad_final_over_first": (eff["Adagrad"][-1] / eff["Adagrad"][0]).item(),
            "rmsprop_final_over_min_in_first_phase": rms_recovery,
        },
        test=(
            f"the same gradient stream ({switch} steps of size ~1, then ~0.01) fed to Adagrad and RMSProp "
            "(lr 0.1); Adagrad's effective step must never increase (largest step-to-step increase <= 0) "
            "and RMSProp's final effective step must be > 10x its smallest during the large-gradient phase"
        ),
        holds=ada_increase <= 0.0 and rms_recovery > 10.0,
        figures=[fig],
    )


def saddle(p):
    # a saddle at (0, 0) between two minima at (0, +-1), value -1/4
    return p[0] ** 2 + 0.25 * p[1] ** 4 - 0.5 * p[1] ** 2


@claim("3d", title="Started near a saddle, plain GD stalls far longer than momentum or Adam", topics=("3.2",),
    source='notes 58, 60',
    statement='Plain gradient descent cannot deal with saddle points; stochastic gradient descent suffers from them too.')
@one_thread
def saddle_escape(quick: bool, seed: int) -> ClaimResult:
    steps = 2500 if quick else 6000
    start = [1.0, 1e-6]
    lr = 0.01
    runs = {
        "GD": descend(SGD, saddle, start, steps, lr=lr),
        "momentum 0.9": descend(Momentum, saddle, start, steps, lr=lr, momentum=0.9),
        "Adam": descend(Adam, saddle, start, steps, lr=lr),
    }
    escape = {name: _first(saddle(path.T) < -0.2) for name, path in runs.items()}
    gd = escape["GD"] if escape["GD"] is not None else math.inf
    others = max(v if v is not None else math.inf for k, v in escape.items() if k != "GD")
    fig, ax = new_figure(width=6, height=4)
    _contour(ax, lambda p: saddle(p), (-1.2, 1.2), (-1.4, 1.4), levels=40)
    for name, path in runs.items():
        ax.plot(path[:, 0].numpy(), path[:, 1].numpy(), ".-", ms=2, lw=0.8, label=f"{name}: escape at {escape[name]}")
    ax.set(xlabel="x", ylabel="y", title="x² + y⁴/4 - y²/2 from (1, 1e-6), lr 0.01")
    ax.legend(fontsize=7)
    return ClaimResult(
        measured={"escape_step": escape},
        test=(
            "steps until f < -0.2 (past the saddle value 0, toward a minimum at -0.25) from (1, 1e-6), "
            "lr 0.01 for all; holds if GD needs >= 3x the steps of both momentum 0.9 and Adam"
        ),
        holds=gd >= 3 * others,
        figures=[fig],
    )


@claim("3e", title="Mini-batch size trades gradient noise against the cost of a step", topics=("3.1",),
    source='notes 58-62',
    statement="Full-batch gradient descent uses the gradient of the whole cost, stochastic gradient descent one sample's loss, and mini-batch descent the summed loss of a group of samples: a compromise between the two.")
@one_thread
def minibatch_noise(quick: bool, seed: int) -> ClaimResult:
    n, d = (8192, 10) if quick else (65536, 10)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = x @ torch.randn(d, generator=g, dtype=torch.float64) + torch.randn(n, generator=g, dtype=torch.float64)
    w = torch.zeros(d, dtype=torch.float64)  # the gradient is estimated at a fixed point

    def grad(idx):
        xb = x[idx]
        return 2 * xb.T @ (xb @ w - y[idx]) / len(idx)

    full = grad(torch.arange(n))
    sizes = [1, 4, 16, 64, 256, 1024]
    reps = 200 if quick else 1000
    variance = []
    for b in sizes:
        est = []
        while len(est) < reps:
            est += [grad(idx) for idx in batch_indices(n, "minibatch", b, generator=g)[: reps - len(est)]]
        dev = torch.stack(est) - full
        # sampling without replacement: the variance of a batch mean is (N - B)/(N - 1) * sigma^2 / B
        variance.append(dev.pow(2).sum(1).mean().item() / ((n - b) / (n - 1)))
    slope = float(np.polyfit(np.log(sizes), np.log(variance), 1)[0])
    # the three feeding strategies with the same optimizer: loss against sample-gradients computed
    curves = {}
    budget = 4 * 2048
    xs, ys = x[:2048], y[:2048]
    for name, strategy, b, lr in (("full batch", "full", None, 0.1), ("mini-batch 32", "minibatch", 32, 0.05), ("stochastic", "stochastic", None, 0.01)):
        p = torch.zeros(d, dtype=torch.float64, requires_grad=True)
        opt = SGD([p], lr=lr)
        seen, pts = 0, []
        while seen < budget:
            for idx in batch_indices(2048, strategy, b, generator=g):
                opt.zero_grad()
                ((xs[idx] @ p - ys[idx]) ** 2).mean().backward()
                opt.step()
                seen += len(idx)
                if len(pts) == 0 or seen - pts[-1][0] >= 256:
                    with torch.no_grad():
                        pts.append((seen, ((xs @ p - ys) ** 2).mean().item()))
                if seen >= budget:
                    break
        curves[name] = pts
    fig, axes = new_figure(2)
    axes[0].loglog(sizes, variance, "o-", label=f"measured (slope {slope:.2f})")
    axes[0].loglog(sizes, [variance[0] / s for s in sizes], "--", color="0.5", label="1/B")
    axes[0].set_xlabel("batch size B (cost of a step: B sample gradients)")
    axes[0].set_ylabel("variance of the gradient estimate")
    axes[0].legend(fontsize=7)
    for name, pts in curves.items():
        axes[1].semilogy([p[0] for p in pts], [p[1] for p in pts], label=name)
    axes[1].set_xlabel("sample gradients computed")
    axes[1].set_ylabel("training MSE")
    axes[1].legend(fontsize=7)
    return ClaimResult(
        measured={"batch_sizes": sizes, "gradient_variance": variance, "loglog_slope": slope,
                  "final_mse": {k: v[-1][1] for k, v in curves.items()}},
        test=(
            f"linear regression, N={n}: variance of the mini-batch gradient around the full gradient for "
            "B = 1..1024 (corrected for sampling without replacement) while a step costs B sample "
            "gradients; holds if the log-log slope of variance against B is within [-1.15, -0.85]"
        ),
        holds=-1.15 <= slope <= -0.85,
        figures=[fig],
    )
