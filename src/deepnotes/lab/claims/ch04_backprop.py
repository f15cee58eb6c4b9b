"""Chapter 4 claim: the gate rules of backpropagation, and our scalar engine against torch."""

from __future__ import annotations

import operator
import random

import torch

from deepnotes.autograd import MLP, Value, vmax, vsum
from deepnotes.core.threads import single_threaded as one_thread
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.viz import new_figure

_UNARY = ("exp", "tanh", "sigmoid", "relu")
_BINARY = ("+", "-", "*", "/", "max")
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def _random_graph(rng: random.Random, n_inputs: int, n_ops: int):
    """The same random expression built with Values and with float64 torch scalars."""
    xs = [rng.uniform(-2, 2) for _ in range(n_inputs)]
    vals = [Value(x) for x in xs]
    tens = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    vp, tp = list(vals), list(tens)
    for _ in range(n_ops):
        i, j = rng.randrange(len(vp)), rng.randrange(len(vp))  # repeats allowed: reuse
        op = rng.choice(_UNARY + _BINARY)
        a, b = vp[i], vp[j]
        if (op == "/" and abs(b.data) < 0.2) or (op == "exp" and a.data > 3) or (op == "*" and abs(a.data * b.data) > 50):
            op = "+"
        if op in _UNARY:
            vp.append(getattr(a, op)())
            tp.append(getattr(torch, op)(tp[i]))
        elif op == "max":
            vp.append(vmax(a, b))
            tp.append(torch.maximum(tp[i], tp[j]))
        else:
            vp.append(_ARITH[op](a, b))
            tp.append(_ARITH[op](tp[i], tp[j]))
    out_v, out_t = vsum(vp[-3:]), sum(tp[-3:])
    out_v.backward()
    out_t.backward()
    ours = [v.grad for v in vals] + [out_v.data]
    ref = [0.0 if t.grad is None else t.grad.item() for t in tens] + [out_t.item()]
    return ours, ref


def _gate_violations(rng: random.Random, n: int) -> dict[str, int]:
    bad = {"add": 0, "max": 0, "multiply": 0, "reuse": 0}
    for _ in range(n):
        a, b, up = rng.uniform(-5, 5), rng.uniform(-5, 5), rng.uniform(-3, 3)
        x, y = Value(a), Value(b)
        ((x + y) * up).backward()
        bad["add"] += not (x.grad == up and y.grad == up)
        x, y = Value(a), Value(b)
        (vmax(x, y) * up).backward()
        win, lose = (x, y) if a > b else (y, x)
        bad["max"] += not (win.grad == up and lose.grad == 0.0)
        x, y = Value(a), Value(b)
        ((x * y) * up).backward()
        bad["multiply"] += not (x.grad == b * up and y.grad == a * up)
        x = Value(a)
        (x * b + x * up).backward()  # x used twice
        bad["reuse"] += not (x.grad == b + up)
    return bad


@claim("4a", title="Gate rules hold, and the scalar engine's gradients equal torch.autograd's", topics=("4.1", "4.2"),
    source='notes 78-85',
    statement='Backpropagation by hand: draw the graph, compute forward, take local derivatives and chain them. An add node hands its gradient to every branch, a max node only to the branch that won, a multiply node scales it, and a node feeding several nodes sums their gradients.')
@one_thread
def gate_rules(quick: bool, seed: int) -> ClaimResult:
    rng = random.Random(seed)
    n_graphs = 60 if quick else 600
    violations = _gate_violations(rng, 500 if quick else 5000)
    ours, ref = [], []
    for _ in range(n_graphs):
        o, r = _random_graph(rng, rng.randint(1, 4), rng.randint(2, 30))
        ours += o
        ref += r
    o, r = torch.tensor(ours, dtype=torch.float64), torch.tensor(ref, dtype=torch.float64)
    # error in units of the tolerance |o - r| <= 1e-10 (1 + |r|): near-zero gradients produced by
    # cancellation are compared absolutely, large ones relatively
    rel_graph = ((o - r).abs() / (1e-10 * (1 + r.abs()))).max().item()
    # an MLP: compare every parameter gradient with the same network in torch
    net = MLP(4, [8, 8, 1], activation="tanh", seed=seed)
    lins = []
    for layer in net.layers:
        lin = torch.nn.Linear(len(layer.neurons[0].w), len(layer.neurons)).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor([[w.data for w in nn.w] for nn in layer.neurons], dtype=torch.float64))
            lin.bias.copy_(torch.tensor([nn.b.data for nn in layer.neurons], dtype=torch.float64))
        lins.append(lin)
    x = [rng.uniform(-1, 1) for _ in range(4)]
    net(x)[0].backward()
    h = torch.tensor(x, dtype=torch.float64)
    for k, lin in enumerate(lins):
        h = lin(h)
        if k < len(lins) - 1:
            h = torch.tanh(h)
    h.sum().backward()
    mo = torch.tensor([p.grad for p in net.parameters()], dtype=torch.float64)
    # parameters() lists each neuron's weights then its bias; reorder torch's to match
    mr = torch.cat([torch.cat([lin.weight.grad, lin.bias.grad.unsqueeze(1)], 1).flatten() for lin in lins])
    rel_mlp = ((mo - mr).abs() / (1e-10 * (1 + mr.abs()))).max().item()
    fig, axes = new_figure(2)
    n_checks = 500 if quick else 5000
    names = list(violations)
    axes[0].bar(names, [n_checks - violations[k] for k in names], color="tab:green", label="rule held")
    axes[0].bar(names, list(violations.values()), bottom=[n_checks - violations[k] for k in names],
                color="tab:red", label="rule violated")
    for i, k in enumerate(names):
        axes[0].annotate(f"{violations[k]} violations", (i, n_checks), textcoords="offset points", xytext=(0, 3),
                         ha="center", fontsize=7)
    axes[0].set(ylabel="random (a, b, upstream) triples", title="gate rules", ylim=(0, n_checks * 1.15))
    axes[0].legend(fontsize=7, loc="lower right")
    axes[1].scatter(r.numpy(), o.numpy(), s=4, label="random graphs")
    axes[1].scatter(mr.numpy(), mo.numpy(), s=6, label="MLP parameters")
    axes[1].set_xlabel("torch.autograd")
    axes[1].set_ylabel("our engine")
    axes[1].legend(fontsize=7)
    return ClaimResult(
        measured={
            "gate_rule_violations": violations,
            "random_graphs": n_graphs,
            "max_error_in_tolerance_units_random_graphs": rel_graph,
            "max_error_in_tolerance_units_mlp": rel_mlp,
        },
        test=(
            "random (a, b, upstream) triples: add must pass the upstream gradient to both inputs, max only "
            "to the larger, multiply scale it by the other input and a reused value sum its gradients, "
            "with zero violations; on random expression graphs and a 4-8-8-1 tanh MLP, values and "
            "gradients must match torch.autograd (float64) within |ours - torch| <= 1e-10 (1 + |torch|)"
        ),
        holds=sum(violations.values()) == 0 and rel_graph <= 1 and rel_mlp <= 1,
        figures=[fig],
    )
