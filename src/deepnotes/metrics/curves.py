"""Threshold curves of a binary scorer: PR curve, ROC curve, ROC AUC and average precision.

Everything is derived from one core, :func:`confusion_matrix_at_thresholds`: sort the scores once
(descending), and at every *distinct* score ``t`` count ``tp(t) = #{positives with score >= t}``
and ``fp(t)``. Tied scores share one threshold, so they enter a curve together — the curve never
depends on how a sort happens to order ties. Outputs equal scikit-learn's (``roc_curve``,
``precision_recall_curve``, ``roc_auc_score``, ``average_precision_score``) including ties and
``drop_intermediate``.

Degenerate inputs raise ``ValueError``: empty input, non-finite scores, mismatched lengths, and
a curve that is undefined because ``y_true`` lacks a class (ROC needs both classes; PR needs at
least one positive). scikit-learn only warns there and returns NaN or an arbitrary recall.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_choice
from deepnotes.metrics._inputs import binary_positive, same_length, vector

AP_INTERPOLATIONS = ("step", "voc_all", "voc11")


def _counts(y_true: Any, y_score: Any, pos_label: Any) -> tuple[np.ndarray, ...]:
    """Validated (fps, tps, thresholds): int64 counts at the distinct scores, descending."""
    yt = vector("y_true", y_true)
    ys = vector("y_score", y_score)
    n = same_length(y_true=yt, y_score=ys)
    pos = binary_positive(yt, pos_label)
    if ys.dtype.kind != "f":
        ys = ys.astype(np.float64)  # ints and bools: avoid unsigned wrap-around in the sort
    # ascending sort read backwards = descending; the order of ties is irrelevant because ties
    # are collapsed into one threshold below
    order = np.argsort(ys)[::-1]
    s = ys[order]
    last = np.flatnonzero(s[1:] != s[:-1])  # last index of each run of equal scores
    idx = np.append(last, n - 1)
    tps = np.cumsum(pos[order], dtype=np.int64)[idx]
    fps = idx + 1 - tps
    return fps, tps, s[idx]


def confusion_matrix_at_thresholds(
    y_true: Any, y_score: Any, *, pos_label: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Confusion-matrix counts at every distinct score, from the highest threshold down.

    A sample is predicted positive at threshold ``t`` when its score is ``>= t``.

    Parameters
    ----------
    y_true : array-like or Tensor of shape (n,)
        Binary labels ({0, 1}, {-1, 1} or bool), or any labels with ``pos_label``.
    y_score : array-like or Tensor of shape (n,)
        Finite scores; larger means more positive.
    pos_label : scalar, optional
        The positive label (default: 1 with {0, 1} / {-1, 1} labels).

    Returns
    -------
    tns, fps, fns, tps : ndarray of int64, shape (m,)
        Counts at each of the ``m`` distinct scores (exact integers; scikit-learn returns floats).
    thresholds : ndarray, shape (m,)
        The distinct scores, decreasing.

    Examples
    --------
    >>> y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    >>> tns, fps, fns, tps, thr = confusion_matrix_at_thresholds(y, s)
    >>> tps.tolist(), fps.tolist(), thr.tolist()
    ([1, 1, 2, 2], [0, 1, 1, 2], [0.8, 0.4, 0.35, 0.1])
    """
    fps, tps, thr = _counts(y_true, y_score, pos_label)
    return fps[-1] - fps, fps, tps[-1] - tps, tps, thr


def _need(tps: np.ndarray, fps: np.ndarray, *, positives: bool, negatives: bool, what: str) -> None:
    if positives and tps[-1] == 0:
        raise ValueError(f"y_true has no positive sample: {what} is undefined")
    if negatives and fps[-1] == 0:
        raise ValueError(f"y_true has no negative sample: {what} is undefined")


def precision_recall_curve(
    y_true: Any, y_score: Any, *, pos_label: Any = None, drop_intermediate: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every distinct threshold (as ``precision_recall_curve`` in sklearn).

    Parameters
    ----------
    y_true, y_score, pos_label
        As in :func:`confusion_matrix_at_thresholds`. ``y_true`` needs a positive sample.
    drop_intermediate : bool
        Drop thresholds whose point lies inside a vertical run of equal recall (only the first
        and last point of each run are kept), as scikit-learn does.

    Returns
    -------
    precision, recall : ndarray of float64, shape (m + 1,)
        Ordered by increasing threshold; the last point is ``(precision, recall) = (1, 0)``.
    thresholds : ndarray, shape (m,)
        Increasing.

    Examples
    --------
    >>> p, r, t = precision_recall_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> p.round(3).tolist(), r.tolist(), t.tolist()
    ([0.5, 0.667, 0.5, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5, 0.0], [0.1, 0.35, 0.4, 0.8])
    """
    fps, tps, thr = _counts(y_true, y_score, pos_label)
    _need(tps, fps, positives=True, negatives=False, what="recall")
    if drop_intermediate and len(tps) > 2:
        keep = np.concatenate([[True], (tps[1:-1] != tps[:-2]) | (tps[2:] != tps[1:-1]), [True]])
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    # every threshold predicts at least one sample positive, so tps + fps >= 1
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return (
        np.concatenate([precision[::-1], [1.0]]),
        np.concatenate([recall[::-1], [0.0]]),
        thr[::-1].copy(),
    )


def roc_curve(
    y_true: Any, y_score: Any, *, pos_label: Any = None, drop_intermediate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (``sklearn.metrics.roc_curve``).

    Parameters
    ----------
    y_true, y_score, pos_label
        As in :func:`confusion_matrix_at_thresholds`. ``y_true`` needs both classes.
    drop_intermediate : bool
        Drop points that lie on a straight horizontal or vertical segment (zero second
        difference of both counts); the area is unchanged.

    Returns
    -------
    fpr, tpr : ndarray of float64, shape (m + 1,)
        Starting at (0, 0) and ending at (1, 1).
    thresholds : ndarray of float64, shape (m + 1,)
        Decreasing; the first is ``inf`` (nothing predicted positive).

    Examples
    --------
    >>> fpr, tpr, thr = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    fps, tps, thr = _counts(y_true, y_score, pos_label)
    _need(tps, fps, positives=True, negatives=True, what="the ROC curve")
    if drop_intermediate and len(fps) > 2:
        keep = np.concatenate([[True], (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), [True]])
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    fps = np.concatenate([[0], fps])
    tps = np.concatenate([[0], tps])
    thr = np.concatenate([[np.inf], thr.astype(np.float64)])
    return fps / fps[-1], tps / tps[-1], thr


def roc_auc(y_true: Any, y_score: Any, *, pos_label: Any = None) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score`` for binary ``y_true``).

    The trapezoid sum ``Σ Δfp · (tp + tp_prev) / (2 P N)`` is accumulated in int64, so the only
    rounding is the final division. It equals the probability that a random positive scores
    above a random negative, ties counting one half.

    Parameters
    ----------
    y_true, y_score, pos_label
        As in :func:`confusion_matrix_at_thresholds`. With one class the AUC is undefined and
        ``ValueError`` is raised.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    fps, tps, _ = _counts(y_true, y_score, pos_label)
    _need(tps, fps, positives=True, negatives=True, what="ROC AUC")
    dfp = np.diff(fps, prepend=0)
    heights = tps + np.concatenate([[0], tps[:-1]])
    return float(int(np.dot(dfp, heights)) / (2 * int(tps[-1]) * int(fps[-1])))


def average_precision(
    y_true: Any, y_score: Any, interpolation: str = "step", *, pos_label: Any = None
) -> float:
    """Average precision: the area under the PR curve, in one of three named definitions.

    With recall ``R_k`` and precision ``P_k`` at the ``k``-th distinct threshold (highest first):

    * ``"step"`` (scikit-learn's ``average_precision_score``): ``Σ_k (R_k − R_{k−1}) · P_k``.
    * ``"voc_all"`` (PASCAL VOC 2010+ all-point interpolation): the same sum over the precision
      envelope ``P̂_k = max_{j >= k} P_j`` (precision made non-increasing in recall).
    * ``"voc11"`` (PASCAL VOC 2007 11-point): the mean over ``r ∈ {0, 0.1, …, 1}`` of the largest
      precision at recall ``>= r``. ``R >= k/10`` is decided exactly in integers
      (``10 · tp >= k · P``), so a recall of exactly 0.3 counts for ``r = 0.3``.

    ``"voc_all" >= "step"`` always. Tied scores form one point of the curve.

    Parameters
    ----------
    y_true, y_score, pos_label
        As in :func:`confusion_matrix_at_thresholds`. ``y_true`` needs a positive sample.
    interpolation : {"step", "voc_all", "voc11"}

    Examples
    --------
    >>> y, s = [0, 1, 1, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5]
    >>> [round(average_precision(y, s, m), 4) for m in ("step", "voc_all", "voc11")]
    [0.5889, 0.6444, 0.6424]
    """
    check_choice("interpolation", interpolation, AP_INTERPOLATIONS)
    fps, tps, _ = _counts(y_true, y_score, pos_label)
    _need(tps, fps, positives=True, negatives=False, what="average precision")
    precision = tps / (tps + fps)
    if interpolation == "step":
        # recall steps Δtp / P, weighted by the precision at the step
        return float(np.dot(np.diff(tps, prepend=0), precision) / tps[-1])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    if interpolation == "voc_all":
        return float(np.dot(np.diff(tps, prepend=0), envelope) / tps[-1])
    levels = np.arange(11, dtype=np.int64) * tps[-1]
    first = np.searchsorted(10 * tps, levels, side="left")  # tps is non-decreasing
    return float(envelope[first].mean())
