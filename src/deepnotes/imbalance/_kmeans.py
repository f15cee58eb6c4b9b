"""A K-means for many clusters (cluster-centroid under-sampling asks for K = minority size).

Same algorithm and stopping rule as :class:`deepnotes.classic.KMeans` (Lloyd iterations until the
labels stop changing or the centre shift is ``<= tol · mean feature variance``, scikit-learn's
rule, with its relocation of empty clusters), with two changes that matter when K is in the
thousands:

* seeding is plain k-means++ (one candidate per step, Arthur & Vassilvitskii 2007) rather than
  scikit-learn's greedy variant with ``2 + ln K`` candidates: K sequential steps of one distance
  row each instead of ``2 + ln K`` rows;
* seeding runs in numpy (K sequential matrix-vector products, where per-call overhead matters);
* the assignment step is the exact nearest-neighbour search of :mod:`deepnotes.classic.neighbors_fast`
  (a low-precision filter with a proven error bound, then float64 distances).

The tests compare the final centres with ``sklearn.cluster.KMeans(init=<our seeds>)``.
"""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.classic.neighbors_fast import kneighbors

_BLOCK = 256  # points per block of the sums used to draw the next centre


def kmeans_pp_plain(X: torch.Tensor, k: int, rng: np.random.RandomState) -> torch.Tensor:
    """k-means++ seeds ``(k, d)``: each next centre drawn with probability ∝ squared distance.

    Runs in numpy: K sequential steps of one matrix-vector product each, where numpy's per-call
    overhead is a few microseconds (torch's is ten times that, and the loop is all small calls).
    The draw walks per-block sums of the squared distances (a fast reduction, then two short
    cumulative sums) instead of a cumulative sum over all points, which alone cost as much as
    the matrix-vector product.
    """
    A = X.numpy() if X.dtype == torch.float64 else X.to(torch.float64).numpy()
    A = A - A.mean(0)  # distances do not change; float32 products lose little once centred
    n = A.shape[0]
    a_sq = np.einsum("ij,ij->i", A, A)
    u = rng.uniform(size=k)  # one draw per step, taken up front
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = rng.randint(n)
    n_blocks = -(-n // _BLOCK)
    # squared distances in float32 (half the memory traffic of every pass over the points; the
    # data are centred, and the draw needs the weights to a relative 1e-6 or so)
    A32, a_sq32 = A.astype(np.float32), a_sq.astype(np.float32)
    At32 = np.ascontiguousarray(A32.T)  # vector-matrix on the transpose: 1.5x faster here
    closest = np.zeros(n_blocks * _BLOCK, dtype=np.float32)  # padded with zero mass
    dist = closest[:n]
    np.maximum(a_sq - 2.0 * (A @ A[chosen[0]]) + a_sq[chosen[0]], 0.0, out=dist, casting="unsafe")
    blocks = closest.reshape(n_blocks, _BLOCK)
    new = np.empty(n, dtype=np.float32)
    for step in range(1, k):  # sequential by definition: each draw depends on the last centre
        nxt = _draw(closest, blocks.sum(1, dtype=np.float64), u[step], n)
        if nxt < 0:  # fewer distinct points than k: take any point not chosen yet
            nxt = int(np.setdiff1d(np.arange(n), chosen[:step])[0])
        chosen[step] = nxt
        np.matmul(-2.0 * A32[nxt], At32, out=new)  # ‖x‖² − 2x·c + ‖c‖², in place
        new += a_sq32
        new += a_sq32[nxt]
        np.maximum(new, 0.0, out=new)
        np.minimum(dist, new, out=dist)
    return X[torch.from_numpy(chosen)].to(torch.float64).clone()


def _draw(closest: np.ndarray, sums: np.ndarray, u: float, n: int) -> int:
    """Index drawn with probability ∝ ``closest`` (-1 if all mass is 0), via the block sums."""
    cs = np.cumsum(sums)
    if cs[-1] <= 0:
        return -1
    target = u * cs[-1]
    b = min(int(np.searchsorted(cs, target, side="right")), len(sums) - 1)
    inner = np.cumsum(closest[b * _BLOCK : (b + 1) * _BLOCK], dtype=np.float64)
    inner += cs[b - 1] if b else 0.0
    i = b * _BLOCK + min(int(np.searchsorted(inner, target, side="right")), _BLOCK - 1)
    if i >= n or closest[i] <= 0:  # rounding put the target on a zero-mass point: full walk
        cdf = np.cumsum(closest[:n], dtype=np.float64)
        i = min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), n - 1)
    return i


def assign(X: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre of each row and the squared distance to it, ``(n,)`` each.

    The exact nearest-neighbour search of :func:`deepnotes.classic.neighbors_fast.kneighbors` with the
    centres as the fitted set (a certified low-precision filter, then float64 distances; equal
    distances go to the lower centre index).
    """
    d2, idx = kneighbors(X, centers, 1, return_distance=True, squared=True)
    return idx[:, 0], d2[:, 0]


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
