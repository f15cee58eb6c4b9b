"""Gradient descent with optional (heavy-ball or Nesterov) momentum.

Plain step::

    g = grad + weight_decay * p
    p = p - lr * g

Momentum keeps a velocity ``b`` (first step: ``b = g``)::

    b = momentum * b + (1 - dampening) * g
    p = p - lr * b                          # heavy ball
    p = p - lr * (g + momentum * b)         # Nesterov: look ahead along the velocity

This is the exact update of ``torch.optim.SGD`` (same argument names and defaults), written
with multi-tensor ops.

This class runs the update over many tensors at once (multi-tensor ops, the algebra rearranged
where it saves a pass); the same step for one tensor, as written above, is
:func:`deepnotes.optim.plain.sgd_step` (tested to agree).
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_float
from deepnotes.optim._common import GroupOptimizer, check_lr, chunks


class SGD(GroupOptimizer):
    """Stochastic gradient descent, twin of :class:`torch.optim.SGD`.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters or parameter groups.
    lr : float, default 1e-3
        Learning rate, ``>= 0``.
    momentum : float, default 0
        Velocity decay, ``>= 0``; 0 disables momentum.
    dampening : float, default 0
        The new gradient enters the velocity with weight ``1 - dampening``.
    weight_decay : float, default 0
        L2 penalty added to the gradient, ``>= 0``.
    nesterov : bool, default False
        Nesterov's look-ahead; needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Ascend instead of descend.

    Examples
    --------
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([1.0]))
    >>> opt = SGD([w], lr=0.1)
    >>> w.grad = torch.tensor([2.0])
    >>> opt.step()
    >>> round(w.item(), 6)
    0.8
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=check_lr(lr),
            momentum=check_float("momentum", momentum, min=0.0),
            dampening=check_float("dampening", dampening),
            weight_decay=check_float("weight_decay", weight_decay, min=0.0),
            nesterov=bool(nesterov),
            maximize=bool(maximize),
        )
        if nesterov and (defaults["momentum"] <= 0 or defaults["dampening"] != 0):
            raise ValueError("nesterov requires momentum > 0 and dampening == 0")
        super().__init__(params, defaults)

    def _update(self, group: dict, params: list, grads: list) -> None:
        """One SGD update of one parameter group."""
        momentum = group["momentum"]
        fused = group["dampening"] == 0
        bufs: list[torch.Tensor] = []
        stale: list[bool] = []  # velocity still holds the previous step's value
        if momentum != 0:
            for p, g in zip(params, grads):
                state = self.state[p]
                buf = state.get("momentum_buffer")
                stale.append(buf is not None)
                if buf is None:
                    # first step: the velocity starts at the gradient itself (torch's rule)
                    buf = state["momentum_buffer"] = g.detach().clone()
                bufs.append(buf)
        if momentum == 0:
            # a single pass per tensor: nothing to keep in cache between steps, so no chunks
            torch._foreach_add_(params, grads, alpha=-group["lr"])
            return
        for c in chunks(params):
            # b = momentum·b + (1 − dampening)·g, chunk by chunk right before the parameter
            # passes that read b, so gradient and velocity are still in cache
            for i in range(c.start, c.stop):
                if not stale[i]:
                    continue
                if fused:  # one pass (out= aliases b) instead of mul_ then add_
                    torch.add(grads[i], bufs[i], alpha=momentum, out=bufs[i])
                else:
                    bufs[i].mul_(momentum).add_(grads[i], alpha=1 - group["dampening"])
            if group["nesterov"]:  # p −= lr·(g + momentum·b)
                torch._foreach_add_(params[c], grads[c], alpha=-group["lr"])
                torch._foreach_add_(params[c], bufs[c], alpha=-group["lr"] * momentum)
            else:
                torch._foreach_add_(params[c], bufs[c], alpha=-group["lr"])


class Momentum(SGD):
    """SGD with momentum on by default (``momentum=0.9``); ``nesterov=True`` for Nesterov.

    Same update and arguments as :class:`SGD`; twin of ``torch.optim.SGD(momentum=...)``.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.9,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_float("momentum", momentum, min=0.0)
        if momentum == 0:
            raise ValueError("momentum must be > 0 for Momentum; use SGD for plain descent")
        super().__init__(
            params, lr, momentum, dampening, weight_decay, nesterov, maximize=maximize
        )
