"""COCO-style average precision, vectorized (the arithmetic of ``pycocotools.cocoeval.COCOeval``).

Per image and class, detections (score descending, at most ``max(max_dets)``) are matched
greedily to ground truth at every IoU threshold ``t``: a detection takes the still-unmatched box
with the highest IoU ``>= t``, preferring boxes that are not ignored. A ground-truth box is
ignored if it is a crowd region (``iscrowd``; IoU with a crowd is ``|D ∩ G| / |D|`` and a
crowd can absorb any number of detections) or its area lies outside the area range; a
detection matched to an ignored box, or unmatched and outside the area range, is ignored
(neither true nor false positive). Then, per class, all detections are ranked by score;
precision is made monotone from the right and read at 101 recall points ``0, 0.01, …, 1``.

Vectorization: the matching loops over the *rank* of a detection within its image and class
(at most ``max(max_dets)`` steps), each step handling every image, class, threshold and area
range at once; accumulation is one segmented cumulative sum per class, padded to a matrix.
"""

from __future__ import annotations

import numpy as np

#: pycocotools' area ranges (pixels²): all, small (< 32²), medium (32²–96²), large (> 96²)
AREA_RANGES = ((0.0, 1e10), (0.0, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 1e10))
AREA_NAMES = ("all", "small", "medium", "large")
MAX_DETS = (1, 10, 100)
RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
#: elements of one padded (threshold, area, class, rank) block in the accumulation
_BLOCK = 1 << 24


def pair_iou(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of detection ``d[k]`` with ground truth ``g[k]`` (xyxy, float64); over ``|d|`` for crowds."""
    w = np.minimum(d[:, 2], g[:, 2]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 3], g[:, 3]) - np.maximum(d[:, 1], g[:, 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    area_d = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    union = np.where(crowd, area_d, area_d + area_g - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _match(det, gt, thresholds, max_det, iou_table=None):
    """Greedy matching; returns ``dt_matched, dt_ignored (D, T, A)`` for the detections kept.

    Box IoU by default; with ``iou_table`` (mask IoU, ``[image, det["row"], gt["row"]]``) the
    pairs' IoU is looked up there and a detection's area is ``det["area"]``.
    """
    n_t, n_a = len(thresholds), len(AREA_RANGES)
    lo = np.array([r[0] for r in AREA_RANGES])
    hi = np.array([r[1] for r in AREA_RANGES])
    gt_ignored = (
        gt["crowd"][:, None] | (gt["area"][:, None] < lo) | (gt["area"][:, None] > hi)
    )  # (G, A)
    det_area = (
        det["area"]
        if "area" in det
        else (det["box"][:, 2] - det["box"][:, 0]) * (det["box"][:, 3] - det["box"][:, 1])
    )
    det_outside = (det_area[:, None] < lo) | (det_area[:, None] > hi)  # (D, A)
    n_d = len(det["score"])
    matched = np.zeros((n_d, n_t, n_a), dtype=bool)
    ignored = np.zeros((n_d, n_t, n_a), dtype=bool)
    gt_taken = np.zeros((len(gt["group"]), n_t, n_a), dtype=bool)

    # every (detection, ground truth) pair of the same image and class
    g_order = np.argsort(gt["group"], kind="stable")
    g_groups = gt["group"][g_order]
    first = np.searchsorted(g_groups, det["group"], side="left")
    count = np.searchsorted(g_groups, det["group"], side="right") - first
    pd = np.repeat(np.arange(n_d), count)
    pg = g_order[
        np.repeat(first, count)
        + np.arange(count.sum())
        - np.repeat(np.cumsum(count) - count, count)
    ]
    if iou_table is None:
        iou = pair_iou(det["box"][pd], gt["box"][pg], gt["crowd"][pg])
    else:
        iou = iou_table[det["image"][pd], det["row"][pd], gt["row"][pg]]
    # per rank step, each detection's pairs contiguous and ordered worst → best
    # (pycocotools keeps the last of equal IoUs in ground-truth order)
    order = np.lexsort((pg, iou, pd, det["rank"][pd]))
    pd, pg, iou = pd[order], pg[order], iou[order]
    step = np.searchsorted(det["rank"][pd], np.arange(max_det + 1), side="left")
    thr = np.minimum(np.asarray(thresholds, dtype=np.float64), 1 - 1e-10)
    t_idx = np.arange(n_t)[None, :, None]
    a_idx = np.arange(n_a)[None, None, :]
    for r in range(max_det):
        s, e = step[r], step[r + 1]
        if s == e:
            continue
        d, g = pd[s:e], pg[s:e]
        eligible = (~gt_taken[g] | gt["crowd"][g, None, None]) & (
            iou[s:e, None, None] >= thr[None, :, None]
        )
        pos = np.arange(e - s)[:, None, None]
        # best pair = the last eligible one, counting not-ignored boxes before any ignored one
        score = np.where(eligible, pos + (e - s) * (~gt_ignored[g][:, None, :]), -1)
        starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
        best = np.maximum.reduceat(score, starts, axis=0)  # (Dr, T, A)
        hit = best >= 0
        pair = s + np.where(best >= e - s, best - (e - s), best)
        dets = d[starts]
        gsel = pg[np.where(hit, pair, s)]
        matched[dets] = hit
        ignored[dets] = hit & gt_ignored[gsel, a_idx]
        tt, aa = np.broadcast_to(t_idx, hit.shape)[hit], np.broadcast_to(a_idx, hit.shape)[hit]
        gt_taken[gsel[hit], tt, aa] = True
    ignored |= ~matched & det_outside[:, None, :]
    return matched, ignored, gt_ignored


def _accumulate(det, matched, ignored, n_pos, n_classes, n_t, with_precision=True):
    """Precision ``(T, R, K, A)`` at the recall points and recall ``(T, K, A)`` of the detections given."""
    n_a, n_r = len(AREA_RANGES), len(RECALL_POINTS)
    precision = -np.ones((n_t, n_r, n_classes, n_a))
    recall = -np.ones((n_t, n_classes, n_a))
    order = np.lexsort((det["rank"], det["image"], -det["score"], det["cls"]))
    cls = det["cls"][order]
    tp = (matched & ~ignored)[order]
    fp = (~matched & ~ignored)[order]
    seg_start = np.searchsorted(cls, np.arange(n_classes), side="left")
    seg_len = np.searchsorted(cls, np.arange(n_classes), side="right") - seg_start
    pos_in_seg = np.arange(len(cls)) - seg_start[cls]
    tp_sum = np.cumsum(tp, axis=0)
    fp_sum = np.cumsum(fp, axis=0)
    before = np.concatenate([np.zeros((1, n_t, n_a), dtype=tp_sum.dtype), tp_sum])[
        seg_start
    ]  # (K, T, A)
    before_fp = np.concatenate([np.zeros((1, n_t, n_a), dtype=fp_sum.dtype), fp_sum])[seg_start]
    tp_sum = (tp_sum - before[cls]).astype(np.float64)
    fp_sum = (fp_sum - before_fp[cls]).astype(np.float64)
    valid = n_pos > 0  # (K, A)
    with np.errstate(invalid="ignore", divide="ignore"):
        rc_all = tp_sum / n_pos[cls][:, None, :]
    pr_all = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    total_tp = np.zeros((n_classes, n_t, n_a))
    last = seg_start + seg_len - 1
    has = seg_len > 0
    total_tp[has] = tp_sum[last[has]]
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = np.where(has[:, None, None], total_tp / n_pos[:, None, :], 0.0)  # (K, T, A)
    recall[:] = np.where(valid[:, None, :], rec, -1.0).transpose(1, 0, 2)
    if not with_precision:
        return precision, recall
    # the first detection reaching each recall point: j = how many points each recall reaches
    # (nondecreasing along a class), so point j is first reached where j first exceeds it
    n_r_reached = np.searchsorted(
        RECALL_POINTS, np.where(np.isnan(rc_all), -1.0, rc_all), side="right"
    )  # (D, T, A)
    change = np.ones_like(n_r_reached, dtype=bool)
    change[1:] = (n_r_reached[1:] != n_r_reached[:-1]) | (cls[1:] != cls[:-1])[:, None, None]
    d_i, t_i, a_i = np.nonzero(change)
    first = np.full((n_classes, n_t, n_a, n_r + 1), np.iinfo(np.int64).max)
    first[cls[d_i], t_i, a_i, n_r_reached[d_i, t_i, a_i]] = pos_in_seg[d_i]
    # point j is reached at the first detection whose count exceeds j: a suffix minimum
    reach = np.flip(np.minimum.accumulate(np.flip(first, 3), axis=3), 3)[..., 1:]  # (K, T, A, R)
    # precision envelope from the right, per class (rows padded to the longest class, in chunks)
    cap = max(1, _BLOCK // max(1, n_t * n_a * max(1, int(seg_len.max(initial=0)))))
    for k0 in range(0, n_classes, cap):
        ks = np.arange(k0, min(n_classes, k0 + cap))
        width = int(seg_len[ks].max(initial=0))
        q = np.zeros((len(ks), n_t, n_a, n_r))
        if width:
            sel = (cls >= ks[0]) & (cls <= ks[-1])
            pr = np.zeros((len(ks), width, n_t, n_a))
            pr[cls[sel] - ks[0], pos_in_seg[sel]] = pr_all[sel]
            env = np.flip(np.maximum.accumulate(np.flip(pr, 1), axis=1), 1).transpose(
                0, 2, 3, 1
            )  # (k, T, A, L)
            r = reach[ks]
            inside = r < seg_len[ks][:, None, None, None]
            q = np.where(inside, np.take_along_axis(env, np.minimum(r, width - 1), axis=3), 0.0)
        q = np.where(valid[ks][:, None, :, None], q, -1.0)  # (k, T, A, R)
        precision[:, :, ks] = q.transpose(1, 3, 0, 2)
    return precision, recall


def coco_evaluate(det: dict, gt: dict, n_classes: int, thresholds, iou_table=None) -> dict:
    """Precision ``(T, R, K, A)`` (at 100 detections) and recall ``(T, K, A, M)`` for ``MAX_DETS``.

    ``det``/``gt``: flat arrays (``image``, ``cls``, ``box``; ``score`` for detections; ``crowd``,
    ``area`` for ground truth), as built by :func:`~deepnotes.detection.map.mean_average_precision`.
    Segmentation (``iouType="segm"``): ``iou_table[i, d, g]`` holds the mask IoU of the ``d``-th
    detection and ``g``-th ground truth of image ``i`` (``row`` entries in ``det``/``gt``), and
    ``det["area"]`` the detections' mask areas; everything else is the same arithmetic.
    """
    n_t = len(thresholds)
    n_images = int(max(det["image"].max(initial=-1), gt["image"].max(initial=-1))) + 1
    det = dict(det, group=det["image"] * n_classes + det["cls"])
    gt = dict(gt, group=gt["image"] * n_classes + gt["cls"])
    # rank of each detection within its image and class: score descending, ties in input order
    order = np.lexsort((np.arange(len(det["score"])), -det["score"], det["group"]))
    rank = np.empty(len(order), dtype=np.int64)
    g_sorted = det["group"][order]
    starts = np.searchsorted(g_sorted, g_sorted, side="left")
    rank[order] = np.arange(len(order)) - starts
    keep = rank < MAX_DETS[-1]
    det = {k: v[keep] for k, v in det.items()}
    det["rank"] = rank[keep]
    matched, ignored, gt_ignored = _match(det, gt, thresholds, MAX_DETS[-1], iou_table)
    n_pos = np.zeros((n_classes, len(AREA_RANGES)))
    np.add.at(n_pos, gt["cls"], (~gt_ignored).astype(np.float64))
    recall = np.empty((n_t, n_classes, len(AREA_RANGES), len(MAX_DETS)))
    precision = None
    for m, max_det in enumerate(MAX_DETS):
        sub = det["rank"] < max_det
        sub_det = {k: v[sub] for k, v in det.items()}
        p, r = _accumulate(
            sub_det, matched[sub], ignored[sub], n_pos, n_classes, n_t, max_det == MAX_DETS[-1]
        )
        recall[..., m] = r
        if max_det == MAX_DETS[-1]:
            precision = p
    return {"precision": precision, "recall": recall, "n_images": n_images}


def _mean(values: np.ndarray) -> float:
    v = values[values > -1]
    return float(v.mean()) if v.size else -1.0


def coco_summary(precision: np.ndarray, recall: np.ndarray, thresholds) -> dict[str, float]:
    """The 12 numbers of ``COCOeval.summarize`` under torchmetrics' names."""
    th = np.asarray(thresholds, dtype=np.float64)
    out = {"map": _mean(precision[..., 0])}
    for name, t in (("map_50", 0.5), ("map_75", 0.75)):
        hit = np.flatnonzero(np.isclose(th, t, rtol=0, atol=1e-12))
        out[name] = _mean(precision[hit, :, :, 0]) if hit.size else -1.0
    for a, area in enumerate(AREA_NAMES[1:], start=1):
        out[f"map_{area}"] = _mean(precision[..., a])
    for m, max_det in enumerate(MAX_DETS):
        out[f"mar_{max_det}"] = _mean(recall[:, :, 0, m])
    for a, area in enumerate(AREA_NAMES[1:], start=1):
        out[f"mar_{area}"] = _mean(recall[:, :, a, -1])
    return out
