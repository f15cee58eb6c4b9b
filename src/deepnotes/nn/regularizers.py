"""Weight penalties (L1, L2, elastic net) and the max-norm constraint.

Penalties act on the *weights* — parameters with two or more dimensions — and leave biases and
normalization scales alone, the usual practice: a bias does not multiply an input, so shrinking it
does not reduce the model's sensitivity to the data.

    L1(w)          = λ Σ |w|
    L2(w)          = λ/2 Σ w²                 (gradient λ w: torch's ``weight_decay=λ`` for SGD)
    elastic_net(w) = λ (ρ Σ |w| + (1 - ρ)/2 Σ w²)     (ρ = ``l1_ratio``, as in scikit-learn)

The max-norm constraint rescales each unit's incoming weight vector (a row of a ``Linear`` weight,
one output channel of a conv kernel) to norm ``c`` whenever it exceeds ``c``; it is applied after
every optimizer step, not added to the loss.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from deepnotes.core.checks import check_float


def penalized_parameters(params: nn.Module | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """The weights a penalty applies to: tensors with ``dim() >= 2`` (biases are skipped)."""
    if isinstance(params, nn.Module):
        params = params.parameters()
    return [p for p in params if p.dim() >= 2]


def l1_penalty(params, weight: float) -> torch.Tensor:
    """``weight · Σ |w|`` over the weights of ``params`` (a module or an iterable of tensors)."""
    weight = check_float("weight", weight, min=0.0)
    ws = penalized_parameters(params)
    if not ws:
        return torch.zeros(())
    return weight * sum(w.abs().sum() for w in ws)


def l2_penalty(params, weight: float) -> torch.Tensor:
    """``weight/2 · Σ w²`` over the weights of ``params``."""
    weight = check_float("weight", weight, min=0.0)
    ws = penalized_parameters(params)
    if not ws:
        return torch.zeros(())
    return 0.5 * weight * sum(w.pow(2).sum() for w in ws)


def elastic_net_penalty(params, weight: float, l1_ratio: float = 0.5) -> torch.Tensor:
    """``weight · (ρ Σ|w| + (1-ρ)/2 Σ w²)`` with ``ρ = l1_ratio`` in [0, 1]."""
    weight = check_float("weight", weight, min=0.0)
    rho = check_float("l1_ratio", l1_ratio, min=0.0, max=1.0)
    return l1_penalty(params, weight * rho) + l2_penalty(params, weight * (1.0 - rho))


@torch.no_grad()
def add_penalty_grad_(params, l1: float = 0.0, l2: float = 0.0) -> None:
    """Add the penalties' (sub)gradient ``l1 · sign(w) + l2 · w`` to each weight's ``.grad``.

    Equal to back-propagating ``l1_penalty + l2_penalty`` (autograd's subgradient of ``|w|`` at
    0 is 0, as is ``sign(0)``) without building the penalty into the graph.
    """
    l1 = check_float("l1", l1, min=0.0)
    l2 = check_float("l2", l2, min=0.0)
    for w in penalized_parameters(params):
        if w.grad is None:
            continue
        if l1:
            w.grad.add_(torch.sign(w), alpha=l1)
        if l2:
            w.grad.add_(w, alpha=l2)


@torch.no_grad()
def max_norm_(params, max_norm: float, eps: float = 0.0) -> None:
    """Rescale, in place, every unit's incoming weights to L2 norm ``<= max_norm``.

    For a weight of shape ``(out, *)`` the norm is taken over all axes but the first. Rows within
    the bound are left bit-for-bit unchanged. ``eps`` is added to the norm in the divisor
    (``torch.renorm`` uses 1e-7).
    """
    c = check_float("max_norm", max_norm, min=0.0, min_inclusive=False)
    for w in penalized_parameters(params):
        norms = w.flatten(1).norm(dim=1)
        scale = torch.where(norms > c, c / (norms + eps), torch.ones_like(norms))
        w.mul_(scale.view(-1, *([1] * (w.dim() - 1))))
