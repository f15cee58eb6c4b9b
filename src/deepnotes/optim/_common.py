"""Helpers shared by the optimizers: hyperparameter checks and gradient gathering.

The optimizers update every tensor of a parameter group with one multi-tensor call
(``torch._foreach_*``) per arithmetic step instead of a Python loop over tensors: the maths is
torch's per-tensor reference, the Python overhead is paid once per group rather than once per
tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from deepnotes.core.checks import check_float


def check_lr(lr: Any) -> float:
    """``lr >= 0`` (torch accepts 0: a frozen group)."""
    return check_float("lr", lr, min=0.0)


def check_eps(eps: Any) -> float:
    """``eps > 0``.

    torch accepts ``eps == 0``; we reject it because a coordinate whose gradient is exactly zero
    then divides 0 by 0 and the parameter becomes NaN.
    """
    return check_float("eps", eps, min=0.0, min_inclusive=False)


def check_betas(betas: Any) -> tuple[float, float]:
    """Two decay rates, each in ``[0, 1)``."""
    if not isinstance(betas, Sequence) or isinstance(betas, str):
        raise TypeError(f"betas must be a pair of floats, got {type(betas).__name__}")
    if len(betas) != 2:
        raise ValueError(f"betas must hold exactly 2 values, got {len(betas)}")
    return (
        check_float("betas[0]", betas[0], min=0.0, max=1.0, max_inclusive=False),
        check_float("betas[1]", betas[1], min=0.0, max=1.0, max_inclusive=False),
    )


def gather(group: dict, *, weight_decay: float = 0.0, maximize: bool = False):
    """The parameters of ``group`` that have a gradient, and their (decayed, signed) gradients.

    Returns ``(params, grads, raw)``: ``raw`` are the ``p.grad`` tensors themselves, ``grads`` is
    ``raw`` negated when maximizing and with ``weight_decay * p`` added (new tensors then, so the
    stored ``.grad`` is never modified, as in torch).
    """
    params: list[torch.Tensor] = []
    raw: list[torch.Tensor] = []
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise ValueError("grad: sparse gradients are not supported; use torch.optim.SparseAdam")
        params.append(p)
        raw.append(p.grad)
    grads = raw
    if maximize:
        grads = torch._foreach_neg(grads)
    if weight_decay != 0 and params:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    return params, grads, raw


# Elements per multi-tensor call. One call over a whole large group makes every arithmetic step
# stream all tensors through memory (and allocate every temporary at once); grouping tensors into
# chunks of about this size keeps a chunk's operands cache-resident from one step to the next.
CHUNK_ELEMENTS = 1 << 16


def chunks(tensors: list[torch.Tensor], budget: int = CHUNK_ELEMENTS) -> list[slice]:
    """Consecutive slices of ``tensors`` holding at most ``budget`` elements (or one tensor)."""
    out: list[slice] = []
    start, total = 0, 0
    for i, t in enumerate(tensors):
        n = t.numel()
        if i > start and total + n > budget:
            out.append(slice(start, i))
            start, total = i, 0
        total += n
    if start < len(tensors):
        out.append(slice(start, len(tensors)))
    return out


class GroupOptimizer(torch.optim.Optimizer):
    """``step()`` shared by our optimizers: closure, then one :meth:`_update` per parameter group.

    ``_update(group, params, grads)`` receives the group's parameters that have a gradient and
    their gradients as :func:`gather` prepares them (negated when maximizing, with the coupled
    weight decay added).
    """

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, _ = gather(group, weight_decay=group["weight_decay"], maximize=group["maximize"])
            if params:
                self._update(group, params, grads)
        return loss

    def _update(self, group: dict, params: list, grads: list) -> None:  # pragma: no cover
        raise NotImplementedError
