"""Binary classification losses on a real-valued score ``s`` (a logit / decision value).

Labels follow the ±1 convention for the margin losses (the margin is ``y · s``) and torch's
{0, 1} (or probability) convention for the cross-entropy, so each function has the same
targets as its reference.

=====================  ====================================  =========================
loss                   per sample                            labels
=====================  ====================================  =========================
``zero_one_loss``      ``1[y · s <= 0]``                     ±1
``hinge_loss``         ``max(0, margin − y · s)``            ±1
``logistic_loss``      ``log(1 + exp(−y · s))``              ±1
``binary_cross_entropy``  ``−t log σ(s) − (1 − t) log(1 − σ(s))``  t in [0, 1]
=====================  ====================================  =========================

The logistic loss and the cross-entropy are the same function under ``t = (1 + y) / 2``; it is
the negative log-likelihood of a Bernoulli model whose log-odds are ``s``.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_float
from deepnotes.core.registry import LOSSES
from deepnotes.losses._common import check_pair, check_pm1, check_reduction, reduce


def zero_one_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Misclassification indicator: the prediction is ``+1`` when ``s > 0`` and ``−1`` otherwise.

    Parameters
    ----------
    input : Tensor[*]
        Scores ``s`` (any shape).
    target : Tensor[*]
        Labels in ``{−1, +1}``, the shape of ``input``.
    reduction : {"none", "mean", "sum"}
        ``"mean"`` is the error rate, ``"sum"`` the error count.

    Returns
    -------
    Tensor
        In ``input``'s dtype. It is a count, so it carries no gradient (it is piecewise constant).

    Examples
    --------
    >>> zero_one_loss(torch.tensor([2.0, -1.0, 0.0]), torch.tensor([1, 1, 1]))
    tensor(0.6667)
    """
    check_pair(input, target)
    check_pm1(target)
    reduction = check_reduction(reduction)
    # s = 0 is predicted negative, like sklearn's LogisticRegression.predict (decision > 0)
    pred = torch.where(input.detach() > 0, 1, -1)
    return reduce((pred != target).to(input.dtype), reduction)


def hinge_loss(
    input: torch.Tensor, target: torch.Tensor, margin: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Binary hinge loss ``max(0, margin − y · s)`` with labels ``y`` in ``{−1, +1}``.

    Parameters
    ----------
    input : Tensor[*]
        Scores ``s``.
    target : Tensor[*]
        Labels in ``{−1, +1}``, the shape of ``input``.
    margin : float
        ``Δ >= 0``; a correct sample with ``y · s >= Δ`` costs nothing.
    reduction : {"none", "mean", "sum"}

    Examples
    --------
    >>> hinge_loss(torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1, 1, 1]), reduction="none")
    tensor([0.0000, 0.5000, 2.0000])
    """
    check_pair(input, target)
    check_pm1(target)
    margin = check_float("margin", margin, min=0.0)
    reduction = check_reduction(reduction)
    return reduce(torch.relu(margin - target.to(input.dtype) * input), reduction)


def logistic_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Logistic loss ``log(1 + exp(−y · s))`` with labels ``y`` in ``{−1, +1}``.

    Computed as ``logaddexp(0, −y · s)``: finite for any finite score and with the exact
    gradient ``−y · σ(−y · s)`` (which stays ``−y`` for a confidently wrong score).

    Parameters
    ----------
    input : Tensor[*]
        Scores ``s``.
    target : Tensor[*]
        Labels in ``{−1, +1}``.
    reduction : {"none", "mean", "sum"}
    """
    check_pair(input, target)
    check_pm1(target)
    reduction = check_reduction(reduction)
    z = -target.to(input.dtype) * input
    return reduce(torch.logaddexp(torch.zeros_like(z), z), reduction)


def binary_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Binary cross-entropy on logits, ``softplus(s) − t · s``.

    The same function as ``F.binary_cross_entropy_with_logits``. It is written as
    ``logaddexp(0, s) − t · s`` so that it stays finite for ``|s|`` up to and beyond ``1e4`` and
    its gradient is exactly ``σ(s) − t``: a confidently wrong logit (``s = −1e4``, ``t = 1``) gets
    gradient ``−1`` — unlike BCE applied to ``σ(s)``, whose gradient vanishes there.

    Parameters
    ----------
    input : Tensor[*]
        Logits ``s``.
    target : Tensor[*]
        Targets ``t`` in ``[0, 1]`` (labels 0/1 or probabilities), the shape of ``input``.
    reduction : {"none", "mean", "sum"}

    Examples
    --------
    >>> binary_cross_entropy(torch.tensor([0.0]), torch.tensor([1.0]))
    tensor(0.6931)
    """
    check_pair(input, target)
    if bool(((target < 0) | (target > 1)).any()) or (
        target.is_floating_point() and bool(target.isnan().any())
    ):
        raise ValueError("target must hold values in [0, 1]")
    reduction = check_reduction(reduction)
    t = target.to(input.dtype)
    return reduce(torch.logaddexp(torch.zeros_like(input), input) - t * input, reduction)


@LOSSES.register("bce_with_logits")
class BCEWithLogitsLoss(nn.Module):
    """Module form of :func:`binary_cross_entropy` (logits, targets in [0, 1])."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy(input, target, self.reduction)


@LOSSES.register("hinge")
class HingeLoss(nn.Module):
    """Module form of :func:`hinge_loss` (scores, labels ±1)."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.margin = check_float("margin", margin, min=0.0)
        self.reduction = check_reduction(reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return hinge_loss(input, target, self.margin, self.reduction)


@LOSSES.register("logistic")
class LogisticLoss(nn.Module):
    """Module form of :func:`logistic_loss` (scores, labels ±1)."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return logistic_loss(input, target, self.reduction)
