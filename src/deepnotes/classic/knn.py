"""Nearest-neighbour and k-nearest-neighbour classifiers (L1 / L2), brute force on tensors.

Distances are computed in chunks of query rows (memory ``chunk_size × n_train``) and the ``k``
smallest are taken with ``topk``. Votes are counted per class; a tie between classes goes to the
smallest class label, as in ``sklearn.neighbors.KNeighborsClassifier`` (its ``mode`` returns the
smallest of the most frequent values).

Example
-------
>>> import torch
>>> X = torch.tensor([[0.0], [1.0], [10.0], [11.0]]); y = torch.tensor([0, 0, 1, 1])
>>> KNNClassifier(k=3).fit(X, y).predict(torch.tensor([[0.4], [9.0]])).tolist()
[0, 1]
"""

from __future__ import annotations

from typing import Any

import torch

from deepnotes.classic.base import as_labels, as_matrix, check_fitted
from deepnotes.core.checks import check_choice, check_int


def pairwise_distances(A: torch.Tensor, B: torch.Tensor, metric: str = "l2", squared: bool = False) -> torch.Tensor:
    """``(n, m)`` distances between rows of ``A (n, d)`` and ``B (m, d)``; ``metric`` ``"l1"`` or ``"l2"``.

    L2 uses ``‖a‖² − 2a·b + ‖b‖²`` (one matrix product, clamped at 0); L1 uses ``torch.cdist``.
    """
    check_choice("metric", metric, ("l1", "l2"))
    if metric == "l1":
        return torch.cdist(A, B, p=1.0)
    d2 = (A * A).sum(1, keepdim=True) - 2 * A @ B.T + (B * B).sum(1)
    d2 = d2.clamp_min_(0)
    return d2 if squared else d2.sqrt()


class KNNClassifier:
    """k-nearest-neighbour classifier with uniform votes.

    Parameters
    ----------
    k : int
        Number of neighbours (``n_neighbors`` in scikit-learn).
    metric : {"l2", "l1"}
        Euclidean or Manhattan distance.
    chunk_size : int
        Query rows per distance block (256 keeps a block of scores near the cache for ``topk``).

    Attributes
    ----------
    classes_ : Tensor[n_classes]
    X_fit_ : Tensor[n_train, n_features]
    y_fit_ : Tensor[n_train]  (indices into ``classes_``)
    """

    def __init__(self, k: int = 5, metric: str = "l2", chunk_size: int = 256):
        self.k = check_int("k", k, min=1)
        self.metric = check_choice("metric", metric, ("l2", "l1"))
        self.chunk_size = check_int("chunk_size", chunk_size, min=1)

    def fit(self, X: Any, y: Any) -> KNNClassifier:
        X = as_matrix("X", X)
        y = as_labels("y", y, X.shape[0])
        if self.k > X.shape[0]:
            raise ValueError(f"k ({self.k}) must be <= the number of training samples ({X.shape[0]})")
        self.classes_, self.y_fit_ = torch.unique(y, return_inverse=True)
        self.X_fit_ = X
        for cached in ("_neg2_xt", "_sq"):
            self.__dict__.pop(cached, None)
        return self

    def kneighbors(self, X: Any, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Distances and indices of the ``k`` nearest training rows, nearest first: ``(n, k)`` each."""
        check_fitted(self, "X_fit_")
        k = self.k if k is None else check_int("k", k, min=1)
        if k > self.X_fit_.shape[0]:
            raise ValueError(f"k ({k}) must be <= the number of training samples ({self.X_fit_.shape[0]})")
        X = as_matrix("X", X, dtype=self.X_fit_.dtype)
        if X.shape[1] != self.X_fit_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features but the model was fitted with {self.X_fit_.shape[1]}")
        dists, idx = [], []
        if self.metric == "l2" and not hasattr(self, "_neg2_xt"):
            # cached once: −2·X (used as a transposed view: the GEMM is faster reading X row-major)
            # and ‖x‖² of the training rows
            self._neg2_xt = (-2.0 * self.X_fit_).T
            self._sq = (self.X_fit_ * self.X_fit_).sum(1)
        for start in range(0, X.shape[0], self.chunk_size):  # chunks bound memory, not a per-sample loop
            q = X[start : start + self.chunk_size]
            if self.metric == "l2":
                # ‖q‖² is constant per row, so ranking needs only ‖b‖² − 2q·b; mm then an in-place add
                # avoids addmm's broadcast copy of the bias into the output
                score = torch.mm(q, self._neg2_xt).add_(self._sq)
                d, i = torch.topk(score, k, dim=1, largest=False, sorted=True)
                d = (d + (q * q).sum(1, keepdim=True)).clamp_min_(0).sqrt_()
            else:
                d, i = torch.topk(torch.cdist(q, self.X_fit_, p=1.0), k, dim=1, largest=False, sorted=True)
            dists.append(d)
            idx.append(i)
        return torch.cat(dists), torch.cat(idx)

    def predict_proba(self, X: Any) -> torch.Tensor:
        """Vote fractions ``(n, n_classes)``, columns ordered as ``classes_``."""
        _, idx = self.kneighbors(X)
        votes = torch.zeros(idx.shape[0], len(self.classes_), dtype=self.X_fit_.dtype, device=idx.device)
        votes.scatter_add_(1, self.y_fit_[idx], torch.ones_like(idx, dtype=votes.dtype))
        return votes / idx.shape[1]

    def predict(self, X: Any) -> torch.Tensor:
        """Majority class of the neighbours; ties go to the smallest label (argmax takes the first)."""
        winner = self.predict_proba(X).argmax(1)
        return self.classes_[winner]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on ``(X, y)``."""
        pred = self.predict(X)
        return float((pred == as_labels("y", y, len(pred))).double().mean())


class NearestNeighbor(KNNClassifier):
    """The nearest-neighbour classifier: each query takes the label of its closest training row (L1 by default)."""

    def __init__(self, metric: str = "l1", chunk_size: int = 256):
        super().__init__(k=1, metric=metric, chunk_size=chunk_size)
