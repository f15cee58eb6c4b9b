"""CLEAR-MOT and identity metrics of a tracker's output against ground truth (MOTChallenge rows).

Inputs are arrays of rows ``frame, id, x, y, w, h, ...`` (extra columns ignored). A ground-truth
object ``o`` and a hypothesis ``h`` in the same frame *may pair* when
``IoU(o, h) >= iou_threshold``; their distance is ``1 − IoU``.

Per frame, in order (Bernardin & Stiefelhagen 2008, as ``motmetrics`` implements it):

1. **keep** last frame's correspondences ``o → h`` that may still pair;
2. **match** the rest with a gated minimum-distance assignment (most pairs first, then least
   total distance); a match of ``o`` to a hypothesis other than the one ``o`` was last matched
   to is an **ID switch**;
3. objects left unmatched are **misses**, hypotheses left unmatched **false positives**.

From those events:

* ``mota = 1 − (misses + switches + false positives) / objects``;
* ``motp`` = mean distance ``1 − IoU`` of the matched pairs (motmetrics' convention: lower is
  better — ``1 − motp`` is the MOTChallenge's MOTP);
* ``mostly_tracked`` / ``partially_tracked`` / ``mostly_lost``: objects matched in ≥ 80 %,
  20–80 %, < 20 % of the frames they appear in;
* ``num_fragmentations``: times an object goes from matched to missed within its tracked span.

Identity metrics (Ristani et al. 2016) pair whole trajectories once for the sequence: ``IDTP`` is
the largest total, over one-to-one pairings of object ids with hypothesis ids, of the frames in
which the two may pair; ``idp = IDTP / hypotheses``, ``idr = IDTP / objects``,
``idf1 = 2 IDTP / (objects + hypotheses)``.

Degenerate sequences never give NaN: a ratio whose denominator is zero is ``0.0``, except that
with no ground truth and no hypothesis at all ``mota``, ``idf1``, ``idp``, ``idr``, ``precision``
and ``recall`` are ``1.0`` (nothing to find, nothing wrongly reported); ``motp`` with no match is
``1.0`` (the worst distance). ``motmetrics`` returns NaN or ``-inf`` in those cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_float
from deepnotes.tracking.assignment import gated_assignment, linear_assignment

__all__ = ["check_mot_rows", "iou_distance_xywh", "mot_metrics"]


def check_mot_rows(name: str, rows: Any) -> np.ndarray:
    """Validated ``(N, >= 6)`` float64 MOTChallenge rows, sorted by frame then id."""
    arr = np.asarray(rows, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 6))
    if arr.ndim != 2 or arr.shape[1] < 6:
        raise ValueError(f"{name} must have shape (N, >= 6): frame, id, x, y, w, h; got {arr.shape}")
    arr = arr[:, :6]
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    bad = np.flatnonzero((arr[:, 4] <= 0) | (arr[:, 5] <= 0))
    if bad.size:
        raise ValueError(f"{name} row {int(bad[0])} has non-positive width or height: {arr[bad[0]].tolist()}")
    arr = arr[np.lexsort((arr[:, 1], arr[:, 0]))]
    dup = np.flatnonzero((np.diff(arr[:, 0]) == 0) & (np.diff(arr[:, 1]) == 0))
    if dup.size:
        frame, oid = arr[dup[0], :2]
        raise ValueError(f"{name} has two rows for frame {frame:g}, id {oid:g}")
    return arr


def iou_distance_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 − IoU`` of ``(x, y, w, h)`` boxes, shape (N, M).

    Written out rather than converted for :func:`deepnotes.detection.box_iou`: it follows
    motmetrics' arithmetic step by step (corners as ``x + w``, sizes as corner differences), so a
    pair exactly at the threshold is decided the same way.
    """
    a_min, a_max = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b_min, b_max = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    inter = np.prod(np.maximum(np.minimum(a_max, b_max) - np.maximum(a_min, b_min), 0), axis=2)
    union = np.prod(a_max - a_min, axis=2) + np.prod(b_max - b_min, axis=2) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)
    return 1.0 - iou


def _frames(arr: np.ndarray) -> dict[float, np.ndarray]:
    frames, starts = np.unique(arr[:, 0], return_index=True)
    return dict(zip(frames.tolist(), np.split(arr, starts[1:])))


def _ratio(num: float, den: float, empty: float = 0.0) -> float:
    return float(num / den) if den else empty


def mot_metrics(gt: Any, hyp: Any, iou_threshold: float = 0.5) -> dict[str, float]:
    """MOTA, MOTP, IDF1, IDP, IDR, switches, fragmentations, MT/PT/ML, FP, misses (see module doc).

    Parameters
    ----------
    gt, hyp : array-like (N, >= 6)
        MOTChallenge rows ``frame, id, x, y, w, h, ...``; any row order; one row per (frame, id).
    iou_threshold : float in (0, 1]
        Least IoU for an object and a hypothesis to pair (``motmetrics``' ``distth = 1 − this``).

    Returns
    -------
    dict with motmetrics' metric names: ``mota, motp, idf1, idp, idr, idtp, idfp, idfn,
    num_switches, num_fragmentations, num_false_positives, num_misses, num_matches,
    num_detections, num_objects, num_predictions, num_unique_objects, num_frames,
    mostly_tracked, partially_tracked, mostly_lost, precision, recall``.
    """
    gt = check_mot_rows("gt", gt)
    hyp = check_mot_rows("hyp", hyp)
    thr = check_float("iou_threshold", iou_threshold, min=0.0, max=1.0, min_inclusive=False)
    max_dist = 1.0 - thr
    gt_frames, hyp_frames = _frames(gt), _frames(hyp)
    frames = sorted(set(gt_frames) | set(hyp_frames))

    last_hyp: dict[float, float] = {}  # object id -> hypothesis id it was last matched to
    matched_frames: dict[float, list[bool]] = {}  # object id -> matched? per frame it appears in
    pair_frames: dict[tuple[float, float], int] = {}  # (o, h) -> frames in which they may pair
    n_match = n_switch = n_fp = n_miss = 0
    dist_sum = 0.0
    empty = np.zeros((0, 6))
    for f in frames:
        g, h = gt_frames.get(f, empty), hyp_frames.get(f, empty)
        oids, hids = g[:, 1], h[:, 1]
        dist = iou_distance_xywh(g[:, 2:6], h[:, 2:6])
        may_pair = dist <= max_dist
        for i, j in zip(*np.nonzero(may_pair)):
            key = (float(oids[i]), float(hids[j]))
            pair_frames[key] = pair_frames.get(key, 0) + 1

        o_done = np.zeros(len(oids), bool)
        h_done = np.zeros(len(hids), bool)
        # 1. keep last frame's correspondences that may still pair
        col_of = {hid: j for j, hid in enumerate(hids.tolist())}
        for i, oid in enumerate(oids.tolist()):
            j = col_of.get(last_hyp.get(oid))
            if j is not None and not h_done[j] and may_pair[i, j]:
                o_done[i] = h_done[j] = True
                n_match += 1
                dist_sum += dist[i, j]
        # 2. gated assignment of the rest
        cost = np.where(may_pair, dist, np.inf)
        cost[o_done, :] = np.inf
        cost[:, h_done] = np.inf
        rows, cols, _, _ = gated_assignment(cost, max_dist)
        for i, j in zip(rows.tolist(), cols.tolist()):
            oid, hid = float(oids[i]), float(hids[j])
            if oid in last_hyp and last_hyp[oid] != hid:
                n_switch += 1
            else:
                n_match += 1
            dist_sum += dist[i, j]
            last_hyp[oid] = hid
            o_done[i] = h_done[j] = True
        # 3. the rest are misses and false positives
        n_miss += int((~o_done).sum())
        n_fp += int((~h_done).sum())
        for oid, done in zip(oids.tolist(), o_done.tolist()):
            matched_frames.setdefault(oid, []).append(done)

    n_obj, n_pred = len(gt), len(hyp)
    n_det = n_match + n_switch
    ratios = np.array([np.mean(v) for v in matched_frames.values()])
    fragmentations = 0
    for seq in matched_frames.values():
        s = np.asarray(seq)
        hit = np.flatnonzero(s)
        if hit.size:
            span = s[hit[0] : hit[-1] + 1]
            fragmentations += int(np.count_nonzero(span[:-1] & ~span[1:]))
    idtp = _identity_true_positives(pair_frames)
    nothing = n_obj == 0 and n_pred == 0
    return {
        "mota": 1.0 - _ratio(n_miss + n_switch + n_fp, n_obj) if n_obj or nothing else 0.0,
        "motp": _ratio(dist_sum, n_det, empty=1.0),
        "idf1": _ratio(2 * idtp, n_obj + n_pred, empty=1.0),
        "idp": _ratio(idtp, n_pred, empty=1.0 if nothing else 0.0),
        "idr": _ratio(idtp, n_obj, empty=1.0 if nothing else 0.0),
        "idtp": float(idtp),
        "idfp": float(n_pred - idtp),
        "idfn": float(n_obj - idtp),
        "num_switches": n_switch,
        "num_fragmentations": fragmentations,
        "num_false_positives": n_fp,
        "num_misses": n_miss,
        "num_matches": n_match,
        "num_detections": n_det,
        "num_objects": n_obj,
        "num_predictions": n_pred,
        "num_unique_objects": len(matched_frames),
        "num_frames": len(frames),
        "mostly_tracked": int(np.count_nonzero(ratios >= 0.8)),
        "partially_tracked": int(np.count_nonzero((ratios >= 0.2) & (ratios < 0.8))),
        "mostly_lost": int(np.count_nonzero(ratios < 0.2)),
        "precision": _ratio(n_det, n_det + n_fp, empty=1.0 if nothing else 0.0),
        "recall": _ratio(n_det, n_obj, empty=1.0 if nothing else 0.0),
    }


def _identity_true_positives(pair_frames: dict[tuple[float, float], int]) -> int:
    """Largest total of co-pairable frames over one-to-one pairings of object and hypothesis ids."""
    if not pair_frames:
        return 0
    oids = sorted({o for o, _ in pair_frames})
    hids = sorted({h for _, h in pair_frames})
    o_idx = {o: i for i, o in enumerate(oids)}
    h_idx = {h: j for j, h in enumerate(hids)}
    weight = np.zeros((len(oids), len(hids)))
    for (o, h), n in pair_frames.items():
        weight[o_idx[o], h_idx[h]] = n
    rows, cols = linear_assignment(-weight)
    return int(weight[rows, cols].sum())
