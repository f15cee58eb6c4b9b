"""Shared plumbing of the classic estimators: scikit-learn conventions on torch tensors."""

from __future__ import annotations

from typing import Any

import torch

from deepnotes.core.checks import as_tensor, check_tensor


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit`` (a ``ValueError`` like scikit-learn's)."""


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
