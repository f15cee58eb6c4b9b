"""The IoU family: IoU, generalized (GIoU), distance (DIoU) and complete (CIoU) IoU.

For boxes A and B, C their smallest enclosing box, ρ the distance between their centres and c
the diagonal of C:

    IoU  = |A ∩ B| / |A ∪ B|
    GIoU = IoU − |C \\ (A ∪ B)| / |C|
    DIoU = IoU − ρ² / (c² + eps)
    CIoU = DIoU − α v,   v = 4/π² (atan(w_B/h_B) − atan(w_A/h_A))²,   α = v / (1 − IoU + v + eps)

(α is a constant for the gradient, as in the CIoU paper and torchvision.)

Two shapes of output, as torchvision and the losses need them:

- pairwise ``box_iou(boxes1 (N, 4), boxes2 (M, 4)) → (N, M)`` (torchvision's names, argument
  order and arithmetic);
- element-wise ``box_iou_paired(boxes1 (N, 4), boxes2 (N, 4)) → (N,)`` for losses.

Degenerate boxes: a ratio whose denominator is 0 is 0, never NaN. Two zero-area boxes have IoU 0
(torchvision returns NaN); if also their enclosing box has zero area, the GIoU penalty is 0.
``atan(w/h)`` is computed as ``atan2(w, h)``, equal for ``h > 0`` and ``0`` for a point box.

Example
-------
>>> import torch
>>> a = torch.tensor([[0., 0., 2., 2.]]); b = torch.tensor([[1., 1., 3., 3.]])
>>> box_iou(a, b)
tensor([[0.1429]])
>>> generalized_box_iou(a, b)  # 1/7 − (9 − 7)/9
tensor([[-0.0794]])
"""

from __future__ import annotations

import math

import torch

from deepnotes.core.checks import check_float
from deepnotes.detection._validate import check_boxes, safe_div, upcast


def _pairs(
    boxes1: torch.Tensor, boxes2: torch.Tensor, paired: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Broadcast views: ``(N, 1, 4)`` and ``(1, M, 4)`` for pairwise, unchanged when paired."""
    check_boxes("boxes1", boxes1)
    check_boxes("boxes2", boxes2)
    if paired:
        if boxes1.shape[0] != boxes2.shape[0]:
            raise ValueError(
                f"boxes1 and boxes2 must have the same number of boxes, got {boxes1.shape[0]} and {boxes2.shape[0]}"
            )
        return upcast(boxes1), upcast(boxes2)
    return upcast(boxes1)[:, None, :], upcast(boxes2)[None, :, :]


def _inter_union(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    lt = torch.max(a[..., :2], b[..., :2])
    rb = torch.min(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, area_a + area_b - inter


def _enclosing_wh(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt = torch.min(a[..., :2], b[..., :2])
    rb = torch.max(a[..., 2:], b[..., 2:])
    return (rb - lt).clamp(min=0)


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    inter, union = _inter_union(a, b)
    return safe_div(inter, union)


def _giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    inter, union = _inter_union(a, b)
    wh = _enclosing_wh(a, b)
    area_c = wh[..., 0] * wh[..., 1]
    return safe_div(inter, union) - safe_div(area_c - union, area_c)


def _diou_iou(a: torch.Tensor, b: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    iou = _iou(a, b)
    wh = _enclosing_wh(a, b)
    diag2 = wh[..., 0] ** 2 + wh[..., 1] ** 2 + eps
    dx = (a[..., 0] + a[..., 2]) / 2 - (b[..., 0] + b[..., 2]) / 2
    dy = (a[..., 1] + a[..., 3]) / 2 - (b[..., 1] + b[..., 3]) / 2
    return iou - safe_div(dx**2 + dy**2, diag2), iou


def _ciou(a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    diou, iou = _diou_iou(a, b, eps)
    v = aspect_consistency(a, b)
    with torch.no_grad():
        alpha = safe_div(v, 1 - iou + v + eps)
    return diou - alpha * v


def aspect_consistency(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """CIoU's ``v = 4/π² (atan(w_b/h_b) − atan(w_a/h_a))²`` for broadcastable boxes."""
    ang_a = torch.atan2(a[..., 2] - a[..., 0], a[..., 3] - a[..., 1])
    ang_b = torch.atan2(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1])
    return (4 / math.pi**2) * (ang_b - ang_a) ** 2


def aspect_consistency_of_sides(sa: torch.Tensor, sb: torch.Tensor) -> torch.Tensor:
    """:func:`aspect_consistency` of two equal-shape sets of boxes given by their sides ``(w, h)``."""
    # both sets' angles in one call, on contiguous widths and heights
    ang = torch.atan2(torch.stack([sa[..., 0], sb[..., 0]]), torch.stack([sa[..., 1], sb[..., 1]]))
    return (4 / math.pi**2) * (ang[1] - ang[0]) ** 2


def _eps(eps: float) -> float:
    return check_float("eps", eps, min=0.0)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU: ``boxes1 (Tensor[N, 4])``, ``boxes2 (Tensor[M, 4])`` (xyxy) → ``Tensor[N, M]``."""
    a, b = _pairs(boxes1, boxes2, paired=False)
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return _iou(a, b)
    return _iou_in_place(a, b)


def _iou_in_place(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """:func:`_iou` without autograd: one axis at a time and in place, the same roundings."""
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    w = torch.min(a[..., 2], b[..., 2]).sub_(torch.max(a[..., 0], b[..., 0])).clamp_(min=0)
    h = torch.min(a[..., 3], b[..., 3]).sub_(torch.max(a[..., 1], b[..., 1])).clamp_(min=0)
    inter = w.mul_(h)
    union = (area_a + area_b).sub_(inter)
    if not inter.is_floating_point():
        return safe_div(inter, union)
    return inter.div_(union).nan_to_num_(nan=0.0)


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU in ``[-1, 1]`` → ``Tensor[N, M]``."""
    return _giou(*_pairs(boxes1, boxes2, paired=False))


def distance_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Pairwise DIoU → ``Tensor[N, M]``."""
    return _diou_iou(*_pairs(boxes1, boxes2, paired=False), _eps(eps))[0]


def complete_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Pairwise CIoU → ``Tensor[N, M]`` (``boxes1`` plays the prediction, ``boxes2`` the target)."""
    return _ciou(*_pairs(boxes1, boxes2, paired=False), _eps(eps))


def box_iou_paired(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """IoU of ``boxes1[i]`` with ``boxes2[i]``: two ``Tensor[N, 4]`` → ``Tensor[N]``."""
    return _iou(*_pairs(boxes1, boxes2, paired=True))


def generalized_box_iou_paired(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Element-wise GIoU → ``Tensor[N]``."""
    return _giou(*_pairs(boxes1, boxes2, paired=True))


def distance_box_iou_paired(
    boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7
) -> torch.Tensor:
    """Element-wise DIoU → ``Tensor[N]``."""
    return _diou_iou(*_pairs(boxes1, boxes2, paired=True), _eps(eps))[0]


def complete_box_iou_paired(
    boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7
) -> torch.Tensor:
    """Element-wise CIoU → ``Tensor[N]``."""
    return _ciou(*_pairs(boxes1, boxes2, paired=True), _eps(eps))
