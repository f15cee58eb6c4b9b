"""Classification metrics on predicted labels: accuracy, confusion matrix, precision, recall, F1.

All per-class quantities come from one confusion matrix ``C`` (rows: true class, columns:
predicted class) over the sorted union of the labels seen in ``y_true``, ``y_pred`` and
``labels``: ``tp_c = C[c, c]``, ``predicted_c = Σ_i C[i, c]``, ``support_c = Σ_j C[c, j]``.
Averaging follows scikit-learn (``average`` = ``"binary" | "micro" | "macro" | "weighted" | None``):

* ``micro``: pool the counts of the selected classes, then divide;
* ``macro``: unweighted mean of the per-class values;
* ``weighted``: mean weighted by support.

A ratio with a zero denominator (a class never predicted, or never present) takes the value
``zero_division`` (0.0 by default; scikit-learn's default also gives 0.0, with a warning).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_choice
from deepnotes.metrics._inputs import labels_vector, same_length, to_numpy

AVERAGES = ("binary", "micro", "macro", "weighted", None)

# Dense label ranges up to this many (true, pred) cells are counted with one bincount of
# ``t * span + p``; wider or non-integer label sets go through np.unique + searchsorted.
_DENSE_CELLS = 1 << 22


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    yt = labels_vector("y_true", y_true)
    yp = labels_vector("y_pred", y_pred)
    same_length(y_true=yt, y_pred=yp)
    return yt, yp


def _full_matrix(
    yt: np.ndarray, yp: np.ndarray, extra: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(classes, C) over the sorted union of labels in yt, yp and ``extra``."""
    if (
        yt.dtype.kind in "biu"
        and yp.dtype.kind in "biu"
        and (extra is None or extra.dtype.kind in "biu")
    ):
        ti, pi = yt.astype(np.int64, copy=False), yp.astype(np.int64, copy=False)
        lo = min(int(ti.min()), int(pi.min()))
        hi = max(int(ti.max()), int(pi.max()))
        if extra is not None and extra.size:
            lo, hi = min(lo, int(extra.min())), max(hi, int(extra.max()))
        span = hi - lo + 1
        if span * span <= _DENSE_CELLS:
            if lo:
                ti, pi = ti - lo, pi - lo
            full = np.bincount(ti * span + pi, minlength=span * span).reshape(span, span)
            present = (full.sum(0) > 0) | (full.sum(1) > 0)
            if extra is not None:
                present[extra.astype(np.int64) - lo] = True
            keep = np.flatnonzero(present)
            return keep + lo, full[np.ix_(keep, keep)]
    pool = [yt, yp] if extra is None else [yt, yp, extra]
    classes = np.unique(
        np.concatenate([p.astype(np.float64) if p.dtype.kind == "f" else p for p in pool])
    )
    k = len(classes)
    ti = np.searchsorted(classes, yt)
    pi = np.searchsorted(classes, yp)
    return classes, np.bincount(ti * k + pi, minlength=k * k).reshape(k, k)


def _labels(labels: Any) -> np.ndarray | None:
    if labels is None:
        return None
    arr = to_numpy("labels", labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D list of labels, got shape {arr.shape}")
    if len(np.unique(arr)) != arr.size:
        raise ValueError("labels must not repeat a label")
    return arr


def _select(classes: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions of ``wanted`` in ``classes`` (every wanted label is in classes by construction)."""
    return np.searchsorted(classes, wanted)


def confusion_matrix(y_true: Any, y_pred: Any, *, labels: Any = None) -> np.ndarray:
    """Confusion matrix ``C[i, j]`` = number of samples of true class ``i`` predicted as ``j``.

    Parameters
    ----------
    y_true, y_pred : array-like or Tensor of shape (n,)
        Integer class labels (integral floats and bools allowed).
    labels : array-like of shape (k,), optional
        Classes to index the rows and columns, in this order; samples whose true or predicted
        label is not listed are left out (as in scikit-learn). Default: the sorted union of the
        labels present.

    Returns
    -------
    ndarray of int64, shape (k, k)

    Examples
    --------
    >>> confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1]).tolist()
    [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    """
    yt, yp = _pair(y_true, y_pred)
    wanted = _labels(labels)
    classes, full = _full_matrix(yt, yp, wanted)
    if wanted is None:
        return full.astype(np.int64, copy=False)
    pos = _select(classes, wanted)
    return full[np.ix_(pos, pos)].astype(np.int64, copy=False)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of samples whose predicted label equals the true one (``accuracy_score``).

    Examples
    --------
    >>> accuracy([0, 1, 2, 2], [0, 2, 2, 1])
    0.5
    """
    yt, yp = _pair(y_true, y_pred)
    return float(np.count_nonzero(yt == yp) / yt.size)


def _ratio(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    out = np.full(num.shape, zero_division, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _check_zero_division(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"zero_division must be 0.0, 1.0 or nan, got {type(value).__name__}")
    value = float(value)
    if not (value in (0.0, 1.0) or np.isnan(value)):
        raise ValueError(f"zero_division must be 0.0, 1.0 or nan, got {value}")
    return value


def _scores(
    kind: str,
    y_true: Any,
    y_pred: Any,
    labels: Any,
    pos_label: Any,
    average: str | None,
    zero_division: float,
) -> float | np.ndarray:
    check_choice("average", average, AVERAGES)
    zero_division = _check_zero_division(zero_division)
    yt, yp = _pair(y_true, y_pred)
    wanted = _labels(labels)
    classes, cm = _full_matrix(yt, yp, wanted)
    tp = np.diagonal(cm).astype(np.int64)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    if average == "binary":
        if len(classes) > 2:
            raise ValueError(
                f"average='binary' needs at most two classes, found {len(classes)}; "
                "choose average='micro', 'macro', 'weighted' or None"
            )
        hit = np.flatnonzero(classes == pos_label)
        if hit.size == 0:
            if len(classes) == 2:
                raise ValueError(
                    f"pos_label={pos_label!r} is not one of the labels {classes.tolist()}"
                )
            sel = np.zeros(0, dtype=np.int64)  # pos_label absent from both: no tp, fp or support
        else:
            sel = hit
    else:
        sel = np.arange(len(classes)) if wanted is None else _select(classes, wanted)
    tp, predicted, support = tp[sel], predicted[sel], support[sel]
    if average in ("micro", "binary"):
        tp, predicted, support = (
            tp.sum(keepdims=True),
            predicted.sum(keepdims=True),
            support.sum(keepdims=True),
        )
    if kind == "precision":
        per_class = _ratio(tp, predicted, zero_division)
    elif kind == "recall":
        per_class = _ratio(tp, support, zero_division)
    else:  # F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (predicted + support)
        per_class = _ratio(2 * tp, predicted + support, zero_division)
    if average is None:
        return per_class
    if average in ("micro", "binary", "macro"):
        return float(per_class.mean())
    if support.sum() == 0:
        return zero_division
    return float(np.average(per_class, weights=support))


def precision(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any = None,
    pos_label: Any = 1,
    average: str | None = "binary",
    zero_division: float = 0.0,
) -> float | np.ndarray:
    """Precision ``tp / (tp + fp)`` (``sklearn.metrics.precision_score``).

    Parameters
    ----------
    y_true, y_pred : array-like or Tensor of shape (n,)
        Integer class labels.
    labels : array-like, optional
        Classes to report or average over (default: all present, sorted).
    pos_label : scalar
        The class scored when ``average="binary"``.
    average : {"binary", "micro", "macro", "weighted"} or None
        ``None`` returns one value per class (ndarray); the others a float.
    zero_division : {0.0, 1.0, nan}
        Value of a ratio whose denominator is zero.

    Examples
    --------
    >>> precision([0, 1, 1, 0], [1, 1, 1, 0])
    0.6666666666666666
    >>> precision([0, 1, 2, 2], [0, 2, 2, 1], average=None).tolist()
    [1.0, 0.0, 0.5]
    """
    return _scores("precision", y_true, y_pred, labels, pos_label, average, zero_division)


def recall(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any = None,
    pos_label: Any = 1,
    average: str | None = "binary",
    zero_division: float = 0.0,
) -> float | np.ndarray:
    """Recall ``tp / (tp + fn)`` (``sklearn.metrics.recall_score``).

    Parameters are those of :func:`precision`.

    Examples
    --------
    >>> recall([0, 1, 1, 0], [1, 1, 0, 0])
    0.5
    """
    return _scores("recall", y_true, y_pred, labels, pos_label, average, zero_division)


def f1_score(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any = None,
    pos_label: Any = 1,
    average: str | None = "binary",
    zero_division: float = 0.0,
) -> float | np.ndarray:
    """F1, the harmonic mean of precision and recall, ``2 tp / (2 tp + fp + fn)``
    (``sklearn.metrics.f1_score``); parameters as :func:`precision`.

    Macro F1 averages the per-class F1 values (not the F1 of macro precision and recall).

    Examples
    --------
    >>> f1_score([0, 1, 1, 0], [1, 1, 0, 0])
    0.5
    """
    return _scores("f1", y_true, y_pred, labels, pos_label, average, zero_division)
