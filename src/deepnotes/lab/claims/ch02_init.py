"""Chapter 2 claims: what each weight initialization does to activations and gradients by depth."""

from __future__ import annotations

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


@claim("2a", title="Too-small random init: activations and gradients shrink toward 0 with depth", topics=("2.1",))
@one_thread
def small_init_shrinks(quick: bool, seed: int) -> ClaimResult:
    m, run = _averaged("small_random", "tanh", quick, seed)
    act_ratio = m["act_std"][-1] / m["act_std"][0]
    grad_ratio = m["out_grad_std"][0] / m["out_grad_std"][-1]
    fig, axes = new_figure(2)
    _histograms(axes[0], run, "0.01·N(0,1) init, tanh: activations by depth")
    layers = range(1, len(m["act_std"]) + 1)
    axes[1].semilogy(layers, m["act_std"], "o-", label="activation std")
    axes[1].semilogy(layers, m["out_grad_std"], "s-", label="std of dL/d(activation)")
    axes[1].set_xlabel("layer")
    axes[1].legend()
    return ClaimResult(
        measured={
            "activation_std_by_layer": m["act_std"],
            "backprop_grad_std_by_layer": m["out_grad_std"],
            "last_over_first_activation_std": act_ratio,
            "first_over_last_backprop_grad_std": grad_ratio,
        },
        test=(
            "tanh MLP with weights 0.01·N(0,1): the activation std at the last layer over the first, "
            "and the std of the gradient reaching the first layer over that at the last layer; the "
            "claim holds if both ratios are < 1e-3"
        ),
        holds=act_ratio < 1e-3 and grad_ratio < 1e-3,
        figures=[fig],
    )


@claim(
    "2b",
    title="Large N(0,1) init with tanh: activations saturate at ±1 and gradients vanish",
    topics=("2.1",),
    expected="refuted",
    reason=(
        "Saturation is real (about 85% of units have |tanh| > 0.99, mean tanh' about 0.05), but the "
        "gradients do not vanish: the large weights multiply the backpropagated gradient at every "
        "layer, so the weight gradients of the first layer are thousands of times larger than those "
        "of the last layer (they explode toward the input)."
    ),
)
@one_thread
def large_init_saturates(quick: bool, seed: int) -> ClaimResult:
    m, run = _averaged("large_random", "tanh", quick, seed)
    saturated = statistics.fmean(m["saturated"])
    local = statistics.fmean(m["local_deriv"])
    grad_ratio = m["weight_grad_std"][0] / m["weight_grad_std"][-1]
    fig, axes = new_figure(2)
    _histograms(axes[0], run, "N(0,1) init, tanh: activations by depth")
    layers = range(1, len(m["act_std"]) + 1)
    axes[1].semilogy(layers, m["weight_grad_std"], "o-", label="std of dL/dW")
    axes[1].semilogy(layers, m["local_deriv"], "s-", label="mean tanh'(z)")
    axes[1].set_xlabel("layer")
    axes[1].legend()
    return ClaimResult(
        measured={
            "saturated_fraction": saturated,
            "mean_local_derivative": local,
            "weight_grad_std_by_layer": m["weight_grad_std"],
            "first_over_last_weight_grad_std": grad_ratio,
        },
        test=(
            "tanh MLP with N(0,1) weights: the fraction of activations with |a| > 0.99 must be >= 0.5 "
            "(saturation) and the weight-gradient std of the first layer must be < 1% of the last "
            "layer's (gradients vanish toward the input)"
        ),
        holds=saturated >= 0.5 and grad_ratio < 0.01,
        figures=[fig],
        details=f"mean tanh'(z) over units: {local:.3f}; weight-gradient std first/last layer: {grad_ratio:.3g}",
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


@claim("2c", title="All-zero (or constant) init never breaks the symmetry between hidden units", topics=("2.1",))
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
        ax.imshow(w.numpy(), cmap="coolwarm", aspect="auto")
        ax.set_title(f"{scheme}: max unit gap {spread[scheme]:.2g}", fontsize=9)
        ax.set_xlabel("w1, w2, bias")
        ax.set_ylabel("hidden unit")
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
    title="Xavier (tanh) and He (ReLU) keep the activation variance roughly constant over 10+ layers",
    topics=("2.1",),
    expected="refuted",
    reason=(
        "He with ReLU keeps the variance within a factor 2 over the depth, but plain Xavier "
        "(Var(w) = 2/(fan_in + fan_out), gain 1) with tanh does not: the variance falls to about a "
        "tenth of the first layer's by layer 10-14, because tanh shrinks its input. With torch's "
        "tanh gain 5/3 the variance does stay within a factor 2 (measured in the same run)."
    ),
)
@one_thread
def xavier_he_variance(quick: bool, seed: int) -> ClaimResult:
    xav, run_x = _averaged("xavier_normal", "tanh", quick, seed)
    xav53, _ = _averaged("xavier_normal", "tanh", quick, seed, gain=5 / 3)
    he, run_h = _averaged("he_normal", "relu", quick, seed, nonlinearity="relu")

    def ratios(m):
        v = [s * s for s in m["act_std"]]
        return [x / v[0] for x in v]

    rx, r53, rh = ratios(xav), ratios(xav53), ratios(he)

    def within(r):
        return 0.5 <= min(r) and max(r) <= 2.0

    fig, axes = new_figure(3, width=4.2)
    _histograms(axes[0], run_x, "Xavier, tanh")
    _histograms(axes[1], run_h, "He, ReLU")
    layers = range(1, len(rx) + 1)
    for r, label in ((rx, "Xavier gain 1, tanh"), (r53, "Xavier gain 5/3, tanh"), (rh, "He, ReLU")):
        axes[2].plot(layers, r, "o-", label=label)
    axes[2].axhspan(0.5, 2.0, color="0.9")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("layer")
    axes[2].set_ylabel("activation variance / layer 1")
    axes[2].legend(fontsize=7)
    return ClaimResult(
        measured={
            "xavier_tanh_variance_ratio_by_layer": rx,
            "xavier_gain53_tanh_variance_ratio_by_layer": r53,
            "he_relu_variance_ratio_by_layer": rh,
        },
        test=(
            "activation variance of every layer divided by the first layer's, averaged over seeds; the "
            "claim holds if it stays within [0.5, 2] at every layer for both Xavier (gain 1) + tanh "
            "and He + ReLU"
        ),
        holds=within(rx) and within(rh),
        figures=[fig],
        details=(
            f"last-layer ratio: Xavier/tanh {rx[-1]:.3f}, Xavier gain 5/3/tanh {r53[-1]:.3f}, "
            f"He/ReLU {rh[-1]:.3f}"
        ),
    )
