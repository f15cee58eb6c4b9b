"""Regression metrics: MAE, RMSE and MAPE (``sklearn.metrics`` definitions).

Inputs are ``(n,)`` or ``(n, outputs)``; with several outputs each column is scored and the
columns are averaged uniformly (scikit-learn's ``multioutput="uniform_average"``). With
``sample_weight`` every mean over samples is weighted, as in scikit-learn. RMSE is the
square root of each column's MSE, so one outlier weighs quadratically in it and only linearly in
MAE.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_float
from deepnotes.metrics._inputs import check_finite, sample_weights, to_numpy


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for name, value in (("y_true", y_true), ("y_pred", y_pred)):
        arr = to_numpy(name, value)
        if arr.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D or 2-D, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{name} must not be empty")
        check_finite(name, arr)
        out.append(arr.astype(np.float64, copy=False))
    yt, yp = out
    if yt.shape != yp.shape:
        raise ValueError(f"inconsistent shapes: y_true has {yt.shape}, y_pred has {yp.shape}")
    return yt, yp


def _mean(values: np.ndarray, sample_weight: Any) -> np.ndarray:
    """Per-column mean over the samples, weighted by ``sample_weight`` if given."""
    w = sample_weights(sample_weight, values.shape[0])
    if w is None:
        return np.mean(values, axis=0)
    if w.sum() == 0:
        raise ValueError("sample_weight sums to zero: the weighted mean is undefined")
    return np.average(values, axis=0, weights=w.astype(np.float64))


def mae(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> float:
    """Mean absolute error ``mean |y − ŷ|`` (``mean_absolute_error``).

    Examples
    --------
    >>> mae([3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0])
    0.5
    """
    yt, yp = _pair(y_true, y_pred)
    return float(_mean(np.abs(yp - yt), sample_weight).mean())


def rmse(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> float:
    """Root mean squared error ``sqrt(mean (y − ŷ)²)`` (``root_mean_squared_error``).

    Examples
    --------
    >>> rmse([0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 5.0])
    2.6457513110645907
    """
    yt, yp = _pair(y_true, y_pred)
    return float(np.sqrt(_mean((yp - yt) ** 2, sample_weight)).mean())


def mape(
    y_true: Any, y_pred: Any, *, epsilon: float | None = None, sample_weight: Any = None
) -> float:
    """Mean absolute percentage error ``mean |y − ŷ| / |y|``, as a fraction (not in %).

    Zero targets: the ratio is undefined there, and libraries disagree on a fix — scikit-learn
    divides by machine epsilon (about 1.5e14 per unit of error), torchmetrics by 1.17e-6. Our
    policy: by default a zero in ``y_true`` raises ``ValueError``; pass ``epsilon`` to divide by
    ``max(|y|, epsilon)`` instead (``epsilon=np.finfo(np.float64).eps`` reproduces scikit-learn
    exactly). Without zero targets the result equals ``mean_absolute_percentage_error``.

    Parameters
    ----------
    y_true, y_pred : array-like or Tensor of shape (n,) or (n, outputs)
    epsilon : float, optional
        Positive floor for ``|y|``.
    sample_weight : array-like of shape (n,), optional

    Examples
    --------
    >>> mape([1.0, 2.0, 4.0], [1.5, 2.0, 3.0])
    0.25
    """
    yt, yp = _pair(y_true, y_pred)
    denom = np.abs(yt)
    if epsilon is None:
        if not bool((denom > 0).all()):
            raise ValueError(
                "y_true contains zeros, where MAPE is undefined; pass epsilon to floor |y_true|"
            )
    else:
        denom = np.maximum(denom, check_float("epsilon", epsilon, min=0.0, min_inclusive=False))
    return float(_mean(np.abs(yp - yt) / denom, sample_weight).mean())
