"""Adam: momentum on the gradient plus RMSProp's scaling, both bias-corrected.

::

    m = beta1 * m + (1 - beta1) * g              # first moment
    v = beta2 * v + (1 - beta2) * g**2           # second moment (amsgrad: v_max = max(v_max, v))
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

The corrections ``1 - beta**t`` undo the pull toward the zero initial moments in early steps.
Twin of :class:`torch.optim.Adam` (L2 ``weight_decay`` added to the gradient, as torch does).

This class runs the update over many tensors at once (multi-tensor ops, the algebra rearranged
where it saves a pass); the same step for one tensor, as written above, is
:func:`deepnotes.optim.plain.adam_step` (tested to agree).
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_float
from deepnotes.optim._common import GroupOptimizer, check_betas, check_eps, check_lr, chunks


class Adam(GroupOptimizer):
    """Adam, twin of :class:`torch.optim.Adam`.

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the two moment averages, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to the corrected RMS; must be ``> 0``.
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    amsgrad : bool, default False
        Use the running maximum of ``v`` (never lets the step grow back).
    maximize : bool, default False

    Examples
    --------
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([1.0]))
    >>> opt = Adam([w], lr=0.1)
    >>> w.grad = torch.tensor([5.0])
    >>> opt.step()        # the first bias-corrected step has size lr whatever the gradient
    >>> round(w.item(), 4)
    0.9
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=check_lr(lr),
            betas=check_betas(betas),
            eps=check_eps(eps),
            weight_decay=check_float("weight_decay", weight_decay, min=0.0),
            amsgrad=bool(amsgrad),
            maximize=bool(maximize),
        )
        super().__init__(params, defaults)

    def _update(self, group: dict, params: list, grads: list) -> None:
        """One Adam update of one parameter group."""
        beta1, beta2 = group["betas"]
        amsgrad = group["amsgrad"]
        ms, vs, vmax, neg_step, eps_scaled = [], [], [], [], []
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            t = state["step"]
            ms.append(state["exp_avg"])
            vs.append(state["exp_avg_sq"])
            if amsgrad:
                vmax.append(state["max_exp_avg_sq"])
            # lr/c1 * m / (sqrt(v)/sqrt(c2) + eps) == lr*sqrt(c2)/c1 * m / (sqrt(v) + eps*sqrt(c2)):
            # the same update with one pass fewer over the parameters
            bc2_sqrt = (1 - beta2**t) ** 0.5
            neg_step.append(-group["lr"] * bc2_sqrt / (1 - beta1**t))
            eps_scaled.append(group["eps"] * bc2_sqrt)
        for c in chunks(params):
            g = grads[c]
            torch._foreach_lerp_(ms[c], g, 1 - beta1)
            torch._foreach_mul_(vs[c], beta2)
            torch._foreach_addcmul_(vs[c], g, g, 1 - beta2)
            if amsgrad:
                torch._foreach_maximum_(vmax[c], vs[c])
            denom = torch._foreach_sqrt(vmax[c] if amsgrad else vs[c])
            torch._foreach_add_(denom, eps_scaled[c])
            torch._foreach_addcdiv_(params[c], ms[c], denom, neg_step[c])
