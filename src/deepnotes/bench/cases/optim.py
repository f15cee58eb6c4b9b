"""One ``step()`` of each optimizer against its ``torch.optim`` twin (torch's CPU default loop).

The model is an MLP of 25 linear layers (50 parameter tensors, about 5M parameters; 1.3M in
quick mode) with fixed random gradients. torch's default on CPU is its per-tensor loop
(``foreach=False``); ours issues one multi-tensor call per arithmetic step for the whole group.
"""

from __future__ import annotations

import copy

import torch

from deepnotes.bench.api import BenchItem, bench_case

_TWINS = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9}),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "adagrad": ("Adagrad", {}),
    "rmsprop": ("RMSprop", {}),
    "adam": ("Adam", {}),
}


def _mlp(width: int, layers: int = 25) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)])
    for p in model.parameters():
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        p.grad = torch.randn(p.shape, generator=g)
    return model


def _items(name: str, quick: bool) -> list[BenchItem]:
    from deepnotes.core.registry import OPTIMIZERS
    from deepnotes.optim import __name__ as _  # noqa: F401  (registers the optimizers)

    width = 224 if quick else 448
    ours_model = _mlp(width)
    ref_model = copy.deepcopy(ours_model)
    for a, b in zip(ours_model.parameters(), ref_model.parameters()):
        b.grad = a.grad.clone()
    n = sum(p.numel() for p in ours_model.parameters())
    cls_name, kw = _TWINS[name]
    ours = OPTIMIZERS.create(name, ours_model.parameters(), lr=1e-3)
    ref = getattr(torch.optim, cls_name)(ref_model.parameters(), lr=1e-3, foreach=False, **kw)
    return [BenchItem(size=f"{n / 1e6:.1f}M params, 50 tensors", ours=ours.step, reference=ref.step)]


def _register(name: str) -> None:
    cls_name, kw = _TWINS[name]
    args = ", ".join(f"{k}={v}" for k, v in kw.items())

    @bench_case(
        f"optim_{name}",
        reference=f"torch.optim.{cls_name}({args}{', ' if args else ''}foreach=False)",
        requires=("torch",),
        target=1.0,
        description=f"one {name} step on a 50-tensor MLP vs torch's per-tensor loop",
    )
    def case(quick: bool) -> list[BenchItem]:
        return _items(name, quick)


for _name in _TWINS:
    _register(_name)
