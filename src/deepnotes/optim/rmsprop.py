"""RMSProp: divide by a running root-mean-square of the gradients instead of Adagrad's sum.

::

    v = alpha * v + (1 - alpha) * g**2           # forgets old gradients
    d = sqrt(v - m**2) + eps   (centered, m = running mean of g)   else   sqrt(v) + eps
    p = p - lr * g / d                           (or through a momentum buffer b = mu*b + g/d)

Because ``v`` is an exponential average, the effective step recovers when gradients shrink,
unlike Adagrad's. Twin of :class:`torch.optim.RMSprop`.

This class runs the update over many tensors at once (multi-tensor ops, the algebra rearranged
where it saves a pass); the same step for one tensor, as written above, is
:func:`deepnotes.optim.plain.rmsprop_step` (tested to agree).
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_float
from deepnotes.optim._common import GroupOptimizer, check_eps, check_lr, chunks


class RMSProp(GroupOptimizer):
    """RMSProp, twin of :class:`torch.optim.RMSprop`.

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant of the squared-gradient average, in ``[0, 1]``.
    eps : float, default 1e-8
        Must be ``> 0``.
    weight_decay : float, default 0
    momentum : float, default 0
        ``>= 0``; a momentum buffer on the normalized gradient when positive.
    centered : bool, default False
        Normalize by the estimated standard deviation instead of the raw RMS.
    maximize : bool, default False
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=check_lr(lr),
            alpha=check_float("alpha", alpha, min=0.0, max=1.0),
            eps=check_eps(eps),
            weight_decay=check_float("weight_decay", weight_decay, min=0.0),
            momentum=check_float("momentum", momentum, min=0.0),
            centered=bool(centered),
            maximize=bool(maximize),
        )
        super().__init__(params, defaults)

    def _update(self, group: dict, params: list, grads: list) -> None:
        """One RMSProp update of one parameter group."""
        alpha, momentum, centered = group["alpha"], group["momentum"], group["centered"]
        sq, gavg, bufs = [], [], []
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if centered and "grad_avg" not in state:
                state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            sq.append(state["square_avg"])
            if momentum > 0:
                bufs.append(state["momentum_buffer"])
            if centered:
                gavg.append(state["grad_avg"])
        for c in chunks(params):
            g = grads[c]
            torch._foreach_mul_(sq[c], alpha)
            torch._foreach_addcmul_(sq[c], g, g, 1 - alpha)
            if centered:
                torch._foreach_lerp_(gavg[c], g, 1 - alpha)
                avg = torch._foreach_addcmul(sq[c], gavg[c], gavg[c], -1)
                torch._foreach_sqrt_(avg)
            else:
                avg = torch._foreach_sqrt(sq[c])
            torch._foreach_add_(avg, group["eps"])
            if momentum > 0:
                torch._foreach_mul_(bufs[c], momentum)
                torch._foreach_addcdiv_(bufs[c], g, avg)
                torch._foreach_add_(params[c], bufs[c], alpha=-group["lr"])
            else:
                torch._foreach_addcdiv_(params[c], g, avg, value=-group["lr"])
