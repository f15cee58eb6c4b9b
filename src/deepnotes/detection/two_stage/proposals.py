"""The RPN's proposal pipeline, one named step per function.

From the decoded anchors of every image:

1. :func:`top_n_per_level` — keep the ``pre_nms_top_n`` highest objectness logits of each level;
2. :func:`clip_to_image` — clamp the boxes into the image;
3. :func:`drop_small` — drop boxes with a side under ``min_size``;
4. :func:`drop_low_scores` — drop boxes whose objectness probability σ(logit) is below ``score_thresh``;
5. :func:`nms_per_level` — NMS within each level (boxes of different levels never suppress each other);
6. :func:`keep_top` — keep the ``post_nms_top_n`` best survivors (NMS returns them by descending score).

:func:`filter_proposals` chains the six.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepnotes.detection.boxes import clip_boxes_to_image, remove_small_boxes
from deepnotes.detection.nms import batched_nms


def top_n_per_level(
    objectness: torch.Tensor, num_anchors_per_level: Sequence[int], pre_nms_top_n: int
) -> torch.Tensor:
    """``objectness (Tensor[N, R])`` → indices ``LongTensor[N, Σ_l min(n_l, pre_nms_top_n)]``,
    each level's best first, levels in order."""
    out, offset = [], 0
    for part in objectness.split(list(num_anchors_per_level), dim=1):  # a few pyramid levels
        k = min(pre_nms_top_n, part.shape[1])
        out.append(part.topk(k, dim=1).indices + offset)
        offset += part.shape[1]
    return torch.cat(out, dim=1)


def clip_to_image(boxes: torch.Tensor, image_size: Sequence[int]) -> torch.Tensor:
    return clip_boxes_to_image(boxes, tuple(image_size))


def drop_small(boxes, scores, levels, min_size: float):
    keep = remove_small_boxes(boxes, min_size)
    return boxes[keep], scores[keep], levels[keep]


def drop_low_scores(boxes, scores, levels, score_thresh: float):
    keep = torch.where(scores >= score_thresh)[0]
    return boxes[keep], scores[keep], levels[keep]


def nms_per_level(boxes, scores, levels, nms_thresh: float) -> torch.Tensor:
    return batched_nms(boxes, scores, levels, nms_thresh)


def keep_top(keep: torch.Tensor, post_nms_top_n: int) -> torch.Tensor:
    return keep[:post_nms_top_n]


def filter_proposals(
    proposals: torch.Tensor,
    objectness: torch.Tensor,
    image_sizes: Sequence[Sequence[int]],
    num_anchors_per_level: Sequence[int],
    *,
    pre_nms_top_n: int,
    post_nms_top_n: int,
    nms_thresh: float,
    score_thresh: float = 0.0,
    min_size: float = 1e-3,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``proposals (Tensor[N, R, 4])`` decoded anchors, ``objectness (Tensor[N·R, 1])`` logits →
    per image the kept boxes ``Tensor[K_i, 4]`` and their probabilities ``Tensor[K_i]``."""
    n = proposals.shape[0]
    objectness = objectness.detach().reshape(n, -1)
    levels = torch.cat(
        [torch.full((c,), i, dtype=torch.int64) for i, c in enumerate(num_anchors_per_level)]
    ).expand_as(objectness)
    top = top_n_per_level(objectness, num_anchors_per_level, pre_nms_top_n)
    rows = torch.arange(n)[:, None]
    objectness, levels, proposals = objectness[rows, top], levels[rows, top], proposals[rows, top]
    probs = torch.sigmoid(objectness)
    final_boxes, final_scores = [], []
    for boxes, scores, lvl, size in zip(proposals, probs, levels, image_sizes):  # per image
        boxes = clip_to_image(boxes, size)
        boxes, scores, lvl = drop_small(boxes, scores, lvl, min_size)
        boxes, scores, lvl = drop_low_scores(boxes, scores, lvl, score_thresh)
        keep = keep_top(nms_per_level(boxes, scores, lvl, nms_thresh), post_nms_top_n)
        final_boxes.append(boxes[keep])
        final_scores.append(scores[keep])
    return final_boxes, final_scores
