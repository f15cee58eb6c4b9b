"""Pascal VOC average precision: 11-point (VOC2007) and all-point (VOC2010–2012) interpolation.

Per class, all detections are ranked by score (ties in input order). Each detection is compared
with the ground truth of its image and class and takes the box of highest IoU (the first one on
ties). It is a true positive if that IoU is ``> threshold``, the box is not ``difficult`` and no
higher-ranked detection took it already; a duplicate or a low-overlap detection is a false
positive; a detection on a difficult box is ignored. Unlike COCO, a detection does not fall back
to its second-best box when the best one is taken.

Vectorization: "took it already" only asks whether a higher-ranked detection chose the same
box, so each box's true positive is the first detection (in rank order) that chose it.

- ``voc07``: ``AP = (1/11) Σ_{r ∈ {0, 0.1, …, 1}} max{precision(r') : r' >= r}`` (0 if none);
- ``voc12``: the area under the precision envelope, ``Σ (r_i − r_{i−1}) · p_env(r_i)``.

Boxes are continuous coordinates (no ``+1`` pixel as in the original MATLAB devkit).
"""

from __future__ import annotations

import numpy as np

from deepnotes.detection.coco_eval import pair_iou


def _tp_fp(det: dict, gt: dict, n_classes: int, threshold: float):
    """Per detection (in its class's rank order): ``cls``, ``tp``, ``fp``; and positives per class."""
    n_d = len(det["score"])
    order = np.lexsort((np.arange(n_d), -det["score"], det["cls"]))
    group_d = det["image"] * n_classes + det["cls"]
    group_g = gt["image"] * n_classes + gt["cls"]
    g_order = np.argsort(group_g, kind="stable")
    first = np.searchsorted(group_g[g_order], group_d, side="left")
    count = np.searchsorted(group_g[g_order], group_d, side="right") - first
    pd = np.repeat(np.arange(n_d), count)
    pg = g_order[
        np.repeat(first, count)
        + np.arange(count.sum())
        - np.repeat(np.cumsum(count) - count, count)
    ]
    iou = pair_iou(det["box"][pd], gt["box"][pg], np.zeros(len(pd), dtype=bool))
    # best box per detection: highest IoU, the lowest ground-truth index on ties
    by = np.lexsort((pg, -iou, pd))
    pd, pg, iou = pd[by], pg[by], iou[by]
    head = np.r_[True, pd[1:] != pd[:-1]] if len(pd) else np.zeros(0, dtype=bool)
    best_iou = np.full(n_d, -1.0)
    best_gt = np.full(n_d, -1)
    best_iou[pd[head]] = iou[head]
    best_gt[pd[head]] = pg[head]
    hit = best_iou > threshold
    difficult = np.zeros(n_d, dtype=bool)
    difficult[hit] = gt["crowd"][best_gt[hit]]
    # first detection in rank order to take each box
    rank = np.empty(n_d, dtype=np.int64)
    rank[order] = np.arange(n_d)
    claim = hit & ~difficult
    first_rank = np.full(len(gt["cls"]), np.iinfo(np.int64).max)
    np.minimum.at(first_rank, best_gt[claim], rank[claim])
    tp = claim & (first_rank[np.where(claim, best_gt, 0)] == rank)
    fp = ~tp & ~(hit & difficult)
    n_pos = np.bincount(gt["cls"][~gt["crowd"]], minlength=n_classes)
    return det["cls"][order], tp[order], fp[order], n_pos


def voc_average_precision(
    det: dict, gt: dict, n_classes: int, threshold: float, style: str
) -> np.ndarray:
    """AP per class (``-1`` for a class without non-difficult ground truth)."""
    cls, tp, fp, n_pos = _tp_fp(det, gt, n_classes, threshold)
    seg = np.searchsorted(cls, np.arange(n_classes + 1), side="left")
    tp_c = np.concatenate([[0], np.cumsum(tp)])
    fp_c = np.concatenate([[0], np.cumsum(fp)])
    tp_sum = (tp_c[1:] - tp_c[seg[cls]]).astype(np.float64)
    fp_sum = (fp_c[1:] - fp_c[seg[cls]]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = tp_sum / n_pos[cls]
        prec = tp_sum / np.maximum(tp_sum + fp_sum, np.finfo(np.float64).eps)
    # envelope from the right within each class: pad classes to rows
    width = int(np.diff(seg).max(initial=0))
    rows = np.zeros((n_classes, width + 2))  # [0, p_1 … p_n, 0]
    rrec = np.zeros((n_classes, width + 2))  # [0, r_1 … r_n, 1] (padding repeats the last recall)
    pos = np.arange(len(cls)) - seg[cls] + 1
    rows[cls, pos] = prec
    rrec[cls, pos] = rec
    last = np.diff(seg)
    for_fill = np.arange(width + 2)[None, :] > last[:, None]
    last_rec = np.where(last > 0, rrec[np.arange(n_classes), last], 0.0)
    rrec = np.where(for_fill, last_rec[:, None], rrec)
    env = np.flip(np.maximum.accumulate(np.flip(rows, 1), axis=1), 1)
    if style == "voc12":
        ap = (np.diff(rrec, axis=1) * env[:, 1:]).sum(1)
    else:
        points = np.linspace(0.0, 1.0, 11)
        reach = rrec[:, None, 1:] >= points[None, :, None]  # (K, 11, width+1)
        best = np.where(
            reach & (np.arange(width + 1)[None, None, :] < last[:, None, None]),
            env[:, None, 1:],
            0.0,
        )
        ap = best.max(axis=2).mean(1)
    return np.where(n_pos > 0, ap, -1.0)
