"""Soft-NMS (Bodla et al., 2017): decay the scores of overlapping boxes instead of removing them.

Repeatedly the box with the highest current score is kept, and every remaining box ``j`` has its
score multiplied by a decay of its IoU with the kept box ``m``:

    linear:    s_j ← s_j · (1 − IoU(m, j))   if IoU(m, j) > iou_threshold, else unchanged
    gaussian:  s_j ← s_j · exp(−IoU(m, j)² / sigma)

Boxes whose score falls below ``score_threshold`` are dropped. Greedy NMS is the linear rule
with the decay replaced by 0. Because each decay changes which box comes next, the boxes are
visited one at a time (a loop over *kept* boxes; each step is vectorized over the rest).

Example
-------
>>> import torch
>>> boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 9.], [20., 20., 30., 30.]])
>>> keep, s = soft_nms(boxes, torch.tensor([0.9, 0.8, 0.7]), method="linear", iou_threshold=0.3)
>>> keep.tolist(), [round(v, 3) for v in s.tolist()]
([0, 2, 1], [0.9, 0.7, 0.08])
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_choice, check_float
from deepnotes.detection._validate import check_boxes, check_scores, check_threshold


def soft_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    method: str = "linear",
    sigma: float = 0.5,
    iou_threshold: float = 0.3,
    score_threshold: float = 0.001,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-NMS over ``boxes (Tensor[N, 4])`` xyxy with ``scores (Tensor[N])``.

    Returns ``keep (LongTensor[K])`` in the order the boxes were selected (decayed score
    descending; equal scores by lowest index) and ``Tensor[K]``, their decayed scores.
    ``iou_threshold`` applies to the linear rule only, ``sigma`` to the Gaussian one.
    """
    check_boxes("boxes", boxes)
    check_scores("scores", scores, boxes.shape[0])
    check_choice("method", method, ("linear", "gaussian"))
    sigma = check_float("sigma", sigma, min=0.0, min_inclusive=False)
    iou_threshold = check_threshold("iou_threshold", iou_threshold)
    score_threshold = check_float("score_threshold", score_threshold)
    b = boxes.to(scores.dtype)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    current = scores.clone()
    alive = current >= score_threshold
    keep: list[int] = []
    kept_scores: list[torch.Tensor] = []
    while bool(alive.any()):
        m = int(torch.where(alive, current, torch.tensor(-torch.inf, dtype=current.dtype)).argmax())
        keep.append(m)
        kept_scores.append(current[m].clone())
        alive[m] = False
        wh = (torch.min(b[m, 2:], b[:, 2:]) - torch.max(b[m, :2], b[:, :2])).clamp(min=0)
        inter = wh[:, 0] * wh[:, 1]
        union = area[m] + area - inter
        iou = torch.where(union > 0, inter / torch.where(union > 0, union, 1), 0)
        if method == "linear":
            decay = torch.where(iou > iou_threshold, 1 - iou, 1)
        else:
            decay = torch.exp(-(iou * iou) / sigma)
        current = torch.where(alive, current * decay, current)
        alive &= current >= score_threshold
    idx = torch.tensor(keep, dtype=torch.int64)
    return idx, (torch.stack(kept_scores) if kept_scores else scores.new_empty(0))
