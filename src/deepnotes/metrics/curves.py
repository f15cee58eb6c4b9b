"""Threshold curves of a binary scorer: PR curve, ROC curve, ROC AUC and average precision.

Everything is derived from one core, :func:`confusion_matrix_at_thresholds`: sort the scores once
(descending), and at every *distinct* score ``t`` count ``tp(t) = #{positives with score >= t}``
and ``fp(t)``. Tied scores share one threshold, so they enter a curve together — the curve never
depends on how a sort happens to order ties. Outputs equal scikit-learn's (``roc_curve``,
``precision_recall_curve``, ``roc_auc_score``, ``average_precision_score``) including ties and
``drop_intermediate``.

Labels may be numbers, booleans or strings (``pos_label`` picks the positive one); targets and
scores may be columns ``(n, 1)``; ``sample_weight`` weights every count. ROC AUC and average
precision also take several classes (:mod:`deepnotes.metrics.multiclass`). Arrays come back as
numpy arrays, or as tensors when an input was a tensor.

Degenerate inputs: empty input, non-finite scores and mismatched lengths raise ``ValueError``.
A curve that is undefined because ``y_true`` lacks a class gives scikit-learn's documented result
with an ``UndefinedMetricWarning``: ROC AUC is NaN, the ROC curve's undefined rate is NaN, the
PR curve's recall is 1 when there is no positive (and average precision then 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_choice
from deepnotes.metrics import multiclass
from deepnotes.metrics._inputs import (
    binary_positive,
    label_array,
    like,
    same_length,
    sample_weights,
    score_array,
    undefined,
)

AP_INTERPOLATIONS = ("step", "voc_all", "voc11")


def _binary_inputs(
    y_true: Any, y_score: Any, pos_label: Any, sample_weight: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated (positive mask, 1-D scores, weights or None) of a binary problem."""
    yt = label_array("y_true", y_true)
    ys = score_array("y_score", y_score)
    if ys.ndim != 1:
        raise ValueError(
            f"y_score must be 1-D (or a column (n, 1)) for a binary curve, got shape {ys.shape}; "
            "pass the positive class's column"
        )
    n = same_length(y_true=yt, y_score=ys)
    return binary_positive(yt, pos_label), ys, sample_weights(sample_weight, n)


def _counts(pos: np.ndarray, ys: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """(fps, tps, thresholds) at the distinct scores, descending: int64 counts, or float64
    weighted counts (samples of weight 0 are dropped first, as in scikit-learn)."""
    if ys.dtype.kind != "f":
        ys = ys.astype(np.float64)  # ints and bools: avoid unsigned wrap-around in the sort
    if w is not None:
        nonzero = w != 0
        pos, ys, w = pos[nonzero], ys[nonzero], w[nonzero]
        # scikit-learn's order (stable sort, reversed), so weighted sums round the same way
        order = np.argsort(ys, kind="stable")[::-1]
    else:
        # ascending sort read backwards = descending; the order of ties is irrelevant because
        # ties are collapsed into one threshold below
        order = np.argsort(ys)[::-1]
    s = ys[order]
    if s.size == 0:
        raise ValueError("sample_weight is zero for every sample")
    last = np.flatnonzero(s[1:] != s[:-1])  # last index of each run of equal scores
    idx = np.append(last, len(s) - 1)
    if w is None:
        tps = np.cumsum(pos[order], dtype=np.int64)[idx]
        fps = idx + 1 - tps
    else:
        wo = w[order]
        tps = np.cumsum(pos[order] * wo)[idx]
        fps = np.cumsum(~pos[order] * wo)[idx]
    return fps, tps, s[idx]


def confusion_matrix_at_thresholds(
    y_true: Any, y_score: Any, *, pos_label: Any = None, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Confusion-matrix counts at every distinct score, from the highest threshold down.

    A sample is predicted positive at threshold ``t`` when its score is ``>= t``.

    Parameters
    ----------
    y_true : array-like or Tensor of shape (n,) or (n, 1)
        Binary labels ({0, 1}, {-1, 1} or bool), or any labels (numbers, strings) with
        ``pos_label``.
    y_score : array-like or Tensor of shape (n,) or (n, 1)
        Finite scores; larger means more positive.
    pos_label : label, optional
        The positive label (default: 1 with {0, 1} / {-1, 1} labels).
    sample_weight : array-like of shape (n,), optional

    Returns
    -------
    tns, fps, fns, tps : ndarray of shape (m,)
        Counts at each of the ``m`` distinct scores: exact int64 (scikit-learn returns floats),
        float64 weighted counts with ``sample_weight``.
    thresholds : ndarray, shape (m,)
        The distinct scores, decreasing.

    Examples
    --------
    >>> y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    >>> tns, fps, fns, tps, thr = confusion_matrix_at_thresholds(y, s)
    >>> tps.tolist(), fps.tolist(), thr.tolist()
    ([1, 1, 2, 2], [0, 1, 1, 2], [0.8, 0.4, 0.35, 0.1])
    """
    fps, tps, thr = _counts(*_binary_inputs(y_true, y_score, pos_label, sample_weight))
    return like((fps[-1] - fps, fps, tps[-1] - tps, tps, thr), y_true, y_score)


def precision_recall_curve(
    y_true: Any,
    y_score: Any,
    *,
    pos_label: Any = None,
    sample_weight: Any = None,
    drop_intermediate: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every distinct threshold (as ``precision_recall_curve`` in sklearn).

    Parameters
    ----------
    y_true, y_score, pos_label
        As in :func:`confusion_matrix_at_thresholds`. Without a positive sample recall is set to
        1 at every threshold, with an ``UndefinedMetricWarning`` (scikit-learn's rule).
    sample_weight : array-like of shape (n,), optional
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
    fps, tps, thr = _counts(*_binary_inputs(y_true, y_score, pos_label, sample_weight))
    if drop_intermediate and len(tps) > 2:
        keep = np.concatenate([[True], (tps[1:-1] != tps[:-2]) | (tps[2:] != tps[1:-1]), [True]])
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    # every threshold predicts at least one sample (of weight > 0) positive: tps + fps > 0
    precision = tps / (tps + fps)
    if tps[-1] == 0:
        undefined("No positive class found in y_true: recall is set to one for all thresholds")
        recall = np.ones(len(tps))
    else:
        recall = tps / tps[-1]
    out = (
        np.concatenate([precision[::-1], [1.0]]),
        np.concatenate([recall[::-1], [0.0]]),
        thr[::-1].copy(),
    )
    return like(out, y_true, y_score)


def roc_curve(
    y_true: Any,
    y_score: Any,
    *,
    pos_label: Any = None,
    sample_weight: Any = None,
    drop_intermediate: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (``sklearn.metrics.roc_curve``).

    Parameters
    ----------
    y_true, y_score, pos_label
        As in :func:`confusion_matrix_at_thresholds`. With one class only, the rate that has no
        samples (fpr without negatives, tpr without positives) is NaN, with an
        ``UndefinedMetricWarning`` (scikit-learn's rule).
    sample_weight : array-like of shape (n,), optional
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
    fps, tps, thr = _counts(*_binary_inputs(y_true, y_score, pos_label, sample_weight))
    if drop_intermediate and len(fps) > 2:
        keep = np.concatenate([[True], (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), [True]])
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    fps = np.concatenate([[0], fps])
    tps = np.concatenate([[0], tps])
    thr = np.concatenate([[np.inf], thr.astype(np.float64)])
    out = (_rate(fps, "negative", "false"), _rate(tps, "positive", "true"), thr)
    return like(out, y_true, y_score)


def _rate(counts: np.ndarray, kind: str, which: str) -> np.ndarray:
    if counts[-1] == 0:
        undefined(f"No {kind} samples in y_true: the {which} positive rate is undefined (NaN)")
        return np.full(len(counts), np.nan)
    return counts / counts[-1]


def _binary_auc(pos: np.ndarray, ys: np.ndarray, w: np.ndarray | None, max_fpr: Any) -> float:
    """ROC AUC of one binary problem; NaN with a warning when a class is missing."""
    fps, tps, _ = _counts(pos, ys, w)
    if tps[-1] == 0 or fps[-1] == 0:
        undefined("Only one class is present in y_true: ROC AUC is not defined (NaN)")
        return float("nan")
    if max_fpr is not None and max_fpr != 1:
        return _mcclish(fps / fps[-1], tps / tps[-1], float(max_fpr))
    dfp = np.diff(fps, prepend=0)
    heights = tps + np.concatenate([[0], tps[:-1]])
    if w is None:  # exact integer sum; the only rounding is the division
        return float(int(np.dot(dfp, heights)) / (2 * int(tps[-1]) * int(fps[-1])))
    return float(np.dot(dfp, heights) / (2 * tps[-1] * fps[-1]))


def _mcclish(fpr: np.ndarray, tpr: np.ndarray, max_fpr: float) -> float:
    """Standardized partial AUC over ``fpr <= max_fpr`` (McClish, 1989), as scikit-learn.

    The area ``A`` under the curve up to ``max_fpr`` (the last segment cut by linear
    interpolation) is mapped to ``½ (1 + (A − A_min) / (A_max − A_min))`` with
    ``A_min = max_fpr² / 2`` (the chance diagonal) and ``A_max = max_fpr`` (a perfect ranking),
    so chance gives 0.5 and perfect 1 for every ``max_fpr``.
    """
    fpr, tpr = np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])
    stop = int(np.searchsorted(fpr, max_fpr, side="right"))
    end = np.interp(max_fpr, fpr[stop - 1 : stop + 1], tpr[stop - 1 : stop + 1])
    x = np.append(fpr[:stop], max_fpr)
    y = np.append(tpr[:stop], end)
    area = float(np.dot(np.diff(x), (y[1:] + y[:-1]) / 2))
    a_min, a_max = max_fpr**2 / 2, max_fpr
    return 0.5 * (1 + (area - a_min) / (a_max - a_min))


def roc_auc(
    y_true: Any,
    y_score: Any,
    *,
    pos_label: Any = None,
    average: str | None = "macro",
    sample_weight: Any = None,
    max_fpr: float | None = None,
    multi_class: str = "raise",
    labels: Any = None,
) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``).

    The trapezoid sum ``Σ Δfp · (tp + tp_prev) / (2 P N)`` is accumulated in int64 (without
    weights), so the only rounding is the final division. It equals the probability that a
    random positive scores above a random negative, ties counting one half.

    Parameters
    ----------
    y_true : array-like or Tensor of shape (n,), (n, 1) or (n, k)
        Binary labels (numbers or strings), multiclass labels, or a label-indicator matrix
        (multilabel).
    y_score : array-like or Tensor of shape (n,), (n, 1) or (n, k)
        Binary: the positive class's scores (torch logits of shape (n, 1) work). Multiclass:
        probabilities ``(n, n_classes)`` summing to 1 per row, columns in sorted class order
        (or in the order of ``labels``). Multilabel: one column per label.
    pos_label : label, optional
        With 1-D scores: the positive class, every other label negative. Default: the larger of
        the two labels (scikit-learn's rule; 1 for {0, 1} and {-1, 1}).
    average : {"macro", "weighted", "micro"} or None
        Multiclass / multilabel averaging (see :mod:`deepnotes.metrics.multiclass`); ignored
        for binary input.
    sample_weight : array-like of shape (n,), optional
    max_fpr : float in (0, 1], optional
        Binary / multilabel: McClish's standardized partial AUC over ``fpr <= max_fpr``.
    multi_class : {"raise", "ovr", "ovo"}
        Multiclass: one-vs-rest or one-vs-one (Hand & Till, 2001); ``"raise"`` (the default, as
        scikit-learn) refuses multiclass input.
    labels : array-like of shape (n_classes,), optional
        Multiclass: the classes of ``y_score``'s columns, sorted.

    Returns
    -------
    float (ndarray / Tensor per class with ``average=None``). A binary ``y_true`` with one class
    gives NaN and an ``UndefinedMetricWarning`` (scikit-learn's documented result).

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc(["no", "no", "yes", "yes"], [[0.1], [0.4], [0.35], [0.8]])
    0.75
    """
    if max_fpr is not None and not (
        isinstance(max_fpr, (int, float, np.integer, np.floating))
        and not isinstance(max_fpr, bool)
        and 0 < max_fpr <= 1
    ):
        raise ValueError(f"max_fpr must be a number in (0, 1], got {max_fpr!r}")
    yt = label_array("y_true", y_true, two_d=True)
    ys = score_array("y_score", y_score)
    n = same_length(y_true=yt, y_score=ys)
    w = sample_weights(sample_weight, n)
    if yt.ndim == 2:  # multilabel indicator
        Y = multiclass.indicator(yt, ys)
        return like(multiclass.one_vs_rest(_auc_metric(max_fpr), Y, ys, w, average), y_true, y_score)
    classes = np.unique(yt)
    if pos_label is not None and ys.ndim == 1:  # pos_label against every other class
        return _binary_auc(binary_positive(yt, pos_label), ys, w, max_fpr)
    if len(classes) > 2 or (ys.ndim == 2 and ys.shape[1] > 2):
        if max_fpr is not None and max_fpr != 1:
            raise ValueError("max_fpr (partial AUC) is not available for multiclass y_true")
        check_choice("multi_class", multi_class, ("raise", "ovr", "ovo"))
        if multi_class == "raise":
            raise ValueError(
                "y_true has more than two classes: choose multi_class='ovr' or 'ovo'"
            )
        out = multiclass.multiclass_auc(
            _auc_metric(None), yt, ys, w, labels, multi_class, average
        )
        return like(out, y_true, y_score)
    if ys.ndim == 2:
        raise ValueError(
            f"y_score must be 1-D (or a column) for a binary y_true, got shape {ys.shape}"
        )
    return _binary_auc(yt == classes[-1], ys, w, max_fpr)  # the larger label is positive


def _auc_metric(max_fpr: Any):
    return lambda pos, ys, w: _binary_auc(pos, ys, w, max_fpr)


def _binary_ap(pos: np.ndarray, ys: np.ndarray, w: np.ndarray | None, interpolation: str) -> float:
    fps, tps, _ = _counts(pos, ys, w)
    if tps[-1] == 0:
        # scikit-learn: recall is set to 1 everywhere, so the step sum is 0
        undefined("No positive class found in y_true: average precision is set to 0")
        return 0.0
    precision = tps / (tps + fps)
    if interpolation == "step":
        # recall steps Δtp / P, weighted by the precision at the step
        return float(np.dot(np.diff(tps, prepend=0), precision) / tps[-1])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    if interpolation == "voc_all":
        return float(np.dot(np.diff(tps, prepend=0), envelope) / tps[-1])
    levels = np.arange(11, dtype=tps.dtype) * tps[-1]
    first = np.searchsorted(10 * tps, levels, side="left")  # tps is non-decreasing
    return float(envelope[np.minimum(first, len(tps) - 1)].mean())


def average_precision(
    y_true: Any,
    y_score: Any,
    interpolation: str = "step",
    *,
    pos_label: Any = None,
    average: str | None = "macro",
    sample_weight: Any = None,
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
    y_true : array-like or Tensor of shape (n,), (n, 1) or (n, k)
        Binary labels, multiclass labels (``y_score`` then has one column per class, in sorted
        class order) or a label-indicator matrix.
    y_score : array-like or Tensor of shape (n,), (n, 1) or (n, k)
    interpolation : {"step", "voc_all", "voc11"}
    pos_label : label, optional
        Binary only, as in :func:`confusion_matrix_at_thresholds`.
    average : {"macro", "weighted", "micro"} or None
        Several classes: mean of the per-class APs, weighted by the number of positives, AP of
        all (label, sample) pairs pooled, or the per-class values.
    sample_weight : array-like of shape (n,), optional

    Without a positive sample the AP is 0 with an ``UndefinedMetricWarning`` (scikit-learn).

    Examples
    --------
    >>> y, s = [0, 1, 1, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5]
    >>> [round(average_precision(y, s, m), 4) for m in ("step", "voc_all", "voc11")]
    [0.5889, 0.6444, 0.6424]
    """
    check_choice("interpolation", interpolation, AP_INTERPOLATIONS)
    yt = label_array("y_true", y_true, two_d=True)
    ys = score_array("y_score", y_score)
    n = same_length(y_true=yt, y_score=ys)
    w = sample_weights(sample_weight, n)

    def metric(pos, scores, weights):
        return _binary_ap(pos, scores, weights, interpolation)

    if yt.ndim == 2 or len(np.unique(yt)) > 2:
        if pos_label not in (None, 1):
            raise ValueError("pos_label is fixed to 1 for multiclass or multilabel y_true")
        if yt.ndim == 2:
            Y = multiclass.indicator(yt, ys)
        else:
            Y = multiclass.binarize(yt, np.unique(yt))
            if ys.shape != Y.shape:
                raise ValueError(
                    "y_score must have shape (n_samples, n_classes) = "
                    f"{Y.shape} for multiclass y_true, got {ys.shape}"
                )
        return like(multiclass.one_vs_rest(metric, Y, ys, w, average), y_true, y_score)
    if ys.ndim == 2:
        raise ValueError(
            f"y_score must be 1-D (or a column) for a binary y_true, got shape {ys.shape}"
        )
    return metric(binary_positive(yt, pos_label), ys, w)
