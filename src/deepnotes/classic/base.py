"""Shared plumbing of the classic estimators: scikit-learn conventions on torch tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d, validate_data

from deepnotes.core.checks import as_tensor, check_tensor


class NotFittedError(SklearnNotFittedError):
    """An estimator was used before ``fit`` (scikit-learn's ``NotFittedError``: a ``ValueError``
    and an ``AttributeError``)."""


def as_matrix(name: str, X: Any, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A finite, non-empty floating ``(n_samples, n_features)`` tensor; images are flattened.

    Arrays and lists are converted (float64 as in scikit-learn); integer tensors become float64.
    """
    X = as_tensor(name, X)
    if not X.is_floating_point():
        X = X.to(torch.float64)
    if dtype is not None:
        X = X.to(dtype)
    if X.dim() == 1:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features) or images, got a 1-D array")
    if X.dim() > 2:
        X = X.reshape(X.shape[0], -1)
    return check_tensor(name, X, finite=True, nonempty=True)


def as_labels(name: str, y: Any, n: int) -> torch.Tensor:
    """Integer class labels of length ``n`` as a 1-D int64 tensor."""
    y = as_tensor(name, y)
    if y.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(y.shape)}")
    if y.is_floating_point():
        if not bool((y == y.round()).all()):
            raise ValueError(f"{name} must hold integer class labels")
    if len(y) != n:
        raise ValueError(f"{name} has {len(y)} labels but X has {n} samples")
    return y.to(torch.int64)


def check_fitted(est: Any, attr: str) -> None:
    if not hasattr(est, attr):
        raise NotFittedError(f"this {type(est).__name__} is not fitted yet; call fit first")


# ------------------------------------------------- scikit-learn's estimator contract (numpy side)
def check_X(est: Any, X: Any, *, reset: bool, dtype: torch.dtype | None = None):
    """``(X as a 2-D float tensor, whether X was a tensor)``; records or checks ``n_features_in_``.

    Tensors go through :func:`as_matrix` (images flattened, device kept). Everything else goes
    through scikit-learn's ``validate_data`` (its messages for NaN, sparse, complex, 1-D or
    empty input, and for a wrong number of features), then becomes a tensor sharing memory.
    """
    if isinstance(X, torch.Tensor):
        t = as_matrix("X", X, dtype=dtype)
        n_features = t.shape[1]
        if reset:
            est.n_features_in_ = n_features
        elif n_features != est.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(est).__name__} is expecting "
                f"{est.n_features_in_} features as input."
            )
        return t, True
    if (isinstance(X, (str, bytes, dict)) and not issparse(X)) or X is None:
        raise TypeError(f"X must be an array-like or a tensor, got {type(X).__name__}")
    if isinstance(X, np.ndarray) and X.ndim > 2:  # images: one row per sample
        X = X.reshape(X.shape[0], -1)
    arr = validate_data(est, X, reset=reset, dtype=[np.float64, np.float32])
    t = torch.from_numpy(np.require(arr, requirements=["W"]))  # a read-only array is copied
    return (t if dtype is None else t.to(dtype)), False


def encode_labels(y: Any, n: int) -> tuple[np.ndarray, torch.Tensor]:
    """Sorted classes (numpy, any label type) and each sample's class index as int64 tensor.

    A column ``(n, 1)`` is flattened with scikit-learn's ``DataConversionWarning``; continuous
    or multi-output targets raise scikit-learn's ``ValueError("Unknown label type ...")``.
    """
    if y is None:
        raise ValueError("this estimator requires y to be passed, but the target y is None")
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.ndim == 0 or arr.shape[0] != n:
        got = 1 if arr.ndim == 0 else arr.shape[0]
        raise ValueError(f"y has {got} labels but X has {n} samples")
    arr = column_or_1d(arr, warn=True)
    check_classification_targets(arr)
    classes, codes = np.unique(arr, return_inverse=True)
    return classes, torch.from_numpy(codes.astype(np.int64).reshape(-1))


def like_input(out: torch.Tensor | np.ndarray, was_tensor: bool, device: Any = None):
    """numpy in → numpy out, torch in → torch out (labels that are not numbers stay numpy)."""
    if was_tensor:
        if isinstance(out, np.ndarray):
            if out.dtype.kind not in "biuf":
                return out
            out = torch.from_numpy(out)
        return out if device is None else out.to(device)
    return out.cpu().numpy() if isinstance(out, torch.Tensor) else out
