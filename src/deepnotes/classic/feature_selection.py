"""Feature selection: keep the k best-scoring features, or drop the (near-)constant ones.

Fewer input features mean fewer weights to fit, one of the notes' remedies for overfitting (the
other half, feature extraction, is :class:`~deepnotes.classic.PCA`). Both selectors follow
``sklearn.feature_selection`` (names, parameters, fitted attributes, ties and NaN) and are
scikit-learn estimators (``clone``, ``Pipeline``, ``GridSearchCV``). numpy in → numpy out, torch
in → torch out: fitted attributes follow the input of ``fit``, ``transform`` its own input.

* :class:`SelectKBest` scores every feature with ``score_func(X, y)`` (default the ANOVA
  :func:`~deepnotes.classic.f_classif`) and keeps the ``k`` highest. A NaN score counts as the
  lowest finite number of its type; among equal scores the feature with the higher index wins
  (scikit-learn takes the last ``k`` of a stable ascending sort).
* :class:`VarianceThreshold` keeps the features whose variance exceeds ``threshold``; NaN entries
  are ignored when fitting. With ``threshold=0`` the recorded value is ``min(variance,
  max − min)`` so that a constant column reads exactly 0 (scikit-learn's rule; for a column with
  a range above 4 this records the range, not the variance).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import validate_data

from deepnotes.classic.base import check_fitted, check_X, like_input
from deepnotes.classic.feature_scores import chi2, f_classif
from deepnotes.core.checks import as_tensor, check_float, check_int


def _check_array_like(X: Any) -> None:
    """Reject what is no array at all (sparse matrices go on to scikit-learn's own message)."""
    if X is None or (isinstance(X, (str, bytes, dict)) and not issparse(X)):
        raise TypeError(f"X must be an array-like or a tensor, got {type(X).__name__}")


def _check_transform_input(est: Any, X: Any, *, finite: bool) -> tuple[Any, bool]:
    """``(X as a 2-D array or tensor of its own dtype, whether it was a tensor)`` with the fitted
    number of features; ``finite=False`` lets NaN and inf through (nothing is computed on them)."""
    if isinstance(X, torch.Tensor):
        if X.dim() == 1:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}")
        X = X.reshape(X.shape[0], -1) if X.dim() > 2 else X
        if finite and X.is_floating_point() and not bool(torch.isfinite(X).all()):
            raise ValueError("X must be finite (found NaN or inf)")
        if X.shape[1] != est.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
                             f"{est.n_features_in_} features as input.")
        return X, True
    _check_array_like(X)
    if isinstance(X, np.ndarray) and X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    return validate_data(est, X, dtype=None, reset=False, ensure_all_finite=finite), False


def _as_output(v: Any, was_tensor: bool):
    """A score function's result as a tensor (tensor fit) or a numpy array (array fit)."""
    if isinstance(v, torch.Tensor):
        return v if was_tensor else v.detach().cpu().numpy()
    return torch.as_tensor(np.asarray(v)) if was_tensor else np.asarray(v)


class _Selector(TransformerMixin, BaseEstimator):
    """What every selector shares: a boolean mask over the input features (``_mask``, a tensor)."""

    _finite_transform = True
    _fitted_attr = "n_features_in_"  # set by each selector once fit has succeeded

    def _mask(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_support(self, indices: bool = False):
        """Boolean mask ``(n_features_in_,)`` of the kept features, or their indices."""
        check_fitted(self, self._fitted_attr)
        mask = self._mask()
        return like_input(mask.nonzero().flatten() if indices else mask, self._fitted_on_tensor)

    def transform(self, X: Any):
        """The kept columns of ``X``; ``(n_samples, 0)`` with a warning when none is kept."""
        check_fitted(self, self._fitted_attr)
        X, was_tensor = _check_transform_input(self, X, finite=self._finite_transform)
        mask = self._mask()
        if not bool(mask.any()):
            warnings.warn("No features were selected: either the data is too noisy or the selection test "
                          "too strict.", UserWarning, stacklevel=2)
        if was_tensor:
            return X[:, mask.to(X.device)]
        return X[:, mask.numpy()]

    def inverse_transform(self, X: Any):
        """Back to ``n_features_in_`` columns, zeros where features were dropped."""
        check_fitted(self, self._fitted_attr)
        was_tensor = isinstance(X, torch.Tensor)
        Xt = as_tensor("X", X)
        if Xt.dim() == 1:
            Xt = Xt[None, :]
        mask = self._mask().to(Xt.device)
        if Xt.dim() != 2 or Xt.shape[1] != int(mask.sum()):
            raise ValueError(f"X must have {int(mask.sum())} columns (the kept features), got shape "
                             f"{tuple(Xt.shape)}")
        out = Xt.new_zeros((Xt.shape[0], mask.shape[0]))
        out[:, mask] = Xt
        return like_input(out, was_tensor)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the kept features (``x0, x1, ...`` unless fitted on named columns)."""
        check_fitted(self, self._fitted_attr)
        names = getattr(self, "feature_names_in_", None)
        if input_features is not None:
            input_features = np.asarray(input_features, dtype=object)
            if len(input_features) != self.n_features_in_:
                raise ValueError(f"input_features should have length equal to number of features "
                                 f"({self.n_features_in_}), got {len(input_features)}")
            if names is not None and not np.array_equal(names, input_features):
                raise ValueError("input_features is not equal to feature_names_in_")
            names = input_features
        if names is None:
            names = np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        return np.asarray(names, dtype=object)[self._mask().cpu().numpy()]


class SelectKBest(_Selector):
    """Keep the ``k`` features with the highest scores.

    Parameters
    ----------
    score_func : callable
        ``score_func(X, y)`` returns ``(scores, p_values)`` or ``scores``, one per feature; it is
        given ``X`` as a float tensor if ``fit`` got a tensor, else as a numpy array. Default
        :func:`~deepnotes.classic.f_classif`.
    k : int >= 0 or "all"
        Number of features to keep; more than ``n_features`` keeps all of them (with a warning).

    Attributes
    ----------
    scores_ : ndarray or Tensor [n_features]
    pvalues_ : ndarray or Tensor [n_features], or None when ``score_func`` gives scores only
    n_features_in_ : int
    """

    _fitted_attr = "scores_"

    def __init__(self, score_func: Callable = f_classif, *, k: int | str = 10):
        self.score_func = score_func
        self.k = k

    def _check_params(self, n_features: int) -> None:
        if not callable(self.score_func):
            raise TypeError(f"score_func must be a callable (X, y) -> scores, got {type(self.score_func).__name__}")
        if isinstance(self.k, str):
            if self.k != "all":
                raise ValueError(f"k must be an int >= 0 or 'all', got {self.k!r}")
        else:
            try:
                check_int("k", self.k, min=0)
            except TypeError as exc:
                raise TypeError(f"k must be an int >= 0 or 'all', got {type(self.k).__name__}") from exc
            if self.k > n_features:
                warnings.warn(f"k={self.k} is greater than n_features={n_features}. All the features will be "
                              "returned.", UserWarning, stacklevel=3)

    def fit(self, X: Any, y: Any = None) -> SelectKBest:
        """Score every feature of ``X (n_samples, n_features)`` against ``y``."""
        Xt, was_tensor = check_X(self, X, reset=True)
        self._check_params(Xt.shape[1])
        out = self.score_func(Xt if was_tensor else Xt.numpy(), y)
        scores, pvalues = out if isinstance(out, (list, tuple)) else (out, None)
        self._scores = as_tensor("scores", scores).detach().reshape(-1).cpu()
        if len(self._scores) != Xt.shape[1]:
            raise ValueError(f"score_func must return one score per feature ({Xt.shape[1]}), "
                             f"got {len(self._scores)}")
        self._fitted_on_tensor = was_tensor
        self.scores_ = _as_output(scores, was_tensor)
        self.pvalues_ = None if pvalues is None else _as_output(pvalues, was_tensor)
        return self

    def _mask(self) -> torch.Tensor:
        n = len(self._scores)
        if self.k == "all":
            return torch.ones(n, dtype=torch.bool)
        mask = torch.zeros(n, dtype=torch.bool)
        if self.k == 0:
            return mask
        # NaN ranks as the lowest finite number (below every real score, above -inf); float64 keeps
        # the order and the ties of any score dtype
        scores = self._scores.to(torch.float64)
        scores = torch.where(scores.isnan(), torch.finfo(torch.float64).min, scores)
        order = torch.sort(scores, stable=True).indices  # ascending; equal scores keep index order
        mask[order[-self.k:]] = True
        return mask

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self.score_func is chi2  # chi2 scores counts
        return tags


class VarianceThreshold(_Selector):
    """Drop the features whose variance is at most ``threshold`` (by default: the constant ones).

    Parameters
    ----------
    threshold : float >= 0

    Attributes
    ----------
    variances_ : ndarray or Tensor [n_features] (float64)
        Population variance (divided by ``n``) of each feature, NaN entries ignored; with
        ``threshold=0`` the smaller of it and the range ``max − min``.
    n_features_in_ : int

    ``fit`` raises ``ValueError`` when no feature passes. NaN is allowed in ``X`` (ignored in
    ``fit``, passed through by ``transform``); inf is rejected by ``fit``.
    """

    _finite_transform = False
    _fitted_attr = "variances_"

    def __init__(self, threshold: float = 0.0):
        self.threshold = threshold

    def fit(self, X: Any, y: Any = None) -> VarianceThreshold:
        """Record the variance of each feature of ``X (n_samples, n_features)``."""
        threshold = check_float("threshold", self.threshold, min=0.0)
        if isinstance(X, torch.Tensor):
            Xt = as_tensor("X", X, dtype=torch.float64)
            if Xt.dim() < 2 or Xt.numel() == 0:
                raise ValueError(f"X must be a non-empty 2-D tensor (n_samples, n_features), got shape "
                                 f"{tuple(Xt.shape)}")
            Xt = Xt.reshape(Xt.shape[0], -1)
            if bool(Xt.isinf().any()):
                raise ValueError("X must not contain inf (NaN entries are ignored)")
            self.n_features_in_ = Xt.shape[1]
            was_tensor = True
        else:
            _check_array_like(X)
            if isinstance(X, np.ndarray) and X.ndim > 2:
                X = X.reshape(X.shape[0], -1)
            Xt = torch.from_numpy(validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan"))
            was_tensor = False
        mean = Xt.nanmean(0)
        var = ((Xt - mean) ** 2).nanmean(0)  # NaN for an all-NaN column
        if threshold == 0:  # a constant column reads exactly 0 whatever the rounding of its mean
            var = torch.fmin(var, Xt.amax(0) - Xt.amin(0))
        self._variances = var.cpu()
        self._fitted_on_tensor = was_tensor
        if not bool((var.isfinite() & (var > threshold)).any()):
            one = " (X contains only one sample)" if Xt.shape[0] == 1 else ""
            raise ValueError(f"No feature in X meets the variance threshold {threshold:.5f}{one}")
        self.variances_ = like_input(var, was_tensor)
        return self

    def _mask(self) -> torch.Tensor:
        return self._variances > self.threshold

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
