"""Chapter 2 claims: what each weight initialization does to activations and gradients by depth."""

from __future__ import annotations

import math
import statistics

import torch

from deepnotes.core.threads import single_threaded as one_thread
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.nn import activations as act
from deepnotes.nn import init as winit
from deepnotes.optim import SGD
from deepnotes.viz import new_figure

_ACTS = {"tanh": act.tanh, "relu": act.relu}


def _size(quick: bool) -> dict:
    # width, depth, batch, seeds
    return dict(width=128, depth=10, n=256, seeds=3) if quick else dict(width=384, depth=14, n=1024, seeds=5)


def deep_stats(scheme: str, nonlin: str, *, width: int, depth: int, n: int, seed: int, **kw) -> dict:
    """One forward/backward pass of a bias-free ``depth``-layer MLP initialized with ``scheme``.

    Returns per-layer lists: activation std, fraction of |tanh| > 0.99, mean local derivative
    f'(z), std of the weight gradients, std of the gradient reaching each layer's output, and
    the layer outputs themselves (for histograms).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, width, generator=g)
    weights = [winit.SCHEMES[scheme](torch.empty(width, width), generator=g, **kw) for _ in range(depth)]
    for w in weights:
        w.requires_grad_(True)
    f = _ACTS[nonlin]
    h, outs, pres = x, [], []
    for w in weights:
        z = h @ w.T
        h = f(z)
        h.retain_grad()
        pres.append(z.detach())
        outs.append(h)
    # a random linear read-out as the loss, so every unit receives a gradient
    (h * torch.randn(h.shape, generator=g)).sum().div(n).backward()
    deriv = act.DERIVATIVES[nonlin]
    return {
        "act_std": [o.detach().std().item() for o in outs],
        "saturated": [(o.detach().abs() > 0.99).float().mean().item() for o in outs],
        "local_deriv": [deriv(z).mean().item() for z in pres],
        "weight_grad_std": [w.grad.std().item() for w in weights],
        "out_grad_std": [o.grad.std().item() for o in outs],
        "outputs": [o.detach() for o in outs],
    }


def _averaged(scheme, nonlin, quick, seed, **kw) -> tuple[dict, dict]:
    size = _size(quick)
    runs = [
        deep_stats(scheme, nonlin, width=size["width"], depth=size["depth"], n=size["n"], seed=seed * 100 + s, **kw)
        for s in range(size["seeds"])
    ]
    keys = [k for k in runs[0] if k != "outputs"]
    mean = {k: [statistics.fmean(col) for col in zip(*(r[k] for r in runs))] for k in keys}
    return mean, runs[0]


def _histograms(ax, run: dict, title: str) -> None:
    depth = len(run["outputs"])
    for layer in sorted({0, depth // 3, 2 * depth // 3, depth - 1}):
        vals = run["outputs"][layer].flatten().numpy()
        ax.hist(vals, bins=80, histtype="step", density=True, label=f"layer {layer + 1}")
    ax.set_title(title)
    ax.set_xlabel("activation")
    ax.set_yscale("log")
    ax.legend(fontsize=7)


def _teacher(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """256 inputs in 16 dimensions and the outputs of a fixed random tanh teacher."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 16, generator=g)
    y = torch.tanh(x @ (torch.randn(16, 32, generator=g) / 4)) @ (torch.randn(32, 1, generator=g) / 32**0.5)
    return x, y


def _mlp_losses(scheme: str, nonlin: str, *, lr: float, steps: int, seed: int, depth: int = 4,
                width: int = 64) -> list[float]:
    """Full-batch SGD on a depth-``depth`` MLP fitting a fixed random teacher; the loss at every step.

    ``scheme``: ``"small"`` (0.01·N(0,1)), ``"large"`` (N(0,1)) or ``"scaled"`` (N(0,1) scaled by the
    number of inputs: std gain/√fan_in, gain √2 for ReLU and 1 for tanh — He / LeCun). A non-finite
    loss ends the run (the remaining steps are NaN).
    """
    x, y = _teacher(seed)
    g = torch.Generator().manual_seed(seed + 1)
    dims = [16] + [width] * (depth - 1) + [1]
    weights = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        w = torch.empty(fan_out, fan_in)
        if scheme == "small":
            winit.small_random_(w, generator=g)
        elif scheme == "large":
            winit.large_random_(w, generator=g)
        else:
            winit.kaiming_normal_(w, nonlinearity="relu" if nonlin == "relu" else "linear", generator=g)
        weights.append(w.requires_grad_(True))
    f = _ACTS[nonlin]
    opt = SGD(weights, lr=lr)
    losses: list[float] = []
    for _ in range(steps):
        h = x
        for i, w in enumerate(weights):
            h = h @ w.T
            h = f(h) if i < depth - 1 else h
        loss = (h - y).pow(2).mean()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            return losses + [math.nan] * (steps - len(losses))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


@claim(
    "2a",
    title="Too-small random init: gradient descent barely moves (activations and gradients shrink with depth)",
    topics=("2.1",),
    source="notes 34-36",
    statement="If the initial weights are too small, gradient descent becomes very slow.",
)
@one_thread
def small_init_shrinks(quick: bool, seed: int) -> ClaimResult:
    m, run = _averaged("small_random", "tanh", quick, seed)
    act_ratio = m["act_std"][-1] / m["act_std"][0]
    grad_ratio = m["out_grad_std"][0] / m["out_grad_std"][-1]
    steps, n_seeds, lr = (60, 3, 0.1) if quick else (200, 5, 0.1)
    curves = {s: [_mlp_losses(s, "tanh", lr=lr, steps=steps, seed=seed * 100 + k) for k in range(n_seeds)]
              for s in ("small", "scaled")}
    drop = {s: [1 - c[-1] / c[0] for c in cs] for s, cs in curves.items()}
    mean_drop = {s: statistics.fmean(v) for s, v in drop.items()}
    slow = mean_drop["small"] < 0.05 and mean_drop["scaled"] > 0.5
    fig, axes = new_figure(2)
    for s, style in (("small", "-"), ("scaled", "--")):
        for k, c in enumerate(curves[s]):
            axes[0].plot(range(steps), c, style, color="C0" if s == "small" else "C1",
                         label=None if k else {"small": "0.01·N(0,1)", "scaled": "N(0,1)/√fan_in"}[s])
    axes[0].set(xlabel="SGD step", ylabel="training MSE", title=f"depth-4 tanh MLP, lr {lr}, {n_seeds} seeds")
    axes[0].legend(fontsize=7)
    layers = range(1, len(m["act_std"]) + 1)
    axes[1].semilogy(layers, m["act_std"], "o-", label="activation std")
    axes[1].semilogy(layers, m["out_grad_std"], "s-", label="std of dL/d(activation)")
    axes[1].set(xlabel="layer", ylabel="standard deviation", title="0.01·N(0,1), tanh: by depth")
    axes[1].legend(fontsize=7)
    return ClaimResult(
        measured={
            "relative_loss_drop_small_init": mean_drop["small"],
            "relative_loss_drop_scaled_init": mean_drop["scaled"],
            "relative_loss_drop_by_seed": drop,
            "last_over_first_activation_std": act_ratio,
            "first_over_last_backprop_grad_std": grad_ratio,
            "activation_std_by_layer": m["act_std"],
        },
        test=(
            f"a depth-4 tanh MLP (width 64) fits a fixed random teacher with full-batch SGD, lr {lr}, {steps} "
            f"steps, from 0.01·N(0,1) and from N(0,1)/√fan_in weights, {n_seeds} seeds; the relative loss "
            "drop 1 - L_end/L_0 (mean over seeds) must be < 5% for the small init and > 50% for the scaled "
            "one (the gap is two orders of magnitude, far beyond the seed-to-seed spread). The mechanism: "
            "in a deeper tanh MLP with 0.01·N(0,1) weights the activation std of the last layer over the "
            "first and the std of the gradient reaching the first layer over the last must both be < 1e-3"
        ),
        holds=bool(slow and act_ratio < 1e-3 and grad_ratio < 1e-3),
        figures=[fig],
    )


@claim(
    "2b",
    title="Large N(0,1) init with tanh: the network saturates (activations near ±1)",
    topics=("2.1",),
    source="notes 50-52",
    statement="With W drawn as 1·N(0,1) and tanh units the network saturates: the weights are large, so "
    "the inputs to tanh are large and its outputs sit close to -1 or 1.",
)
@one_thread
def large_init_saturates(quick: bool, seed: int) -> ClaimResult:
    m, run = _averaged("large_random", "tanh", quick, seed)
    saturated = statistics.fmean(m["saturated"])
    local = statistics.fmean(m["local_deriv"])
    grad_ratio = m["weight_grad_std"][0] / m["weight_grad_std"][-1]
    fig, axes = new_figure(2)
    _histograms(axes[0], run, "N(0,1) init, tanh: activations by depth")
    axes[0].set_ylabel("density (log scale)")
    layers = range(1, len(m["act_std"]) + 1)
    axes[1].plot(layers, m["saturated"], "o-", label="share of |tanh| > 0.99")
    axes[1].plot(layers, m["local_deriv"], "s-", label="mean tanh'(z)")
    axes[1].set(xlabel="layer", ylabel="share / derivative", ylim=(0, 1.05), title="saturation by layer")
    axes[1].legend(fontsize=7)
    return ClaimResult(
        measured={
            "saturated_fraction": saturated,
            "saturated_fraction_by_layer": m["saturated"],
            "mean_local_derivative": local,
            "first_over_last_weight_grad_std": grad_ratio,
        },
        test=(
            "tanh MLP with N(0,1) weights (width 128 quick / 384 full), averaged over seeds: the share of "
            "activations with |a| > 0.99, averaged over the layers, must be >= 0.5 (most units saturated)"
        ),
        holds=saturated >= 0.5,
        figures=[fig],
        observation=(
            f"The notes say nothing about the gradients here. We measured them: tanh'(z) averages {local:.3f}, "
            f"yet the weight gradients do not vanish toward the input: the first layer's weight-gradient std "
            f"is {grad_ratio:.3g}× the last layer's, because the large weights multiply the backpropagated "
            "gradient at every layer (they grow toward the input)."
        ),
    )


def _train_two_layer(scheme: str, *, quick: bool, seed: int, hidden: int = 8) -> torch.Tensor:
    """Train a 2-``hidden``-1 tanh MLP on a noisy XOR-like task; return the hidden weights."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 2, generator=g, dtype=torch.float64)
    y = (x[:, 0] * x[:, 1] > 0).to(torch.float64).unsqueeze(1)
    lin1 = torch.nn.Linear(2, hidden).double()
    lin2 = torch.nn.Linear(hidden, 1).double()
    for lin in (lin1, lin2):
        if scheme == "zeros":
            winit.zeros_(lin.weight)
        elif scheme == "constant":
            winit.constant_(lin.weight, 0.3)
        else:
            winit.xavier_uniform_(lin.weight, generator=g)
        winit.zeros_(lin.bias)
    opt = SGD([*lin1.parameters(), *lin2.parameters()], lr=0.5)
    for _ in range(100 if quick else 1000):
        opt.zero_grad()
        out = lin2(act.tanh(lin1(x)))
        torch.nn.functional.binary_cross_entropy_with_logits(out, y).backward()
        opt.step()
    return torch.cat([lin1.weight.detach(), lin1.bias.detach().unsqueeze(1)], dim=1)


@claim(
    "2c",
    title="All-zero (or constant) init never breaks the symmetry between hidden units",
    topics=("2.1",),
    source="notes 42-44",
    statement="If every weight starts at 0, all neurons (of a layer) end up the same.",
)
@one_thread
def zero_init_symmetry(quick: bool, seed: int) -> ClaimResult:
    spread = {}
    rows = {}
    for scheme in ("zeros", "constant", "xavier"):
        w = _train_two_layer(scheme, quick=quick, seed=seed)
        # the largest difference between any two hidden units' incoming weights
        spread[scheme] = (w.unsqueeze(0) - w.unsqueeze(1)).abs().max().item()
        rows[scheme] = w
    fig, axes = new_figure(3, width=3.6)
    for ax, (scheme, w) in zip(axes, rows.items()):
        im = ax.imshow(w.numpy(), cmap="coolwarm", aspect="auto")
        ax.set_title(f"{scheme} init: largest gap {spread[scheme]:.2g}", fontsize=9)
        ax.set_xticks([0, 1, 2], ["w₁", "w₂", "bias"])
        ax.set_yticks(range(w.shape[0]), [str(i + 1) for i in range(w.shape[0])], fontsize=7)
        ax.set_xlabel("incoming weight")
        ax.set_ylabel("hidden unit")
        fig.colorbar(im, ax=ax, fraction=0.05, label="value after training")
    return ClaimResult(
        measured={"max_gap_between_hidden_units": spread},
        test=(
            "2-8-1 tanh MLP trained with SGD (lr 0.5) on an XOR-like task from zero, constant (0.3) and "
            "Xavier init; the largest difference between the incoming weights of two hidden units must "
            "be < 1e-12 for zero and constant init (identical units) and > 0.1 for Xavier"
        ),
        holds=spread["zeros"] < 1e-12 and spread["constant"] < 1e-12 and spread["xavier"] > 0.1,
        figures=[fig],
    )


@claim(
    "2d",
    title="Gaussian weights scaled by the number of inputs keep the activation scale over 10+ layers",
    topics=("2.1",),
    source="notes 54",
    statement="A correct initialization draws the weights from the standard Gaussian and scales them "
    "according to the number of inputs.",
)
@one_thread
def scaled_init_keeps_scale(quick: bool, seed: int) -> ClaimResult:
    size = _size(quick)
    runs = {
        "0.01·N(0,1), tanh": _averaged("small_random", "tanh", quick, seed)[0],
        "N(0,1), ReLU": _averaged("large_random", "relu", quick, seed)[0],
        "N(0,1)/√fan_in, tanh": _averaged("he_normal", "tanh", quick, seed, nonlinearity="linear")[0],
        "N(0,1)·√2/√fan_in, ReLU (He)": _averaged("he_normal", "relu", quick, seed, nonlinearity="relu")[0],
        "Xavier gain 1, tanh": _averaged("xavier_normal", "tanh", quick, seed)[0],
        "Xavier gain 5/3, tanh": _averaged("xavier_normal", "tanh", quick, seed, gain=5 / 3)[0],
    }
    ratio = {k: m["act_std"][-1] / m["act_std"][0] for k, m in runs.items()}
    scaled = ("N(0,1)/√fan_in, tanh", "N(0,1)·√2/√fan_in, ReLU (He)")
    holds = (all(0.1 <= ratio[k] <= 10 for k in scaled) and ratio["0.01·N(0,1), tanh"] < 1e-3
             and ratio["N(0,1), ReLU"] > 1e3)
    fig, ax = new_figure(width=7.5, height=4.2)
    for k, m in runs.items():
        layers = range(1, len(m["act_std"]) + 1)
        ax.semilogy(layers, [v / m["act_std"][0] for v in m["act_std"]], "o-" if k in scaled else ".--",
                    ms=4, label=k)
    ax.axhspan(0.1, 10, color="0.92", label="within one order of magnitude")
    ax.set(xlabel="layer", ylabel="activation std / layer 1's",
           title=f"{size['depth']} layers of width {size['width']}, no bias")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    v = {k: r * r for k, r in ratio.items()}
    return ClaimResult(
        measured={"last_over_first_activation_std": ratio, "depth": size["depth"], "width": size["width"]},
        test=(
            f"bias-free MLPs of {size['depth']} layers (width {size['width']}), activation std of the last layer "
            "over the first, averaged over seeds: with weights N(0,1) scaled by the number of inputs "
            "(1/√fan_in for tanh, √2/√fan_in for ReLU) it must stay within one order of magnitude "
            "([0.1, 10]) while unscaled weights collapse (0.01·N(0,1): < 1e-3) or explode (N(0,1) with "
            "ReLU: > 1e3) — the many orders of magnitude between them make the verdict independent of the seed"
        ),
        holds=bool(holds),
        figures=[fig],
        observation=(
            "Beyond the notes: whether the variance stays exactly constant depends on the refinement. "
            f"Variance ratio last/first layer: He with ReLU {v['N(0,1)·√2/√fan_in, ReLU (He)']:.2f}, plain Xavier "
            f"(gain 1) with tanh {v['Xavier gain 1, tanh']:.3f} (tanh shrinks its input, so the variance "
            f"drifts down), Xavier with torch's tanh gain 5/3 {v['Xavier gain 5/3, tanh']:.2f}."
        ),
    )


@claim(
    "2e",
    title="Too-large init: gradient descent steps too far and misses the optimum",
    topics=("2.1",),
    source="notes 38-40",
    statement="If the initial weights are too large, gradient descent moves too fast and overshoots the "
    "optimum.",
)
@one_thread
def large_init_overshoots(quick: bool, seed: int) -> ClaimResult:
    steps, n_seeds = (150, 3) if quick else (300, 5)
    lrs = (3e-3, 1e-2)  # rates at which the scaled network trains (at 0.1 it diverges too)
    seeds = [seed * 100 + k for k in range(n_seeds)]
    trivial = {s: float(_teacher(s)[1].var(unbiased=False)) for s in seeds}  # the loss of predicting the mean
    runs = {(sc, lr): [_mlp_losses(sc, "relu", lr=lr, steps=steps, seed=s) for s in seeds]
            for sc in ("large", "scaled") for lr in lrs}

    def final(c):
        return c[-1] if math.isfinite(c[-1]) else math.inf

    # a large-init run "misses" the optimum when it ends non-finite or no better than predicting the mean
    missed = [final(c) >= 0.95 * trivial[s] for lr in lrs for c, s in zip(runs[("large", lr)], seeds)]
    share = sum(missed) / len(missed)
    scaled_learns = all(statistics.fmean(final(c) / trivial[s] for c, s in zip(runs[("scaled", lr)], seeds)) < 0.8
                        for lr in lrs)
    first_jump = statistics.fmean(
        (c[1] / c[0]) if math.isfinite(c[1]) else math.inf for c in runs[("large", 1e-2)]
    )
    fig, axes = new_figure(2)
    for j, lr in enumerate(lrs):
        for s, style in (("scaled", "-"), ("large", "--")):
            c = runs[(s, lr)][0]
            axes[0].semilogy(range(len(c)), c, style, color=f"C{j}", label=f"{s}, lr {lr:g}")
    axes[0].set(xlabel="SGD step", ylabel="training MSE (log; a line that stops went NaN)",
                title="depth-4 ReLU MLP, first seed")
    axes[0].legend(fontsize=6)
    finals = {s: [statistics.fmean(min(final(c), 1e6) for c in runs[(s, lr)]) for lr in lrs]
              for s in ("scaled", "large")}
    xs = range(len(lrs))
    axes[1].bar([x - 0.2 for x in xs], finals["scaled"], 0.4, label="N(0,1)·√2/√fan_in (He)")
    axes[1].bar([x + 0.2 for x in xs], finals["large"], 0.4, label="N(0,1)")
    axes[1].set_xticks(list(xs), [f"lr {lr:g}" for lr in lrs])
    axes[1].set_yscale("log")
    axes[1].set(ylabel="final training MSE (NaN shown as 1e6)", title=f"mean of {n_seeds} seeds")
    axes[1].legend(fontsize=7)
    return ClaimResult(
        measured={
            "share_of_large_init_runs_that_missed": share,
            "loss_of_predicting_the_mean": statistics.fmean(trivial.values()),
            "final_mse_scaled_by_lr": dict(zip(map(str, lrs), finals["scaled"])),
            "final_mse_large_by_lr": dict(zip(map(str, lrs), finals["large"])),
            "large_init_loss_after_first_step_over_initial_lr_0.01": first_jump,
        },
        test=(
            f"a depth-4 ReLU MLP (width 64) fits a fixed random teacher with full-batch SGD for {steps} steps at "
            f"lr {', '.join(f'{lr:g}' for lr in lrs)}, {n_seeds} seeds each, from N(0,1) weights and from "
            "N(0,1)·√2/√fan_in (He). Holds if the scaled init ends below 0.8× the loss of predicting the mean "
            "(mean over seeds, at every lr) while at least 90% of the large-init runs end non-finite or no "
            "better than predicting the mean (≥ 0.95× its loss): they overshot and learned nothing"
        ),
        holds=bool(share >= 0.9 and scaled_learns),
        figures=[fig],
        details=(
            "With N(0,1) weights the first gradient is orders of magnitude larger than with scaled weights, so "
            "the same learning rate takes a step that either blows the loss up to infinity or throws the "
            "network to a point where every ReLU is off and the loss stays at the variance of the target."
        ),
    )
