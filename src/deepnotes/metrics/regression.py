"""Regression metrics: MAE, RMSE and MAPE (``sklearn.metrics`` definitions).

Inputs are ``(n,)`` or ``(n, outputs)``; with several outputs each column is scored and the
columns are averaged uniformly (scikit-learn's ``multioutput="uniform_average"``). RMSE is the
square root of each column's MSE, so one outlier weighs quadratically in it and only linearly in
MAE.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_float
from deepnotes.metrics._inputs import check_finite, to_numpy


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


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error ``mean |y − ŷ|`` (``mean_absolute_error``).

    Examples
    --------
    >>> mae([3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0])
    0.5
    """
    yt, yp = _pair(y_true, y_pred)
    return float(np.mean(np.abs(yp - yt), axis=0).mean())


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error ``sqrt(mean (y − ŷ)²)`` (``root_mean_squared_error``).

    Examples
    --------
    >>> rmse([0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 5.0])
    2.6457513110645907
    """
    yt, yp = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((yp - yt) ** 2, axis=0)).mean())


def mape(y_true: Any, y_pred: Any, *, epsilon: float | None = None) -> float:
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
    return float(np.mean(np.abs(yp - yt) / denom, axis=0).mean())
