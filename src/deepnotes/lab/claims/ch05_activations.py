"""Chapter 5 claims: saturation, zero-centring, dead ReLUs and the size of Maxout."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepnotes import nn as dn
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.lab.claims.ch02_init import one_thread
from deepnotes.optim import SGD, batch_indices
from deepnotes.viz import new_figure


@claim("5a", title="Sigmoid and tanh gradients vanish for large |z|", topics=("5.1",),
    source='notes 97',
    statement='For sigmoid (and tanh) the derivative goes to 0 when z is very large or very small: the gradient vanishes.')
@one_thread
def saturation(quick: bool, seed: int) -> ClaimResult:
    z = torch.linspace(-10, 10, 2001, dtype=torch.float64)
    curves = {
        "sigmoid": dn.DERIVATIVES["sigmoid"](z),
        "tanh": dn.DERIVATIVES["tanh"](z),
        "relu": dn.DERIVATIVES["relu"](z),
        "leaky_relu": dn.DERIVATIVES["leaky_relu"](z),
        "elu": dn.DERIVATIVES["elu"](z),
        "mish": dn.DERIVATIVES["mish"](z),
    }
    at10 = {name: c[-1].item() for name, c in curves.items()}
    at_minus10 = {name: c[0].item() for name, c in curves.items()}
    peak = {name: c.max().item() for name, c in curves.items()}
    fig, axes = new_figure(2)
    for name, c in curves.items():
        axes[0].plot(z.numpy(), c.numpy(), label=name)
    axes[0].set_title("derivative of each activation")
    axes[0].set_xlabel("z")
    axes[0].legend(fontsize=7)
    for name in ("sigmoid", "tanh"):
        axes[1].semilogy(z.numpy(), curves[name].numpy(), label=name)
    axes[1].set_title("sigmoid' and tanh' (log scale)")
    axes[1].legend(fontsize=7)
    vanish = all(max(at10[n], at_minus10[n]) < 1e-3 * peak[n] for n in ("sigmoid", "tanh"))
    return ClaimResult(
        measured={"derivative_at_+10": at10, "derivative_at_-10": at_minus10, "peak_derivative": peak},
        test=(
            "the written-out derivatives (checked against autograd in the tests) at z = ±10; holds if "
            "sigmoid' and tanh' there are below 1/1000 of their peak (0.25 and 1), while ReLU's stays 1 "
            "for z > 0"
        ),
        holds=vanish and at10["relu"] == 1.0,
        figures=[fig],
    )


@claim("5b", title="Sigmoid outputs are not zero-centred, so one neuron's weight gradients share a sign", topics=("5.1",),
    source='notes 97',
    statement='Sigmoid is not symmetric about 0, which makes the gradients come out all positive or all negative.')
@one_thread
def not_zero_centred(quick: bool, seed: int) -> ClaimResult:
    n, d_in, d_hidden = (256, 8, 16) if quick else (4096, 8, 16)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g, dtype=torch.float64)
    target = torch.randn(n, generator=g, dtype=torch.float64)
    w1 = torch.randn(d_hidden, d_in, generator=g, dtype=torch.float64) / d_in**0.5
    w2 = torch.randn(d_hidden, generator=g, dtype=torch.float64) / d_hidden**0.5
    result = {}
    hist = {}
    for name, f in (("sigmoid", dn.sigmoid), ("tanh", dn.tanh)):
        h = f(x @ w1.T)  # the inputs of the output neuron, one row per sample

        def loss(w, hi, ti):
            return 0.5 * (hi @ w - ti) ** 2

        # per-sample gradient of the loss w.r.t. the output neuron's incoming weights
        grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(w2, h, target)
        same_sign = ((grads > 0).all(1) | (grads < 0).all(1)).double().mean().item()
        result[name] = {"mean_input": h.mean().item(), "fraction_same_sign": same_sign}
        hist[name] = (grads > 0).double().mean(1)
    fig, ax = new_figure()
    for name, frac in hist.items():
        ax.hist(frac.numpy(), bins=d_hidden + 1, range=(0, 1), alpha=0.6, label=name)
    ax.set_xlabel("fraction of positive components in one sample's weight gradient")
    ax.set_ylabel("samples")
    ax.legend(fontsize=7)
    return ClaimResult(
        measured=result,
        test=(
            f"a neuron fed by {d_hidden} sigmoid (or tanh) units; per-sample gradient of a squared error "
            "w.r.t. its incoming weights; holds if every sigmoid-fed gradient has all components of one "
            "sign (fraction 1.0) while fewer than 5% of tanh-fed gradients do"
        ),
        holds=result["sigmoid"]["fraction_same_sign"] == 1.0 and result["tanh"]["fraction_same_sign"] < 0.05,
        figures=[fig],
    )


def _train(act_name: str, lr: float, seed: int, steps: int, width: int = 64) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 2, generator=g)
    y = (x[:, 0] * x[:, 1] > 0).float().unsqueeze(1)
    act = dn.ReLU() if act_name == "relu" else dn.LeakyReLU(0.01)
    layers = [torch.nn.Linear(2, width), torch.nn.Linear(width, width), torch.nn.Linear(width, 1)]
    for lin in layers:
        dn.kaiming_uniform_(lin.weight, nonlinearity="relu", generator=g)
        dn.zeros_(lin.bias)
    l1, l2, l3 = layers
    opt = SGD([p for lin in layers for p in lin.parameters()], lr=lr)
    t = 0
    while t < steps:
        for idx in batch_indices(512, "minibatch", 32, generator=g):
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(l3(act(l2(act(l1(x[idx]))))), y[idx]).backward()
            opt.step()
            t += 1
            if t >= steps:
                break
    with torch.no_grad():
        z1 = l1(x)
        z2 = l2(act(z1))
        z = torch.cat([z1, z2], 1)
        deriv = dn.DERIVATIVES[act_name](z)
        finite = bool(torch.isfinite(z).all())
        return {
            "finite": finite,
            # dead: the unit's derivative is 0 on every training input, so it never learns again
            "dead": (deriv == 0).all(0).double().mean().item() if finite else float("nan"),
            "negative_everywhere": (z <= 0).all(0).double().mean().item() if finite else float("nan"),
        }


@claim("5c", title="With a large learning rate many ReLU units die; Leaky ReLU units do not", topics=("5.1",),
    source='notes 99',
    statement='ReLU has zero gradient for z < 0, so neurons can die during training; Leaky ReLU replaces the 0 by a small slope a·z.')
@one_thread
def dead_relu(quick: bool, seed: int) -> ClaimResult:
    lrs = [0.01, 0.1, 0.3, 1.0, 3.0]
    seeds = [seed, seed + 1]
    steps = 400 if quick else 1500
    table = {}
    for name in ("relu", "leaky_relu"):
        table[name] = []
        for lr in lrs:
            runs = [_train(name, lr, s, steps) for s in seeds]
            ok = [r for r in runs if r["finite"]]
            table[name].append({
                "lr": lr,
                "diverged_runs": len(runs) - len(ok),
                "dead_fraction": sum(r["dead"] for r in ok) / len(ok) if ok else None,
                "negative_everywhere_fraction": sum(r["negative_everywhere"] for r in ok) / len(ok) if ok else None,
            })
    relu_small, relu_large = table["relu"][0]["dead_fraction"], table["relu"][-1]["dead_fraction"]
    leaky_dead = [row["dead_fraction"] for row in table["leaky_relu"] if row["dead_fraction"] is not None]
    many = relu_large is not None and relu_large >= 0.3 and relu_large >= 3 * relu_small
    none = bool(leaky_dead) and max(leaky_dead) == 0.0
    fig, ax = new_figure()
    for name, rows in table.items():
        pts = [(r["lr"], r["dead_fraction"]) for r in rows if r["dead_fraction"] is not None]
        ax.semilogx([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{name}: dead")
    pts = [(r["lr"], r["negative_everywhere_fraction"]) for r in table["leaky_relu"] if r["dead_fraction"] is not None]
    ax.semilogx([p[0] for p in pts], [p[1] for p in pts], "x--", label="leaky_relu: negative on all inputs")
    ax.set_xlabel("learning rate (SGD, batch 32)")
    ax.set_ylabel("fraction of hidden units")
    ax.legend(fontsize=7)
    return ClaimResult(
        measured={"by_learning_rate": table},
        test=(
            f"2-64-64-1 MLP (He init) trained {steps} SGD steps on an XOR-like task at each learning rate, "
            "2 seeds; a unit is dead when its derivative is 0 on every training input; holds if ReLU's "
            "dead fraction at lr 3 is >= 0.3 and >= 3x that at lr 0.01, and no Leaky ReLU unit is dead "
            "in any finite run"
        ),
        holds=many and none,
        figures=[fig],
        details=(
            "Leaky ReLU units can also end negative on every input (dashed line) but keep a 0.01 slope, "
            "so they still receive gradient; runs whose weights became non-finite are counted in "
            "diverged_runs and left out of the fractions."
        ),
    )


@claim("5d", title="Maxout with two pieces doubles the parameters of the layer it replaces", topics=("5.1",),
    source='notes 103',
    statement='Maxout doubles the number of parameters: it trains two weight combinations and keeps the larger of their outputs.',
    kind='worked example')
@one_thread
def maxout_parameters(quick: bool, seed: int) -> ClaimResult:
    sizes = [(10, 5), (100, 50), (784, 256), (4096, 1000)]
    ratios = {}
    counts = {}
    for n_in, n_out in sizes:
        lin = sum(p.numel() for p in torch.nn.Linear(n_in, n_out).parameters())
        mx = sum(p.numel() for p in dn.Maxout(n_in, n_out, pieces=2).parameters())
        ratios[f"{n_in}->{n_out}"] = mx / lin
        counts[f"{n_in}->{n_out}"] = {"linear": lin, "maxout": mx}
    fig, ax = new_figure()
    labels = list(counts)
    ax.bar([i - 0.2 for i in range(len(labels))], [counts[k]["linear"] for k in labels], 0.4, label="Linear")
    ax.bar([i + 0.2 for i in range(len(labels))], [counts[k]["maxout"] for k in labels], 0.4, label="Maxout, 2 pieces")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yscale("log")
    ax.set_ylabel("parameters")
    ax.legend(fontsize=7)
    return ClaimResult(
        measured={"parameter_counts": counts, "ratio": ratios},
        test="parameter count of Maxout(in, out, pieces=2) over Linear(in, out) for four layer sizes; holds if every ratio is exactly 2",
        holds=all(r == 2.0 for r in ratios.values()),
        figures=[fig],
    )
