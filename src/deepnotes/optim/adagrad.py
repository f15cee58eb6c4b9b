"""Adagrad: a per-coordinate step that shrinks with the accumulated squared gradients.

::

    s = s + g**2                                 # never decreases
    p = p - lr_t * g / (sqrt(s) + eps),   lr_t = lr / (1 + (t - 1) * lr_decay)

The effective step ``lr_t / (sqrt(s) + eps)`` can only shrink, which is why Adagrad slows down
on long runs (claim 3c). Twin of :class:`torch.optim.Adagrad`.

This class runs the update over many tensors at once (multi-tensor ops, the algebra rearranged
where it saves a pass); the same step for one tensor, as written above, is
:func:`deepnotes.optim.plain.adagrad_step` (tested to agree).
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_float
from deepnotes.optim._common import GroupOptimizer, check_eps, check_lr, chunks


class Adagrad(GroupOptimizer):
    """Adagrad, twin of :class:`torch.optim.Adagrad`.

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 1e-2
    lr_decay : float, default 0
        ``lr_t = lr / (1 + (t - 1) * lr_decay)``, ``>= 0``.
    weight_decay : float, default 0
    initial_accumulator_value : float, default 0
        Starting value of the squared-gradient sum ``s``, ``>= 0``.
    eps : float, default 1e-10
        Added to ``sqrt(s)``; must be ``> 0``.
    maximize : bool, default False
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=check_lr(lr),
            lr_decay=check_float("lr_decay", lr_decay, min=0.0),
            weight_decay=check_float("weight_decay", weight_decay, min=0.0),
            initial_accumulator_value=check_float(
                "initial_accumulator_value", initial_accumulator_value, min=0.0
            ),
            eps=check_eps(eps),
            maximize=bool(maximize),
        )
        super().__init__(params, defaults)

    def _update(self, group: dict, params: list, grads: list) -> None:
        """One Adagrad update of one parameter group."""
        sums, neg_lrs = [], []
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["sum"] = torch.full_like(
                    p, group["initial_accumulator_value"], memory_format=torch.preserve_format
                )
            state["step"] += 1
            sums.append(state["sum"])
            neg_lrs.append(-group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"]))
        for c in chunks(params):
            torch._foreach_addcmul_(sums[c], grads[c], grads[c], 1)
            std = torch._foreach_sqrt(sums[c])
            torch._foreach_add_(std, group["eps"])
            torch._foreach_addcdiv_(params[c], grads[c], std, neg_lrs[c])
