"""Box regression losses, the focal loss and the repulsion loss.

With IoU, DIoU and CIoU as in :mod:`deepnotes.detection.iou` (here with torchvision's ``eps``
in every denominator, ``IoU = |A∩B| / (|A∪B| + eps)``), ``C`` the enclosing box, ``ρ`` the
centre distance and ``c`` the diagonal of ``C``:

    IoU loss   = 1 − IoU
    GIoU loss  = 1 − IoU + |C \\ (A∪B)| / (|C| + eps)
    DIoU loss  = 1 − IoU + ρ² / (c² + eps)
    CIoU loss  = DIoU loss + α v           (v, α as in CIoU; α without gradient)
    EIoU loss  = DIoU loss + (w − w_gt)² / (C_w² + eps) + (h − h_gt)² / (C_h² + eps)

The IoU loss is flat (zero gradient) while the boxes do not overlap; GIoU/DIoU/EIoU add a
penalty that still pulls disjoint boxes together. Boxes are ``(N, 4)`` (or ``(4,)``) xyxy,
``reduction`` is ``'none' | 'mean' | 'sum'`` (mean of nothing is 0, as in torchvision).

Smooth L1 as Fast R-CNN uses it: summed over the four deltas of a box,
``Σ_k smoothL1(t_k − t*_k)``, with ``smoothL1(d) = 0.5 d²/β`` for ``|d| < β`` and
``|d| − 0.5 β`` beyond.

The focal loss (RetinaNet) down-weights easy examples: ``FL = −α_t (1 − p_t)^γ log p_t``.

The repulsion loss (Wang et al., 2018) for crowds: attraction to the assigned ground truth,
plus repulsion from the *other* ground truth that overlaps most (RepGT, on IoG) and from
predictions assigned to other objects (RepBox, on IoU), both through ``Smooth_ln``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from deepnotes.core.checks import check_float, check_tensor
from deepnotes.detection._validate import check_boxes, checked_sides, upcast
from deepnotes.detection.iou import aspect_consistency_of_sides
from deepnotes.losses._common import check_reduction
from deepnotes.losses.regression import smooth_l1_loss


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    return loss.sum() if reduction == "sum" else loss


def _prepare(boxes1, boxes2, reduction, eps):
    """Checked, widened boxes and their sides ``(w, h)``."""
    sides1 = checked_sides("boxes1", boxes1, allow_1d=True)
    sides2 = checked_sides("boxes2", boxes2, allow_1d=True)
    if boxes1.shape != boxes2.shape:
        raise ValueError(
            f"boxes1 and boxes2 must have the same shape, got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    check_reduction(reduction)
    check_float("eps", eps, min=0.0)
    up = lambda t: t if t.dtype in (torch.float32, torch.float64) else t.float()  # noqa: E731
    return up(boxes1), up(boxes2), up(sides1), up(sides2)


def _iou_union(a: torch.Tensor, b: torch.Tensor, sa: torch.Tensor, sb: torch.Tensor, eps: float):
    """IoU (with eps) and the union, in torchvision's arithmetic (``sa``, ``sb``: the sides)."""
    x1, y1, x2, y2 = a.unbind(-1)
    x1g, y1g, x2g, y2g = b.unbind(-1)
    iw = (torch.min(x2, x2g) - torch.max(x1, x1g)).clamp_(min=0)
    ih = (torch.min(y2, y2g) - torch.max(y1, y1g)).clamp_(min=0)
    inter = iw * ih
    union = sa[..., 0] * sa[..., 1] + sb[..., 0] * sb[..., 1] - inter
    return inter / (union + eps), union


def _enclosing(a: torch.Tensor, b: torch.Tensor):
    """Width and height of the smallest box enclosing both."""
    return (
        torch.max(a[..., 2], b[..., 2]) - torch.min(a[..., 0], b[..., 0]),
        torch.max(a[..., 3], b[..., 3]) - torch.min(a[..., 1], b[..., 1]),
    )


def _centre_distance2(a: torch.Tensor, b: torch.Tensor):
    dx = (a[..., 2] + a[..., 0]) / 2 - (b[..., 0] + b[..., 2]) / 2
    dy = (a[..., 3] + a[..., 1]) / 2 - (b[..., 1] + b[..., 3]) / 2
    return dx**2 + dy**2


def iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """``1 − IoU`` element-wise."""
    a, b, sa, sb = _prepare(boxes1, boxes2, reduction, eps)
    return _reduce(1 - _iou_union(a, b, sa, sb, eps)[0], reduction)


def generalized_box_iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """``1 − GIoU`` element-wise (torchvision's ``generalized_box_iou_loss``)."""
    a, b, sa, sb = _prepare(boxes1, boxes2, reduction, eps)
    iou, union = _iou_union(a, b, sa, sb, eps)
    cw, ch = _enclosing(a, b)
    area_c = cw * ch
    gap = (area_c - union).div_(area_c + eps)  # the share of C that neither box covers
    return _reduce(gap.sub_(iou).add_(1), reduction)  # 1 − (IoU − gap), on gap's storage


def _diou_loss(a, b, sa, sb, eps):
    iou, _ = _iou_union(a, b, sa, sb, eps)
    cw, ch = _enclosing(a, b)
    return 1 - iou + _centre_distance2(a, b) / (cw**2 + ch**2 + eps), iou, cw, ch


def distance_box_iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """``1 − DIoU`` element-wise (torchvision's ``distance_box_iou_loss``)."""
    a, b, sa, sb = _prepare(boxes1, boxes2, reduction, eps)
    return _reduce(_diou_loss(a, b, sa, sb, eps)[0], reduction)


def complete_box_iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """``1 − CIoU`` element-wise (torchvision's ``complete_box_iou_loss``; its DIoU part uses
    the default ``eps`` whatever ``eps`` is passed, and so does this)."""
    a, b, sa, sb = _prepare(boxes1, boxes2, reduction, eps)
    loss, iou, _, _ = _diou_loss(a, b, sa, sb, 1e-7)
    v = aspect_consistency_of_sides(sa, sb)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _reduce(loss + alpha * v, reduction)


def eiou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """EIoU: the DIoU loss plus the width and height gaps over the enclosing box's sides."""
    a, b, sa, sb = _prepare(boxes1, boxes2, reduction, eps)
    loss, _, cw, ch = _diou_loss(a, b, sa, sb, eps)
    dw, dh = (sa - sb).unbind(-1)
    return _reduce(loss + dw**2 / (cw**2 + eps) + dh**2 / (ch**2 + eps), reduction)


def smooth_l1_box_loss(
    input: torch.Tensor, target: torch.Tensor, beta: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Fast R-CNN's box loss: smooth L1 summed over the 4 deltas of each box, then reduced over boxes.

    ``input``, ``target``: ``Tensor[N, 4]`` deltas (see :class:`~deepnotes.detection.BoxCoder`).
    """
    check_tensor("input", input, ndim=2, floating=True, finite=True)
    check_tensor("target", target, ndim=2, finite=True)
    if input.shape[1] != 4 or target.shape != input.shape:
        raise ValueError(
            f"input and target must both have shape (N, 4), got {tuple(input.shape)} and {tuple(target.shape)}"
        )
    check_reduction(reduction)
    per_box = smooth_l1_loss(input, target, reduction="none", beta=beta).sum(dim=1)
    return _reduce(per_box, reduction)


def sigmoid_focal_loss(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2,
    reduction: str = "none",
) -> torch.Tensor:
    """RetinaNet's focal loss on logits (torchvision's ``sigmoid_focal_loss``).

    ``p_t = p`` for positives and ``1 − p`` for negatives; the loss is the binary cross-entropy
    ``−log p_t`` times ``(1 − p_t)^γ`` and, for ``α >= 0``, times ``α`` (positives) or
    ``1 − α`` (negatives). A negative ``α`` switches the class weighting off, so ``γ = 0,
    α < 0`` is exactly the binary cross-entropy with logits.
    """
    check_tensor("inputs", inputs, floating=True, finite=True)
    check_tensor("targets", targets, finite=True)
    if targets.shape != inputs.shape:
        raise ValueError(
            f"targets must have the shape of inputs {tuple(inputs.shape)}, got {tuple(targets.shape)}"
        )
    alpha = check_float("alpha", alpha, max=1.0)
    gamma = check_float("gamma", gamma, min=0.0)
    check_reduction(reduction)
    targets = targets.to(inputs.dtype)
    p = torch.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")  # −log p_t, stable
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction)


def smooth_ln(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``−ln(1 − x)`` for ``x <= σ``, continued linearly beyond: ``(x − σ)/(1 − σ) − ln(1 − σ)``.

    ``x`` is an overlap in ``[0, 1]``; it is clamped below 1 so that ``σ = 1`` stays finite.
    """
    x = x.clamp(max=1 - 1e-6)
    log_part = -torch.log1p(-torch.where(x <= sigma, x, torch.zeros_like(x)))
    if sigma >= 1:
        return log_part
    lin = (x - sigma) / (1 - sigma) - math.log1p(-sigma)
    return torch.where(x <= sigma, log_part, lin)


def repulsion_loss(
    pred_boxes: torch.Tensor,
    gt_boxes: torch.Tensor,
    assigned: torch.Tensor,
    alpha: float = 0.5,
    beta: float = 0.5,
    sigma_gt: float = 1.0,
    sigma_box: float = 0.0,
) -> torch.Tensor:
    """Repulsion loss ``L_Attr + α L_RepGT + β L_RepBox`` for ``pred_boxes (Tensor[N, 4])``
    assigned to ``gt_boxes[assigned] (Tensor[M, 4])``.

    - ``L_Attr``: mean smooth L1 (β = 1) between each prediction and its assigned box, summed
      over the four coordinates;
    - ``L_RepGT``: mean over predictions of ``Smooth_ln(IoG(P, G_rep), σ_gt)``, ``G_rep`` the
      non-assigned ground truth with the highest IoU with P, and
      ``IoG = |P ∩ G| / |G|`` (0 when there is no other ground truth);
    - ``L_RepBox``: ``Σ Smooth_ln(IoU(P_i, P_j), σ_box)`` over pairs ``i < j`` assigned to
      different boxes, divided by the number of such pairs that overlap (plus 1e-9).

    The defaults ``σ_gt = 1, σ_box = 0`` are the paper's best. Degenerate (zero-area) boxes
    contribute overlaps of 0.
    """
    check_boxes("pred_boxes", pred_boxes)
    check_boxes("gt_boxes", gt_boxes)
    if not pred_boxes.is_floating_point():
        raise TypeError(f"pred_boxes must be a floating-point tensor, got dtype {pred_boxes.dtype}")
    check_tensor("assigned", assigned, ndim=1)
    if assigned.is_floating_point() or assigned.shape[0] != pred_boxes.shape[0]:
        raise ValueError(
            f"assigned must be an integer tensor with one entry per prediction ({pred_boxes.shape[0]})"
        )
    if gt_boxes.shape[0] == 0 or bool(((assigned < 0) | (assigned >= gt_boxes.shape[0])).any()):
        raise ValueError(f"assigned must index gt_boxes (0..{gt_boxes.shape[0] - 1})")
    alpha, beta = check_float("alpha", alpha, min=0.0), check_float("beta", beta, min=0.0)
    sigma_gt = check_float("sigma_gt", sigma_gt, min=0.0, max=1.0)
    sigma_box = check_float("sigma_box", sigma_box, min=0.0, max=1.0, max_inclusive=False)
    if pred_boxes.shape[0] == 0:
        return pred_boxes.sum() * 0.0
    p, g = pred_boxes, upcast(gt_boxes).to(pred_boxes.dtype)
    attr = smooth_l1_loss(p, g[assigned], reduction="none", beta=1.0).sum(1).mean()

    def inter(a, b):
        wh = (
            torch.min(a[:, None, 2:], b[None, :, 2:]) - torch.max(a[:, None, :2], b[None, :, :2])
        ).clamp(min=0)
        return wh[..., 0] * wh[..., 1]

    def area(a):
        return (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])

    def ratio(num, den):
        return torch.where(
            den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num)
        )

    n = p.shape[0]
    own = torch.nn.functional.one_hot(assigned, g.shape[0]).bool()  # (N, M)
    i_pg = inter(p, g)
    iou_pg = ratio(i_pg, area(p)[:, None] + area(g)[None, :] - i_pg).masked_fill(own, -1.0)
    rep = iou_pg.argmax(1)
    has_other = (~own).any(1)
    iog = ratio(i_pg[torch.arange(n), rep], area(g)[rep])
    rep_gt = torch.where(has_other, smooth_ln(iog, sigma_gt), torch.zeros_like(iog)).mean()

    i_pp = inter(p, p)
    iou_pp = ratio(i_pp, area(p)[:, None] + area(p)[None, :] - i_pp)
    pairs = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1) & (
        assigned[:, None] != assigned[None, :]
    )
    vals = smooth_ln(iou_pp[pairs], sigma_box)
    rep_box = vals.sum() / ((iou_pp[pairs] > 0).sum() + 1e-9)
    return attr + alpha * rep_gt + beta * rep_box
