"""Univariate feature scores for classification: the ANOVA F statistic and Pearson's chi².

Each feature is scored on its own against the class labels, as ``sklearn.feature_selection``'s
``f_classif`` and ``chi2`` do (same names, same outputs, same NaN cases). Both return
``(scores, p_values)``, one entry per feature; numpy in → numpy out, torch in → torch out.

ANOVA F (classes ``c`` with ``n_c`` samples, ``k`` classes, ``n`` samples, ``x̄_c`` class means,
``x̄`` the overall mean)::

    SSB = Σ_c n_c (x̄_c − x̄)²            between-class sum of squares, k − 1 degrees of freedom
    SSW = Σ_i (x_i − x̄_{c_i})²           within-class sum of squares,  n − k degrees of freedom
    F   = (SSB / (k − 1)) / (SSW / (n − k)),   p = P(F_{k−1, n−k} > F)

Chi² (``X`` non-negative, read as counts; ``O_cj = Σ_{i in c} x_ij`` the observed total of
feature ``j`` in class ``c``, ``E_cj = (n_c / n) Σ_i x_ij`` its expected total if the feature did
not depend on the class)::

    chi²_j = Σ_c (O_cj − E_cj)² / E_cj,   p = P(chi²_{k−1} > chi²_j)

Degenerate input (the results scikit-learn gives):

* a constant feature has ``SSB = SSW = 0``: ``F = NaN``, ``p = NaN`` (with a ``UserWarning``);
  a feature constant inside every class but not overall has ``F = inf``, ``p = 0``;
* one class only, or one sample per class: ``F = NaN``; one class only: ``chi² = NaN``;
* a feature that is zero everywhere: ``chi² = NaN`` (``0 / 0``).

The means are taken relative to the first sample of each class (``x̄_c = x_first + mean(x −
x_first)``), so a column that is constant (in a class) has exactly zero deviations and the cases
above come out exactly. scikit-learn sums raw squares instead (``Σx² − (Σx)²/n``), which agrees
to rounding on data whose mean is not much larger than its spread.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from scipy import special
from scipy.sparse import issparse
from sklearn.utils import check_array
from sklearn.utils.validation import column_or_1d

from deepnotes.classic.base import as_matrix, like_input


def _features(X: Any) -> tuple[torch.Tensor, bool]:
    """``(X as a finite 2-D float tensor, whether X was a tensor)``; arrays go through
    scikit-learn's ``check_array`` (its messages for NaN, 1-D, empty or sparse input)."""
    if isinstance(X, torch.Tensor):
        return as_matrix("X", X), True
    if X is None or (isinstance(X, (str, bytes, dict)) and not issparse(X)):
        raise TypeError(f"X must be an array-like or a tensor, got {type(X).__name__}")
    return torch.from_numpy(check_array(X, dtype=(np.float64, np.float32), copy=True)), False


def _class_codes(y: Any, n: int) -> tuple[torch.Tensor, int]:
    """Each sample's class index (classes = the sorted distinct values of ``y``) and the class count."""
    if y is None:
        raise ValueError("y is required: the scores compare features with the class labels, got None")
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(f"y must hold one label per sample: X has {n} samples, y has shape {arr.shape}")
    arr = column_or_1d(arr, warn=True)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("y must not contain NaN or inf")
    classes, codes = np.unique(arr, return_inverse=True)
    return torch.from_numpy(codes.astype(np.int64).reshape(-1)), len(classes)


def _p_values(sf, *args, like: torch.Tensor) -> torch.Tensor:
    """A scipy survival function evaluated on CPU numpy, returned as a tensor like ``like``."""
    p = sf(*args[:-1], args[-1].detach().cpu().numpy())
    return torch.as_tensor(np.asarray(p), dtype=like.dtype).to(like.device)


def f_classif(X: Any, y: Any):
    """ANOVA F statistic and its p-value for each feature of ``X (n_samples, n_features)``
    against the class labels ``y (n_samples,)``.

    Returns
    -------
    f_statistic : ndarray or Tensor [n_features]
    p_values : ndarray or Tensor [n_features]
    """
    X, was_tensor = _features(X)
    n = X.shape[0]
    codes, k = _class_codes(y, n)
    codes = codes.to(X.device)
    n_c = torch.bincount(codes, minlength=k).to(X.dtype)
    # first sample of each class: means are measured from it, so constant columns cancel exactly
    first = torch.full((k,), n, dtype=torch.int64, device=X.device)
    first.scatter_reduce_(0, codes, torch.arange(n, device=X.device), reduce="amin")
    origin = X[first]                                                     # (k, F)
    class_mean = origin + torch.zeros_like(origin).index_add_(0, codes, X - origin[codes]) / n_c[:, None]
    mean = X[0] + (X - X[0]).mean(0)
    ssb = (n_c[:, None] * (class_mean - mean) ** 2).sum(0)               # between classes
    ssw = ((X - class_mean[codes]) ** 2).sum(0)                           # within classes
    df_between, df_within = k - 1, n - k
    if df_between > 0 and df_within > 0:
        f = (ssb / df_between) / (ssw / df_within)
    else:  # one class, or one sample per class: no F test
        f = torch.full_like(ssb, float("nan"))
    constant = ((ssb == 0) & (ssw == 0)).nonzero().flatten()
    if len(constant):
        warnings.warn(f"Features {constant.tolist()} are constant: their F statistic is NaN.", UserWarning,
                      stacklevel=2)
    p = _p_values(special.fdtrc, df_between, df_within, f, like=f)
    return like_input(f, was_tensor), like_input(p, was_tensor)


def chi2(X: Any, y: Any):
    """Pearson's chi² statistic and its p-value for each non-negative feature of
    ``X (n_samples, n_features)`` (counts or frequencies) against the class labels ``y``.

    Returns
    -------
    chi2 : ndarray or Tensor [n_features]
    p_values : ndarray or Tensor [n_features]
    """
    X, was_tensor = _features(X)
    if bool((X < 0).any()):
        raise ValueError("Negative values in data passed to chi2: X must be non-negative (counts or "
                         f"frequencies), found {float(X.min())}")
    codes, k = _class_codes(y, X.shape[0])
    Y = torch.nn.functional.one_hot(codes.to(X.device), num_classes=max(k, 2)).to(X.dtype)  # (n, k)
    # one class only: an empty second class, whose 0 / 0 makes every score NaN (scikit-learn's result)
    observed = Y.T @ X                                                    # (k, F)
    expected = Y.mean(0)[:, None] * X.sum(0)[None, :]
    stat = ((observed - expected) ** 2 / expected).sum(0)
    p = _p_values(special.chdtrc, Y.shape[1] - 1, stat, like=stat)
    return like_input(stat, was_tensor), like_input(p, was_tensor)
