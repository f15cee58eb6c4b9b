"""Multi-class losses on a score matrix ``input`` (N, C) and class indices ``target`` (N,).

* :func:`multiclass_svm_loss` — the multi-class hinge (Weston–Watkins / CS231n form):
  ``L_i = Σ_{j ≠ y_i} max(0, s_j − s_{y_i} + Δ)``. ``F.multi_margin_loss`` computes the same sum
  divided by ``C``.
* :func:`softmax_cross_entropy` — ``−log softmax(s)_y`` computed as ``logsumexp(s) − s_y``.
* :func:`one_vs_rest_loss` — C independent binary cross-entropies, class ``c`` against the rest;
  the heads are not coupled, so their sigmoids need not sum to one (softmax's always do).
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_float
from deepnotes.core.registry import LOSSES
from deepnotes.losses._common import check_class_target, check_reduction, reduce


def multiclass_svm_loss(
    input: torch.Tensor, target: torch.Tensor, margin: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Multi-class SVM loss, summed over the wrong classes and averaged over samples.

    Parameters
    ----------
    input : Tensor[N, C]
        Class scores.
    target : Tensor[N]
        Integer class indices in ``[0, C)``.
    margin : float
        ``Δ >= 0``.
    reduction : {"none", "mean", "sum"}
        ``"none"`` gives the per-sample losses ``Tensor[N]``.

    Examples
    --------
    >>> s = torch.tensor([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    >>> multiclass_svm_loss(s, torch.tensor([0, 1, 2]), reduction="none")
    tensor([ 2.9000,  0.0000, 12.9000])
    """
    check_class_target(input, target)
    margin = check_float("margin", margin, min=0.0)
    reduction = check_reduction(reduction)
    correct = input.gather(1, target[:, None])
    margins = torch.relu(input - correct + margin)
    # the j = y term would always add exactly Δ; mask it out instead of subtracting Δ
    # so that its (zero) contribution does not perturb the gradient of s_y
    own = torch.zeros_like(margins, dtype=torch.bool).scatter_(1, target[:, None], True)
    return reduce(margins.masked_fill(own, 0.0).sum(dim=1), reduction)


def softmax_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Softmax cross-entropy ``logsumexp(s) − s_y`` (the same function as ``F.cross_entropy``).

    Log-sum-exp subtracts the row maximum before exponentiating, so logits of any size are safe;
    the naive ``−log(exp(s_y) / Σ exp(s_j))`` overflows to NaN in float32 near ``s ≈ 89``.

    Parameters
    ----------
    input : Tensor[N, C]
        Logits.
    target : Tensor[N]
        Integer class indices in ``[0, C)``.
    reduction : {"none", "mean", "sum"}

    Examples
    --------
    >>> softmax_cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]))  # ln 4
    tensor(1.3863)
    """
    check_class_target(input, target)
    reduction = check_reduction(reduction)
    loss = torch.logsumexp(input, dim=1) - input.gather(1, target[:, None]).squeeze(1)
    return reduce(loss, reduction)


def one_vs_rest_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Sum over classes of the binary cross-entropy of class ``c`` versus the rest.

    ``L_i = Σ_c [softplus(s_c) − 1[c = y_i] · s_c]`` — equal to
    ``F.binary_cross_entropy_with_logits(s, one_hot(y), reduction="none").sum(1)``.

    Parameters
    ----------
    input : Tensor[N, C]
        One logit per class.
    target : Tensor[N]
        Integer class indices in ``[0, C)``.
    reduction : {"none", "mean", "sum"}
        Over samples; ``"none"`` gives ``Tensor[N]``.
    """
    check_class_target(input, target)
    reduction = check_reduction(reduction)
    per_class = torch.logaddexp(torch.zeros_like(input), input)
    loss = per_class.sum(dim=1) - input.gather(1, target[:, None]).squeeze(1)
    return reduce(loss, reduction)


@LOSSES.register("multiclass_svm")
class MulticlassSVMLoss(nn.Module):
    """Module form of :func:`multiclass_svm_loss`."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.margin = check_float("margin", margin, min=0.0)
        self.reduction = check_reduction(reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return multiclass_svm_loss(input, target, self.margin, self.reduction)


@LOSSES.register("cross_entropy")
class SoftmaxCrossEntropyLoss(nn.Module):
    """Module form of :func:`softmax_cross_entropy`."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return softmax_cross_entropy(input, target, self.reduction)


@LOSSES.register("one_vs_rest")
class OneVsRestLoss(nn.Module):
    """Module form of :func:`one_vs_rest_loss`."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return one_vs_rest_loss(input, target, self.reduction)
