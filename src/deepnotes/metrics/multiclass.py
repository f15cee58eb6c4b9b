"""Binary ranking metrics (ROC AUC, average precision) over several classes.

A problem with ``k`` classes becomes ``k`` binary problems (one-vs-rest: class ``c`` against
the others, scored by column ``c`` of ``y_score``) or ``k (k − 1) / 2`` pairs (one-vs-one), and
the binary values are averaged as in scikit-learn:

* ``"macro"``: the plain mean of the per-class values (NaN if a class's value is undefined);
* ``"weighted"``: weighted by the number (total weight) of positives of each class; classes
  without positives get weight 0 (their value is taken as 0), and 0 is returned when no class
  has a positive;
* ``"micro"`` (one-vs-rest only): one binary problem over all ``(sample, class)`` pairs;
* ``None``: the per-class values.

One-vs-one follows Hand & Till (2001): for each pair of classes ``(a, b)``, on the samples of
``a`` or ``b`` only, the AUC of ``a`` against ``b`` scored by column ``a`` and the AUC of ``b``
against ``a`` scored by column ``b`` are averaged; ``"macro"`` averages the pairs equally,
``"weighted"`` by the fraction of samples that belong to the pair.

The binary metric is passed in as ``metric(positive_mask, scores, weights) -> float``.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import Any

import numpy as np

from deepnotes.core.checks import check_choice

Metric = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]


def binarize(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """One-vs-rest indicator ``(n, k)``: ``Y[i, c] = (y[i] == classes[c])``."""
    return y[:, None] == classes[None, :]


def indicator(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """A label-indicator ``y_true (n, k)`` of 0/1 values as booleans, checked against the scores."""
    if y.dtype.kind in "US" or not bool(np.isin(y, (0, 1)).all()):
        raise ValueError("a 2-D y_true must be a label-indicator matrix of 0 and 1 (multilabel)")
    if scores.shape != y.shape:
        raise ValueError(f"y_score must have the shape of y_true {y.shape}, got {scores.shape}")
    return y.astype(bool)


def one_vs_rest(
    metric: Metric, Y: np.ndarray, S: np.ndarray, w: np.ndarray | None, average: Any
) -> float | np.ndarray:
    """Average of ``metric`` over the columns of the indicator ``Y (n, k)`` and scores ``S``."""
    check_choice("average", average, ("macro", "weighted", "micro", None))
    k = Y.shape[1]
    if average == "micro":
        return metric(Y.ravel(), S.ravel(), None if w is None else np.repeat(w, k))
    values = np.array([metric(Y[:, c], S[:, c], w) for c in range(k)])  # a loop over classes
    if average is None:
        return values
    if average == "macro":
        return float(values.mean())
    weights = Y.sum(0) if w is None else (Y * w[:, None]).sum(0)
    if np.isclose(weights.sum(), 0):
        return 0.0
    values[weights == 0] = 0.0  # a class without positives must not turn the mean into NaN
    return float(np.average(values, weights=weights))


def multiclass_auc(
    metric: Metric,
    y: np.ndarray,
    S: np.ndarray,
    w: np.ndarray | None,
    labels: Any,
    multi_class: str,
    average: Any,
) -> float | np.ndarray:
    """ROC AUC of multiclass labels ``y (n,)`` against probabilities ``S (n, k)``."""
    if S.ndim != 2:
        raise ValueError(
            f"y_score must have shape (n_samples, n_classes) for multiclass y_true, got {S.shape}"
        )
    if not np.allclose(1, S.sum(axis=1)):
        raise ValueError(
            "y_score must hold probabilities for multiclass ROC AUC: each row must sum to 1"
        )
    allowed = ("macro", "weighted", None) + (("micro",) if multi_class == "ovr" else ())
    check_choice("average", average, allowed)
    if labels is not None:
        classes = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels)
        if classes.ndim != 1 or len(np.unique(classes)) != len(classes):
            raise ValueError("labels must be a 1-D list of distinct labels")
        if not np.array_equal(np.unique(classes), classes):
            raise ValueError("labels must be sorted")
        if len(classes) != S.shape[1]:
            raise ValueError(
                f"labels has {len(classes)} classes but y_score has {S.shape[1]} columns"
            )
        if len(np.setdiff1d(y, classes)):
            raise ValueError("y_true contains labels that are not in labels")
    else:
        classes = np.unique(y)
        if len(classes) != S.shape[1]:
            raise ValueError(
                f"y_true has {len(classes)} classes but y_score has {S.shape[1]} columns; "
                "pass labels to name the columns"
            )
    if multi_class == "ovr":
        return one_vs_rest(metric, binarize(y, classes), S, w, average)
    if w is not None:
        raise ValueError("sample_weight is not supported for multi_class='ovo'")
    if average is None:
        raise ValueError("average=None is not available for multi_class='ovo'")
    codes = np.searchsorted(classes, y)
    present = np.unique(codes)
    pair_values, prevalence = [], []
    for a, b in combinations(present.tolist(), 2):  # a loop over pairs of classes
        in_a, in_b = codes == a, codes == b
        pair = in_a | in_b
        auc_a = metric(in_a[pair], S[pair, a], None)
        auc_b = metric(in_b[pair], S[pair, b], None)
        pair_values.append((auc_a + auc_b) / 2)
        prevalence.append(pair.mean())
    if average == "weighted":
        return float(np.average(pair_values, weights=prevalence))
    return float(np.mean(pair_values))
