"""The scalar autograd engine: forward + backward of a 10,000-node graph vs torch.autograd.

Both sides build the same chain of scalar operations (torch on 0-d float64 tensors) and
backpropagate through it. The ratio shows what a pure-Python scalar engine costs against torch's
C++ engine driven one scalar op at a time; it is reported, not targeted.
"""

from __future__ import annotations

import torch

from deepnotes.bench.api import BenchItem, bench_case


def _ours(n_steps: int) -> float:
    from deepnotes.autograd import Value

    x = Value(0.3)
    w = Value(0.7)
    y = x
    for _ in range(n_steps):
        y = (y * w + x).tanh()  # 3 nodes per step
    y.backward()
    return x.grad


def _torch(n_steps: int) -> float:
    x = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    y = x
    for _ in range(n_steps):
        y = torch.tanh(y * w + x)
    y.backward()
    return x.grad.item()


@bench_case("autograd_scalar_graph", reference="torch.autograd on 0-d float64 tensors", requires=("torch",))
def autograd_case(quick: bool) -> list[BenchItem]:
    steps = 3334  # 3 ops per step: ~10,000 nodes
    return [BenchItem(size="10,000 nodes", ours=lambda: _ours(steps), reference=lambda: _torch(steps), repeats=3 if quick else 7)]
