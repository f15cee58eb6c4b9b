"""A K-means for many clusters (cluster-centroid under-sampling asks for K = minority size).

Same algorithm and stopping rule as :class:`deepnotes.classic.KMeans` (Lloyd iterations until the
labels stop changing or the centre shift is ``<= tol · mean feature variance``, scikit-learn's
rule, with its relocation of empty clusters), with two changes that matter when K is in the
thousands:

* seeding is plain k-means++ (one candidate per step, Arthur & Vassilvitskii 2007) rather than
  scikit-learn's greedy variant with ``2 + ln K`` candidates: K sequential steps of one distance
  row each instead of ``2 + ln K`` rows;
* seeding runs in numpy (K sequential matrix-vector products, where per-call overhead matters);
* the assignment step works on row blocks so that each score block is reduced while it is
  still in cache.

The tests compare the final centres with ``sklearn.cluster.KMeans(init=<our seeds>)``.
"""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.imbalance.neighbors import over_row_ranges

_ROWS = 256  # rows per assignment block


def kmeans_pp_plain(X: torch.Tensor, k: int, rng: np.random.RandomState) -> torch.Tensor:
    """k-means++ seeds ``(k, d)``: each next centre drawn with probability ∝ squared distance.

    Runs in numpy: K sequential steps of one matrix-vector product each, where numpy's per-call
    overhead is a few microseconds (torch's is ten times that, and the loop is all small calls).
    """
    A = X.numpy() if X.dtype == torch.float64 else X.to(torch.float64).numpy()
    n = A.shape[0]
    a_sq = np.einsum("ij,ij->i", A, A)
    u = rng.uniform(size=k)  # one draw per step, taken up front
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = rng.randint(n)
    closest = np.maximum(a_sq - 2.0 * (A @ A[chosen[0]]) + a_sq[chosen[0]], 0.0)
    for step in range(1, k):  # sequential by definition: each draw depends on the last centre
        cdf = np.cumsum(closest)
        if cdf[-1] <= 0:  # fewer distinct points than k: take any point not chosen yet
            nxt = int(np.setdiff1d(np.arange(n), chosen[:step])[0])
        else:
            nxt = min(int(np.searchsorted(cdf, u[step] * cdf[-1], side="right")), n - 1)
        chosen[step] = nxt
        d = a_sq - 2.0 * (A @ A[nxt]) + a_sq[nxt]  # ‖x‖² − 2x·c + ‖c‖²
        np.minimum(closest, np.maximum(d, 0.0), out=closest)
    return X[torch.from_numpy(chosen)].to(torch.float64).clone()


def assign(X: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre of each row and the squared distance to it, ``(n,)`` each.

    Ranks by ``‖c‖² − 2x·c`` in float64, 256 rows at a time: the block stays in cache between the
    product and the ``min`` (measured 4x faster than one ``n × K`` block); row ranges run on
    the torch threads one range per thread, as the neighbour search does.
    """
    c_sq = (centers * centers).sum(1)
    x_sq = (X * X).sum(1)

    def search(lo: int, hi: int) -> list[torch.Tensor]:
        out = []
        for s in range(lo, hi, _ROWS):  # row blocks bound memory; not a per-sample loop
            block = torch.addmm(c_sq, X[s : min(s + _ROWS, hi)], centers.T, alpha=-2.0)
            b, i = block.min(dim=1)
            out.append(torch.stack([i.to(b.dtype), b]))  # labels < 2**53 are exact in float64
        return out

    both = torch.cat(over_row_ranges(search, X.shape[0], _ROWS), dim=1)
    return both[0].to(torch.int64), (both[1] + x_sq).clamp_min_(0)


def update(X: torch.Tensor, labels: torch.Tensor, d2: torch.Tensor, k: int) -> torch.Tensor:
    """Cluster means; an empty cluster takes the point farthest from its centre (sklearn's rule),
    and that point leaves its old cluster's sum."""
    ones = torch.ones(X.shape[0], dtype=X.dtype)
    sums = torch.zeros(k, X.shape[1], dtype=X.dtype).index_add_(0, labels, X)
    counts = torch.zeros(k, dtype=X.dtype).index_add_(0, labels, ones)
    empty = (counts == 0).nonzero().flatten()
    if len(empty):
        far = torch.topk(d2, len(empty)).indices  # farthest points first
        old = labels[far]
        sums.index_add_(0, old, -X[far])
        counts.index_add_(0, old, -ones[: len(far)])
        sums[empty] = X[far]
        counts[empty] = 1.0
    return sums / counts.unsqueeze(1)


def lloyd(
    X: torch.Tensor, centers: torch.Tensor, *, max_iter: int = 300, tol: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Lloyd iterations from ``centers``; returns ``(centers, labels, n_iter)``.

    X : Tensor[n, d] float64; centers : Tensor[k, d] float64.
    """
    mean = X.mean(0)
    Xc = X - mean  # centred, as scikit-learn does, for accuracy
    tol = float(X.var(0, unbiased=False).mean()) * tol
    centers = centers - mean
    k = centers.shape[0]
    labels_old = torch.full((X.shape[0],), -1, dtype=torch.int64)
    strict, n_iter = False, 0
    for it in range(max_iter):  # iterations until convergence
        n_iter = it + 1
        labels, d2 = assign(Xc, centers)
        new = update(Xc, labels, d2, k)
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if torch.equal(labels, labels_old):
            strict = True
            break
        if shift <= tol:
            break
        labels_old = labels
    if not strict:
        labels, _ = assign(Xc, centers)
    return centers + mean, labels, n_iter
