"""Principal component analysis by SVD of the centred data (an overfitting remedy: fewer features).

``X - mean = U S Vᵀ``; the components are the rows of ``Vᵀ``, the explained variance ``S² / (n - 1)``.
Signs are fixed as scikit-learn's ``svd_flip`` does (the largest-magnitude entry of each column of
``U`` positive), though results should be compared up to sign.
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import as_tensor, check_float, check_int


class PCA:
    """Project onto the top principal components.

    Parameters
    ----------
    n_components : int, float in (0, 1), or None
        Number of components; a float keeps the fewest components whose explained-variance ratio
        sums to at least it (scikit-learn's rule); ``None`` keeps ``min(n_samples, n_features)``.

    Attributes
    ----------
    mean_ : Tensor[F]
    components_ : Tensor[K, F]
    explained_variance_ : Tensor[K]
    explained_variance_ratio_ : Tensor[K]
    singular_values_ : Tensor[K]
    n_components_ : int
    """

    def __init__(self, n_components: int | float | None = None):
        if isinstance(n_components, float):
            check_float("n_components", n_components, min=0.0, max=1.0, min_inclusive=False, max_inclusive=False)
        elif n_components is not None:
            check_int("n_components", n_components, min=1)
        self.n_components = n_components

    def fit(self, X, y=None) -> PCA:
        """Fit on ``X (n_samples, n_features)``, ``n_samples >= 2``."""
        X = as_tensor("X", X)
        if not X.is_floating_point():
            X = X.double()
        if X.dim() != 2 or X.shape[0] < 2:
            raise ValueError(f"X must be 2-D with at least 2 samples, got shape {tuple(X.shape)}")
        if not bool(torch.isfinite(X).all()):
            raise ValueError("X must be finite (found NaN or inf)")
        n, f = X.shape
        self.mean_ = X.mean(0)
        U, S, Vt = torch.linalg.svd(X - self.mean_, full_matrices=False)
        # svd_flip: make the largest |U| entry of each component positive
        signs = torch.sign(U.gather(0, U.abs().argmax(0, keepdim=True))).squeeze(0)
        signs[signs == 0] = 1
        Vt = Vt * signs[:, None]
        var = S**2 / (n - 1)
        total = var.sum()
        ratio = var / total if total > 0 else torch.zeros_like(var)
        k = self.n_components
        if k is None:
            k = min(n, f)
        elif isinstance(k, float):
            k = int(torch.searchsorted(ratio.cumsum(0), torch.tensor(k, dtype=ratio.dtype), right=False)) + 1
            k = min(k, len(var))
        elif k > min(n, f):
            raise ValueError(f"n_components must be <= min(n_samples, n_features) = {min(n, f)}, got {k}")
        self.n_components_ = int(k)
        self.components_ = Vt[:k]
        self.explained_variance_ = var[:k]
        self.explained_variance_ratio_ = ratio[:k]
        self.singular_values_ = S[:k]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise ValueError("this PCA is not fitted yet; call fit(X) first")

    def transform(self, X) -> torch.Tensor:
        """Coordinates ``(n, K)`` of ``X`` on the components."""
        self._check_fitted()
        X = as_tensor("X", X, dtype=self.mean_.dtype)
        if X.dim() != 2 or X.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"X must have shape (n, {self.mean_.shape[0]}), got {tuple(X.shape)}")
        return (X - self.mean_) @ self.components_.T

    def fit_transform(self, X, y=None) -> torch.Tensor:
        return self.fit(X).transform(X)

    def inverse_transform(self, Z) -> torch.Tensor:
        """Back to feature space: ``Z Vₖ + mean`` (the best rank-K reconstruction)."""
        self._check_fitted()
        Z = as_tensor("Z", Z, dtype=self.mean_.dtype)
        return Z @ self.components_ + self.mean_
