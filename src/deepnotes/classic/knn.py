"""Nearest-neighbour and k-nearest-neighbour classifiers (L1 / L2), brute force on tensors.

Distances are computed in chunks of query rows (memory ``chunk_size × n_train``) and the ``k``
smallest are taken with :func:`smallest_k` (equal distances: the smaller training index). Votes are counted per class; a tie between classes goes to the
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

import math
from typing import Any

import torch

from deepnotes.classic.base import as_labels, as_matrix, check_fitted
from deepnotes.core.checks import check_choice, check_int
from deepnotes.core.threads import torch_threads


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


def _first_k(vals: torch.Tensor, k: int, cols: torch.Tensor | None = None):
    """``k`` smallest of each row of ``vals``, ties broken by position (stable), and their columns.

    ``topk`` breaks ties arbitrarily, so it takes ``k + 1`` values and the rare rows with two
    equal values among them are redone with a stable sort. ``cols`` maps positions to columns.
    """
    if vals.shape[1] <= k:
        d, j = torch.sort(vals, dim=1, stable=True)
    else:
        d, j = torch.topk(vals, k + 1, dim=1, largest=False, sorted=True)
        tie = (d[:, 1:] == d[:, :-1]).any(1).nonzero().squeeze(1)
        d, j = d[:, :k], j[:, :k]
        if len(tie):
            sd, sj = torch.sort(vals[tie], dim=1, stable=True)
            d[tie], j[tie] = sd[:, :k], sj[:, :k]
    return d, (j if cols is None else cols.gather(1, j))


def smallest_k(S: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest values of each row of ``S (n, m)`` and their columns, ascending: ``(n, k)`` each.

    Ties go to the smaller column, like scikit-learn's brute-force search (its heap keeps the
    first of equal distances when it processes them in order). Faster than ``torch.topk`` over
    whole rows for ``k ≪ m`` (in ``KNNClassifier.predict``, 2,000 × 10,000 scores, k = 5, one
    thread: selection 18 → 14 ms, next to 45 ms for the GEMM): the first ``B · nb``
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

class KNNClassifier:
    """k-nearest-neighbour classifier with uniform votes.

    Parameters
    ----------
    k : int
        Number of neighbours (``n_neighbors`` in scikit-learn).
    metric : {"l2", "l1"}
        Euclidean or Manhattan distance.
    chunk_size : int
        Query rows per distance block (128: a 10 MB block of scores for 10,000 training rows stays
        in L3 between the GEMM and the selection; 64–512 measured, 128 best).
    n_threads : int or None
        Torch threads for ``fit``/``kneighbors``/``predict`` (default ``None``: torch's setting).
        Each chunk opens half a dozen parallel regions: on an idle 2-core machine two threads beat
        one, but on a machine shared with other jobs, waiting at their barriers for a descheduled
        thread made two threads 1.7–13× slower than one (fit 10,000 × 64, predict 2,000) — pass
        ``n_threads=1`` there.

    Attributes
    ----------
    classes_ : Tensor[n_classes]
    X_fit_ : Tensor[n_train, n_features]
    y_fit_ : Tensor[n_train]  (indices into ``classes_``)
    """

    def __init__(self, k: int = 5, metric: str = "l2", chunk_size: int = 128, n_threads: int | None = None):
        self.k = check_int("k", k, min=1)
        self.metric = check_choice("metric", metric, ("l2", "l1"))
        self.chunk_size = check_int("chunk_size", chunk_size, min=1)
        self.n_threads = None if n_threads is None else check_int("n_threads", n_threads, min=1)

    def fit(self, X: Any, y: Any) -> KNNClassifier:
        with torch_threads(self.n_threads):
            return self._fit(as_matrix("X", X), y)

    def _fit(self, X: torch.Tensor, y: Any) -> KNNClassifier:
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
        with torch_threads(self.n_threads):
            return self._kneighbors(X, k)

    def _kneighbors(self, X: Any, k: int | None) -> tuple[torch.Tensor, torch.Tensor]:
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
        chunk = min(self.chunk_size, X.shape[0])
        # one score buffer for all L2 chunks: a fresh multi-MB tensor per chunk costs page faults
        if self.metric == "l2":
            buf = torch.empty(chunk, self.X_fit_.shape[0], dtype=X.dtype, device=X.device)
        for start in range(0, X.shape[0], chunk):  # chunks bound memory, not a per-sample loop
            q = X[start : start + chunk]
            if self.metric == "l2":
                # ‖q‖² is constant per row, so ranking needs only ‖b‖² − 2q·b
                score = torch.addmm(self._sq, q, self._neg2_xt, out=buf[: q.shape[0]])
                d, i = smallest_k(score, k)
                d = (d + (q * q).sum(1, keepdim=True)).clamp_min_(0).sqrt_()
            else:
                d, i = smallest_k(torch.cdist(q, self.X_fit_, p=1.0), k)
            dists.append(d)
            idx.append(i)
        return torch.cat(dists), torch.cat(idx)

    def predict_proba(self, X: Any) -> torch.Tensor:
        """Vote fractions ``(n, n_classes)``, columns ordered as ``classes_``."""
        _, idx = self.kneighbors(X)  # (n, k): the vote below is small, left on torch's threads
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

    def __init__(self, metric: str = "l1", chunk_size: int = 128, n_threads: int | None = None):
        super().__init__(k=1, metric=metric, chunk_size=chunk_size, n_threads=n_threads)
