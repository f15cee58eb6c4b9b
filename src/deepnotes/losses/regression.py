"""Regression losses on predictions ``input`` and targets of the same shape.

=================  ==========================================================  ===============
loss               per element (``d = input − target``)                        reference
=================  ==========================================================  ===============
``squared_loss``   ``d²``                                                      ``F.mse_loss``
``absolute_loss``  ``|d|``                                                     ``F.l1_loss``
``smooth_l1_loss`` ``d² / (2β)`` if ``|d| < β`` else ``|d| − β/2``             ``F.smooth_l1_loss``
=================  ==========================================================  ===============

Squared loss is the Gaussian negative log-likelihood (the mean is its minimiser); absolute loss
is the Laplace one (the median) and so tolerates outliers; Smooth L1 is quadratic near zero and
linear in the tails.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_float
from deepnotes.core.registry import LOSSES
from deepnotes.losses._common import check_pair, check_reduction, reduce


def _diff(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    check_pair(input, target)
    return input - target.to(input.dtype)


def squared_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Squared error ``(input − target)²``; ``reduction="mean"`` is the MSE.

    Parameters
    ----------
    input, target : Tensor[*]
        Same shape (no broadcasting).
    reduction : {"none", "mean", "sum"}

    Examples
    --------
    >>> squared_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]))
    tensor(5.)
    """
    reduction = check_reduction(reduction)
    return reduce(_diff(input, target).square(), reduction)


def absolute_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Absolute error ``|input − target|``; gradient ``sign(d)`` (0 at ``d = 0``, like torch).

    Parameters
    ----------
    input, target : Tensor[*]
        Same shape.
    reduction : {"none", "mean", "sum"}
    """
    reduction = check_reduction(reduction)
    return reduce(_diff(input, target).abs(), reduction)


def smooth_l1_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", beta: float = 1.0
) -> torch.Tensor:
    """Smooth L1 (Huber divided by ``β``): quadratic for ``|d| < β``, linear beyond.

    Parameters
    ----------
    input, target : Tensor[*]
        Same shape.
    reduction : {"none", "mean", "sum"}
    beta : float
        ``β >= 0``; ``β = 0`` is exactly the absolute loss (as in torch).
    """
    reduction = check_reduction(reduction)
    beta = check_float("beta", beta, min=0.0)
    d = _diff(input, target)
    a = d.abs()
    if beta == 0.0:
        # the quadratic branch would divide by zero (and poison the gradient through where)
        return reduce(a, reduction)
    return reduce(torch.where(a < beta, 0.5 * d.square() / beta, a - 0.5 * beta), reduction)


@LOSSES.register("mse")
class SquaredLoss(nn.Module):
    """Module form of :func:`squared_loss`."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return squared_loss(input, target, self.reduction)


@LOSSES.register("l1")
class AbsoluteLoss(nn.Module):
    """Module form of :func:`absolute_loss`."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return absolute_loss(input, target, self.reduction)


@LOSSES.register("smooth_l1")
class SmoothL1Loss(nn.Module):
    """Module form of :func:`smooth_l1_loss`."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.beta = check_float("beta", beta, min=0.0)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return smooth_l1_loss(input, target, self.reduction, self.beta)
