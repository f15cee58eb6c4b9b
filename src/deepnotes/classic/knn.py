"""Nearest-neighbour and k-nearest-neighbour classifiers (L1 / L2), brute force on tensors.

L2 neighbours come from :class:`deepnotes.classic.neighbors_fast.NeighborIndex` (built once per fit: a
certified low-precision filter, then exact float64 ranking); L1 distances are computed in chunks
of query rows (memory ``chunk_size × n_train``) and the ``k`` smallest taken with
:func:`smallest_k`. Equal distances go to the smaller training index. Votes are counted per
class; a tie between classes goes to the smallest class label, as in ``sklearn.neighbors.KNeighborsClassifier`` (its ``mode`` returns the
smallest of the most frequent values).

Example
-------
>>> import torch
>>> X = torch.tensor([[0.0], [1.0], [10.0], [11.0]]); y = torch.tensor([0, 0, 1, 1])
>>> KNNClassifier(n_neighbors=3).fit(X, y).predict(torch.tensor([[0.4], [9.0]])).tolist()
[0, 1]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import column_or_1d

from deepnotes.classic.base import check_fitted, check_X, encode_labels, like_input
from deepnotes.classic.neighbors import finite
from deepnotes.classic.neighbors import first_k as neighbor_first_k
from deepnotes.classic.neighbors_fast import NeighborIndex
from deepnotes.core.checks import check_choice, check_int
from deepnotes.metrics.classification import accuracy


def pairwise_distances(A: torch.Tensor, B: torch.Tensor, metric: str = "l2", squared: bool = False) -> torch.Tensor:
    """``(n, m)`` distances between rows of ``A (n, d)`` and ``B (m, d)``; ``metric`` ``"l1"`` or ``"l2"``.

    L2 uses ``‖a‖² − 2a·b + ‖b‖²`` (one matrix product, clamped at 0); L1 uses ``torch.cdist``.
    NaN or infinite values raise ``ValueError``, as in ``sklearn.metrics.pairwise_distances``.
    """
    check_choice("metric", metric, ("l1", "l2"))
    for name, X in (("A", A), ("B", B)):
        if not isinstance(X, torch.Tensor) or X.dim() != 2:
            raise ValueError(f"{name} must be a 2-d tensor (n, d)")
        if not finite(X):
            raise ValueError(f"{name} contains NaN or infinite values")
    if metric == "l1":
        return torch.cdist(A, B, p=1.0)
    d2 = (A * A).sum(1, keepdim=True) - 2 * A @ B.T + (B * B).sum(1)
    d2 = d2.clamp_min_(0)
    return d2 if squared else d2.sqrt()


def _first_k(vals: torch.Tensor, k: int, cols: torch.Tensor | None = None):
    """``k`` smallest of each row of ``vals`` and their columns, equal values by smaller column.

    ``cols`` maps positions to columns (default: the positions themselves); the tie rule is the
    neighbour search's (:func:`deepnotes.classic.neighbors.first_k`).
    """
    if cols is None:
        cols = torch.arange(vals.shape[1], device=vals.device).expand_as(vals)
    return neighbor_first_k(vals, cols, k)


def smallest_k(S: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest values of each row of ``S (n, m)`` and their columns, ascending: ``(n, k)`` each.

    Ties go to the smaller column, like scikit-learn's brute-force search (its heap keeps the
    first of equal distances when it processes them in order). Faster than ``torch.topk`` over
    whole rows for ``k ≪ m``: the first ``B · nb``
    columns are split into ``nb`` strided groups ``{b, b + nb, b + 2·nb, …}`` of ``B ≈ √(m/k)``
    columns; one ``amin`` over the middle axis of the ``(n, B, nb)`` view (vectorized across
    groups: a reduction over short contiguous blocks was 6× slower) gives every group's minimum.
    With ``t`` the k-th smallest group minimum, the ``k`` groups whose minimum is ``<= t`` hold
    every value ``<= t``, hence the ``k`` smallest values and all values tied with them; the
    selection then runs on their ``k · B`` columns plus the ragged tail, gathered in increasing
    column order as in the full row. When ties at ``t`` make more than ``k`` groups qualify, the
    chunk falls back to the whole rows.
    """
    n, m = S.shape
    B = max(8, int(math.sqrt(m / k)))
    nb = m // B
    if nb <= 2 * k:  # too few groups to prune anything
        return _first_k(S, k)
    gmin = S[:, : nb * B].unflatten(1, (B, nb)).amin(1)
    t = torch.topk(gmin, k, dim=1, largest=False).values[:, -1:]
    chosen = gmin <= t
    if not bool((chosen.sum(1) == k).all()):
        return _first_k(S, k)
    groups = chosen.nonzero()[:, 1].view(n, 1, k)  # ascending group ids per row
    cols = (groups + nb * torch.arange(B, device=S.device).view(1, B, 1)).view(n, B * k)
    if nb * B < m:
        cols = torch.cat([cols, torch.arange(nb * B, m, device=S.device).expand(n, -1)], 1)
    return _first_k(S.gather(1, cols), k, cols)

_METRICS = {"l2": "l2", "euclidean": "l2", "l1": "l1", "manhattan": "l1"}


class KNNClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbour classifier with uniform votes (a scikit-learn estimator).

    Parameters
    ----------
    n_neighbors : int
        Number of neighbours, as in ``sklearn.neighbors.KNeighborsClassifier``.
    metric : {"l2", "l1"} (or "euclidean", "manhattan")
        Euclidean or Manhattan distance.
    chunk_size : int
        Query rows per distance block (L1: 128 keeps a 10 MB block of scores for 10,000 training
        rows in L3 between ``cdist`` and the selection; L2 blocks are capped at 256 rows).
    k : int, optional
        The former name of ``n_neighbors``; when given it takes precedence.

    Parameters are checked in ``fit`` (scikit-learn's contract: ``__init__`` only stores them),
    so ``clone``, ``get_params``/``set_params``, ``Pipeline`` and ``cross_val_score`` work.
    Labels may be of any type ``np.unique`` sorts (numbers, strings). numpy in → numpy out,
    torch in → torch out (predictions, probabilities, neighbours).

    Attributes
    ----------
    classes_ : ndarray[n_classes]
    n_features_in_ : int
    X_fit_ : Tensor[n_train, n_features]
    y_fit_ : Tensor[n_train]  (indices into ``classes_``)
    """

    def __init__(
        self, n_neighbors: int = 5, metric: str = "l2", chunk_size: int = 128, *, k: int | None = None
    ):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.chunk_size = chunk_size
        self.k = k

    def _n_neighbors(self) -> int:
        if self.k is not None:
            return check_int("k", self.k, min=1)
        return check_int("n_neighbors", self.n_neighbors, min=1)

    def _metric(self) -> str:
        return _METRICS[check_choice("metric", self.metric, tuple(_METRICS))]

    def fit(self, X: Any, y: Any) -> KNNClassifier:
        k, metric = self._n_neighbors(), self._metric()
        check_int("chunk_size", self.chunk_size, min=1)
        X, _ = check_X(self, X, reset=True)
        self.classes_, self.y_fit_ = encode_labels(y, X.shape[0])
        self.y_fit_ = self.y_fit_.to(X.device)
        if k > X.shape[0]:
            name = "k" if self.k is not None else "n_neighbors"
            raise ValueError(f"{name} ({k}) must be <= n_samples={X.shape[0]} (training samples)")
        self.X_fit_ = X
        # built here, not on the first query: predicting must not change the fitted estimator
        self._index = NeighborIndex(X) if metric == "l2" else None
        return self

    def kneighbors(
        self, X: Any, n_neighbors: int | None = None, return_distance: bool = True, *, k: int | None = None
    ):
        """Distances and indices of the nearest training rows, nearest first: ``(n, k)`` each."""
        check_fitted(self, "X_fit_")
        Xt, was_tensor = check_X(self, X, reset=False, dtype=self.X_fit_.dtype)
        n_neighbors = k if k is not None else n_neighbors
        d, i = self._kneighbors(Xt, n_neighbors)
        if not return_distance:
            return like_input(i, was_tensor)
        return like_input(d, was_tensor), like_input(i, was_tensor)

    def _kneighbors(self, X: torch.Tensor, k: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        k = self._n_neighbors() if k is None else check_int("n_neighbors", k, min=1)
        if k > self.X_fit_.shape[0]:
            raise ValueError(f"n_neighbors ({k}) must be <= n_samples={self.X_fit_.shape[0]} (training samples)")
        X = X.to(self.X_fit_.device)
        if self._metric() == "l2":
            return self._index.query(X, k, chunk_size=self.chunk_size, return_distance=True)
        dists, idx = [], []
        chunk = min(self.chunk_size, X.shape[0])
        for start in range(0, X.shape[0], chunk):  # chunks bound memory, not a per-sample loop
            d, i = smallest_k(torch.cdist(X[start : start + chunk], self.X_fit_, p=1.0), k)
            dists.append(d)
            idx.append(i)
        return torch.cat(dists), torch.cat(idx)

    def _proba(self, X: torch.Tensor) -> torch.Tensor:
        _, idx = self._kneighbors(X, None)  # (n, k): the vote below is small
        votes = torch.zeros(idx.shape[0], len(self.classes_), dtype=self.X_fit_.dtype, device=idx.device)
        votes.scatter_add_(1, self.y_fit_[idx], torch.ones_like(idx, dtype=votes.dtype))
        return votes / idx.shape[1]

    def predict_proba(self, X: Any):
        """Vote fractions ``(n, n_classes)``, columns ordered as ``classes_``."""
        check_fitted(self, "X_fit_")
        Xt, was_tensor = check_X(self, X, reset=False, dtype=self.X_fit_.dtype)
        return like_input(self._proba(Xt), was_tensor)

    def predict(self, X: Any):
        """Majority class of the neighbours; ties go to the smallest label (argmax takes the first)."""
        check_fitted(self, "X_fit_")
        Xt, was_tensor = check_X(self, X, reset=False, dtype=self.X_fit_.dtype)
        winner = self._proba(Xt).argmax(1).cpu().numpy()
        return like_input(self.classes_[winner], was_tensor, Xt.device)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy on ``(X, y)`` (tensors or arrays)."""
        pred = self.predict(X)
        pred = pred.cpu().numpy() if isinstance(pred, torch.Tensor) else pred
        y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y
        return accuracy(column_or_1d(np.asarray(y)), pred, sample_weight=sample_weight)


class NearestNeighbor(KNNClassifier):
    """The nearest-neighbour classifier: each query takes the label of its closest training row (L1 by default)."""

    n_neighbors = 1  # fixed; not a parameter of this class
    k = None

    def __init__(self, metric: str = "l1", chunk_size: int = 128):
        self.metric = metric
        self.chunk_size = chunk_size
