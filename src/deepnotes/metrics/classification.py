"""Classification metrics on predicted labels: accuracy, confusion matrix, precision, recall, F1.

All per-class quantities come from one confusion matrix ``C`` (rows: true class, columns:
predicted class) over the sorted union of the labels seen in ``y_true``, ``y_pred`` and
``labels``: ``tp_c = C[c, c]``, ``predicted_c = Σ_i C[i, c]``, ``support_c = Σ_j C[c, j]``.
Averaging follows scikit-learn (``average`` = ``"binary" | "micro" | "macro" | "weighted" | None``):

* ``micro``: pool the counts of the selected classes, then divide;
* ``macro``: unweighted mean of the per-class values;
* ``weighted``: mean weighted by support.

A ratio with a zero denominator (a class never predicted, or never present) takes the value
``zero_division`` (0.0 by default; scikit-learn's default ``"warn"`` also gives 0.0, with a
warning). Labels may be integers, booleans or strings (sorted as ``np.unique`` sorts them);
``sample_weight`` weights every count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_choice, check_float
from deepnotes.metrics._inputs import (
    label_array,
    like,
    same_length,
    sample_weights,
    undefined,
)

AVERAGES = ("binary", "micro", "macro", "weighted", None)

# Dense label ranges up to this many (true, pred) cells are counted with one bincount of
# ``t * span + p``; wider, non-integer or string label sets go through np.unique + searchsorted.
_DENSE_CELLS = 1 << 22


def _is_text(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "US"


def _pair(
    y_true: Any, y_pred: Any, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    yt = label_array("y_true", y_true)
    yp = label_array("y_pred", y_pred)
    n = same_length(y_true=yt, y_pred=yp)
    if _is_text(yt) != _is_text(yp):
        # scikit-learn's unique_labels: "Mix of label input types (string and number)"
        raise ValueError("y_true and y_pred mix label input types (string and number)")
    return yt, yp, sample_weights(sample_weight, n)


def _full_matrix(
    yt: np.ndarray, yp: np.ndarray, extra: np.ndarray | None, w: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(classes, C) over the sorted union of labels in yt, yp and ``extra``, C weighted by ``w``."""
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
            cells = np.bincount(ti * span + pi, weights=w, minlength=span * span)
            full = cells.reshape(span, span)
            seen = np.bincount(ti, minlength=span) + np.bincount(pi, minlength=span)
            present = seen > 0  # a label counts as present even when all its weights are 0
            if extra is not None:
                present[extra.astype(np.int64) - lo] = True
            keep = np.flatnonzero(present)
            return keep + lo, full[np.ix_(keep, keep)]
    pool = [yt, yp] if extra is None else [yt, yp, extra]
    if not _is_text(yt):
        pool = [p.astype(np.float64) if p.dtype.kind == "f" else p for p in pool]
    classes = np.unique(np.concatenate(pool))
    k = len(classes)
    ti = np.searchsorted(classes, yt)
    pi = np.searchsorted(classes, yp)
    return classes, np.bincount(ti * k + pi, weights=w, minlength=k * k).reshape(k, k)


def _labels(labels: Any, yt: np.ndarray) -> np.ndarray | None:
    if labels is None:
        return None
    arr = label_array("labels", labels)
    if _is_text(arr) != _is_text(yt):
        raise ValueError("labels mix label input types (string and number) with y_true")
    if len(np.unique(arr)) != arr.size:
        raise ValueError("labels must not repeat a label")
    return arr


def _select(classes: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions of ``wanted`` in ``classes`` (every wanted label is in classes by construction)."""
    return np.searchsorted(classes, wanted)


def _count_dtype(w: np.ndarray | None) -> Any:
    # scikit-learn: integer counts unless the weights are floating
    return np.int64 if w is None or w.dtype.kind in "biu" else np.float64


def confusion_matrix(
    y_true: Any, y_pred: Any, *, labels: Any = None, sample_weight: Any = None
) -> Any:
    """Confusion matrix ``C[i, j]`` = number (or total weight) of samples of true class ``i``
    predicted as ``j``.

    Parameters
    ----------
    y_true, y_pred : array-like or Tensor of shape (n,) or (n, 1)
        Class labels: integers (integral floats and bools allowed) or strings.
    labels : array-like of shape (k,), optional
        Classes to index the rows and columns, in this order; samples whose true or predicted
        label is not listed are left out (as in scikit-learn). Default: the sorted union of the
        labels present.
    sample_weight : array-like of shape (n,), optional
        Each sample counts with its weight.

    Returns
    -------
    ndarray (Tensor for tensor input) of shape (k, k): int64, or float64 with float weights.

    Examples
    --------
    >>> confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1]).tolist()
    [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    >>> confusion_matrix(["cat", "dog"], ["dog", "dog"]).tolist()
    [[0, 1], [0, 1]]
    """
    yt, yp, w = _pair(y_true, y_pred, sample_weight)
    wanted = _labels(labels, yt)
    classes, full = _full_matrix(yt, yp, wanted, w)
    if wanted is not None:
        pos = _select(classes, wanted)
        full = full[np.ix_(pos, pos)]
    return like(full.astype(_count_dtype(w), copy=False), y_true, y_pred)


def accuracy(
    y_true: Any, y_pred: Any, *, normalize: bool = True, sample_weight: Any = None
) -> float:
    """Fraction (``normalize=False``: number, or total weight) of samples whose predicted label
    equals the true one (``sklearn.metrics.accuracy_score``).

    Examples
    --------
    >>> accuracy([0, 1, 2, 2], [0, 2, 2, 1])
    0.5
    >>> accuracy(["a", "b"], ["a", "a"], sample_weight=[3, 1])
    0.75
    """
    yt, yp, w = _pair(y_true, y_pred, sample_weight)
    hit = yt == yp
    if w is None:
        count = np.count_nonzero(hit)
        return float(count / yt.size) if normalize else float(count)
    w = w.astype(np.float64, copy=False)
    total = float(np.dot(hit, w))
    if not normalize:
        return total
    if w.sum() == 0:
        raise ValueError("sample_weight sums to zero: the weighted accuracy is undefined")
    return total / float(w.sum())


def _ratio(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    out = np.full(num.shape, zero_division, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _check_zero_division(value: Any) -> tuple[float, bool]:
    """The value a 0/0 ratio takes, and whether to warn (scikit-learn's ``"warn"``: 0 + warning)."""
    if isinstance(value, str):
        if value != "warn":
            raise ValueError(f"zero_division must be 'warn', 0.0, 1.0 or nan, got {value!r}")
        return 0.0, True
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"zero_division must be 'warn', 0.0, 1.0 or nan, got {type(value).__name__}")
    value = float(value)
    if not (value in (0.0, 1.0) or np.isnan(value)):
        raise ValueError(f"zero_division must be 'warn', 0.0, 1.0 or nan, got {value}")
    return value, False


def _nanaverage(values: np.ndarray, weights: np.ndarray | None) -> float:
    """scikit-learn's average of per-class values: NaN entries are left out; if the weights left
    sum to zero they are ignored; all NaN (or nothing) gives NaN."""
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    if weights is None or weights[keep].sum() == 0:
        return float(values[keep].mean())
    return float(np.average(values[keep], weights=weights[keep]))


def _scores(
    kind: str,
    y_true: Any,
    y_pred: Any,
    labels: Any,
    pos_label: Any,
    average: str | None,
    zero_division: Any,
    sample_weight: Any = None,
    beta: float = 1.0,
) -> float | np.ndarray:
    check_choice("average", average, AVERAGES)
    zero_division, warn = _check_zero_division(zero_division)
    yt, yp, w = _pair(y_true, y_pred, sample_weight)
    wanted = _labels(labels, yt)
    classes, cm = _full_matrix(yt, yp, wanted, w)
    tp = np.diagonal(cm).copy()
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    if average == "binary":
        if len(classes) > 2:
            raise ValueError(
                f"average='binary' needs at most two classes, found {len(classes)}; "
                "choose average='micro', 'macro', 'weighted' or None"
            )
        hit = np.flatnonzero([c == pos_label for c in classes.tolist()])
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
    if kind == "precision" or (kind == "f" and beta == 0):
        num, den = tp, predicted
    elif kind == "recall" or (kind == "f" and np.isinf(beta)):
        num, den = tp, support
    else:  # F_β = (1 + β²) tp / ((1 + β²) tp + β² fn + fp) = (1 + β²) tp / (β² support + predicted)
        b2 = beta * beta
        num, den = (1 + b2) * tp.astype(np.float64), b2 * support + predicted
    per_class = _ratio(num, den, zero_division)
    if warn and bool((den == 0).any()):
        undefined(f"{kind} is ill-defined for labels with a zero denominator; set to 0.0")
    if average is None:
        return like(per_class, y_true, y_pred)
    return _nanaverage(per_class, support if average == "weighted" else None)


def precision(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any = None,
    pos_label: Any = 1,
    average: str | None = "binary",
    sample_weight: Any = None,
    zero_division: Any = 0.0,
) -> float | np.ndarray:
    """Precision ``tp / (tp + fp)`` (``sklearn.metrics.precision_score``).

    Parameters
    ----------
    y_true, y_pred : array-like or Tensor of shape (n,) or (n, 1)
        Class labels (integers or strings).
    labels : array-like, optional
        Classes to report or average over (default: all present, sorted).
    pos_label : label
        The class scored when ``average="binary"`` (a string for string labels).
    average : {"binary", "micro", "macro", "weighted"} or None
        ``None`` returns one value per class (ndarray, Tensor for tensor input); the others a
        float. Averages leave out classes whose value is NaN (``zero_division=nan``); weighted
        averaging with zero total support falls back to the plain mean (scikit-learn's rules).
    sample_weight : array-like of shape (n,), optional
    zero_division : {"warn", 0.0, 1.0, nan}
        Value of a ratio whose denominator is zero (``"warn"``: 0.0 and an
        ``UndefinedMetricWarning``, scikit-learn's default).

    Examples
    --------
    >>> precision([0, 1, 1, 0], [1, 1, 1, 0])
    0.6666666666666666
    >>> precision([0, 1, 2, 2], [0, 2, 2, 1], average=None).tolist()
    [1.0, 0.0, 0.5]
    """
    return _scores("precision", y_true, y_pred, labels, pos_label, average, zero_division, sample_weight)


def recall(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any = None,
    pos_label: Any = 1,
    average: str | None = "binary",
    sample_weight: Any = None,
    zero_division: Any = 0.0,
) -> float | np.ndarray:
    """Recall ``tp / (tp + fn)`` (``sklearn.metrics.recall_score``).

    Parameters are those of :func:`precision`.

    Examples
    --------
    >>> recall([0, 1, 1, 0], [1, 1, 0, 0])
    0.5
    """
    return _scores("recall", y_true, y_pred, labels, pos_label, average, zero_division, sample_weight)


def f1_score(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any = None,
    pos_label: Any = 1,
    average: str | None = "binary",
    sample_weight: Any = None,
    zero_division: Any = 0.0,
) -> float | np.ndarray:
    """F1, the harmonic mean of precision and recall, ``2 tp / (2 tp + fp + fn)``
    (``sklearn.metrics.f1_score``); parameters as :func:`precision`.

    Macro F1 averages the per-class F1 values (not the F1 of macro precision and recall).

    Examples
    --------
    >>> f1_score([0, 1, 1, 0], [1, 1, 0, 0])
    0.5
    """
    return _scores("f", y_true, y_pred, labels, pos_label, average, zero_division, sample_weight)


def fbeta_score(
    y_true: Any,
    y_pred: Any,
    *,
    beta: float,
    labels: Any = None,
    pos_label: Any = 1,
    average: str | None = "binary",
    sample_weight: Any = None,
    zero_division: Any = 0.0,
) -> float | np.ndarray:
    """F-beta, ``(1 + β²) tp / ((1 + β²) tp + β² fn + fp)``: recall counts β times as much as
    precision (``sklearn.metrics.fbeta_score``; ``β = 0`` is precision, ``β = inf`` recall).
    Other parameters as :func:`precision`.

    Examples
    --------
    >>> round(fbeta_score([0, 1, 1, 0], [1, 1, 0, 0], beta=2.0), 4)
    0.5
    """
    if not (isinstance(beta, float) and beta == np.inf):
        beta = check_float("beta", beta, min=0.0)
    return _scores(
        "f", y_true, y_pred, labels, pos_label, average, zero_division, sample_weight, beta
    )
