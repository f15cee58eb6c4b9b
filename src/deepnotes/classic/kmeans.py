"""K-means clustering with Lloyd iterations and k-means++ seeding, on tensors.

Each iteration assigns every point to its nearest centre (one matrix product:
``argmin_c ‖c‖² − 2x·c``) and moves each centre to the mean of its points.
The stopping rule, the empty-cluster rule and the final re-assignment follow
``sklearn.cluster.KMeans(algorithm="lloyd")``, so with the same initial centres both give the same
centres, labels and inertia:

* stop when the labels do not change ("strict convergence"), or when the squared centre shift
  summed over clusters is ``<= tol · mean(var(X, axis=0))``;
* a cluster left empty takes the point farthest from its own centre (farthest first), and that
  point's weight is removed from its old cluster's sum;
* after stopping without strict convergence, labels are recomputed once for the final centres.

Speed:

* most points skip the distance computation: per-point bounds (Hamerly's, see :class:`_Bounds`)
  prove that their label cannot change, with a margin above the rounding error of the scores, so
  a skipped point gets the label Lloyd's floating-point argmin gives it; after the first iterations a few hundred points per iteration are recomputed;
* the per-cluster sums are kept from one iteration to the next and corrected only for the points
  whose label changed, with one ``bincount``; a full ``index_add_`` per iteration cost a quarter
  of a plain iteration;
* distances go block by block through preallocated buffers (see :class:`_Nearest`).

The readable version of the same iteration is :func:`deepnotes.classic.lloyd.lloyd` (tested to
agree). Finite input of any magnitude is handled by one exact power-of-two scaling.

Memory: ``n_clusters × 8192`` scores, and a few numbers per sample.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state

from deepnotes.classic.base import check_fitted, check_X, like_input
from deepnotes.classic.kmeans_plusplus import kmeans_plusplus
from deepnotes.classic.neighbors import common_scale, max_abs
from deepnotes.core.checks import as_tensor, check_float, check_int
from deepnotes.core.seeding import make_generator

# Rows per block with one thread: the block of X (1 MB) and its scores stay in L2 between the
# passes (smaller blocks pay Python overhead per op; `deepnotes bench` has the figures).
_CHUNK = 8192
# With many centres the block shrinks so that its ``k × block`` scores (the reductions pass over
# them five times) stay near this many cells (2 MB of float64) instead of spilling the cache.
_CELLS = 1 << 18
# Above this many centres ``torch.min`` with indices beats the amin / mask / amax passes.
_FEW = 64


class _Nearest:
    """Nearest centre of every row of a fixed ``X``, with buffers reused across calls.

    ``__call__(centers, labels, best)`` fills ``labels`` (int64) with the index of the nearest
    centre and ``best`` with ``min_c ‖c‖² − 2x·c`` (add ``‖x‖²`` for the squared distance).

    Choices made for speed:

    * scores are laid out ``(k, block)``: the GEMM is faster in that shape and reductions over
      dim 0 vectorize across the block;
    * for a few centres ``torch.min(dim=0)`` with indices is much slower than ``amin``, so the
      index of the first minimum is found as ``amin`` → ``le`` mask → ``amax`` of
      ``mask · (k − 1 − j)`` in uint8 (ties go to the first centre, like sklearn's strict ``<``);
      for many centres (cluster-centroid under-sampling) ``torch.min``, which also returns the
      first minimum, is cheaper, and the block shrinks to keep its scores in cache;
    * every temporary lives in a buffer allocated once: fresh tensors per block cost page faults.
    """

    def __init__(self, X: torch.Tensor, k: int):
        self.X, self.k = X, k
        n = X.shape[0]
        self.chunk = min(_CHUNK, n, max(64, _CELLS // k))
        rdt = torch.uint8 if k <= 255 else torch.int32
        kw = {"device": X.device}
        self.rank = torch.arange(k - 1, -1, -1, dtype=rdt, **kw).unsqueeze(1)
        self.top = torch.tensor(k - 1, dtype=torch.int64, **kw)
        # many centres: points in rows, so that the min runs along contiguous memory
        shape = (self.chunk, k) if k > _FEW else (k, self.chunk)
        self.scores = torch.empty(shape, dtype=X.dtype, **kw)
        few = (k, self.chunk) if k <= _FEW else (0, 0)  # buffers of the few-centres path
        self.mask = torch.empty(few, dtype=torch.bool, **kw)
        self.ranked = torch.empty(few, dtype=rdt, **kw)
        self.first = torch.empty(self.chunk, dtype=rdt, **kw)

    def __call__(self, centers, labels, best, second=None) -> None:
        """Fill ``labels``, ``best`` and, if given, ``second`` (the runner-up's score; ties kept)."""
        X, chunk = self.X, self.chunk
        c_sq = (centers * centers).sum(1, keepdim=True)
        neg2c = -2.0 * centers
        for i in range(0, X.shape[0], chunk):  # blocks of rows, not a loop over samples
            xb = X[i : i + chunk]
            m = xb.shape[0]
            b = best[i : i + m]
            if self.k > _FEW:  # many centres: one min with indices (the first minimum) is cheaper
                s = self.scores[:m]
                torch.addmm(c_sq.T, xb, neg2c.T, out=s)
                torch.min(s, 1, out=(b, labels[i : i + m]))
                if second is not None:
                    s.scatter_(1, labels[i : i + m].unsqueeze(1), math.inf)
                    torch.amin(s, 1, out=second[i : i + m])
                continue
            s = self.scores[:, :m]
            torch.addmm(c_sq, neg2c, xb.T, out=s)
            torch.amin(s, 0, out=b)
            torch.le(s, b, out=self.mask[:, :m])
            torch.mul(self.mask[:, :m], self.rank, out=self.ranked[:, :m])
            torch.amax(self.ranked[:, :m], 0, out=self.first[:m])
            torch.sub(self.top, self.first[:m], out=labels[i : i + m])
            if second is not None:  # hide only the chosen centre, so a tie for the minimum stays
                s.scatter_(0, labels[i : i + m].unsqueeze(0), math.inf)
                torch.amin(s, 0, out=second[i : i + m])


def _nearest(X: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One-off ``(labels, best)`` for ``X`` (see :class:`_Nearest`)."""
    labels = torch.empty(X.shape[0], dtype=torch.int64, device=X.device)
    best = torch.empty(X.shape[0], dtype=X.dtype, device=X.device)
    _Nearest(X, centers.shape[0])(centers, labels, best)
    return labels, best


class _Bounds:
    """Per-point bounds (Hamerly's, reduced to one number) so most points skip the distances.

    For each point, ``gap`` ≤ (distance to the nearest other centre) − (distance to its own
    centre) − ``√slack``. When the centres move by ``δ_j``, the first distance can shrink by at
    most ``max δ`` and the second grow by at most ``δ_label``, so ``gap −= δ_label + max δ`` keeps
    it a lower bound; while ``gap > 0`` the point keeps its label and nothing is computed for it.

    Identical labels to the plain loop: ``slack`` bounds the rounding error of the scores
    ``‖c‖² − 2x·c`` that Lloyd compares (ours or sklearn's BLAS: ``(d + 4)·ε·(‖x‖ + R)²`` with a
    factor 8 to spare, ``R`` the largest norm of a point or initial centre, which bounds every
    centre: later centres are means of points, or points). A skipped point has a
    true squared-distance margin above ``slack``, so Lloyd's floating-point argmin is the exact
    one; bounds are computed from scores widened by ``slack`` (the drift of ``ε`` per update is
    ~10⁹ times smaller than ``√slack``). Every other point gets all ``k`` scores, exactly as in
    the plain loop. On the bench case (100,000 × 16, k = 10) a few hundred points per iteration
    are recomputed after the first iterations; the step costs four passes over ``n`` numbers.
    """

    def __init__(self, X: torch.Tensor, k: int, init: torch.Tensor):
        self.X, self.k = X, k
        self.x_sq = (X * X).sum(1)
        norm = self.x_sq.sqrt()
        eps = torch.finfo(X.dtype).eps
        R = torch.maximum(norm.max(), (init * init).sum(1).max().sqrt())
        self.root_slack = norm.add_(R).mul_(math.sqrt(8 * (X.shape[1] + 4) * eps))
        self.slack = self.root_slack * self.root_slack
        self.gap = torch.empty_like(self.x_sq)
        self.nearest = _Nearest(X, k)

    def _set(self, idx, best, second) -> None:
        """Bounds from freshly computed scores of the rows ``idx`` (``None``: all rows)."""
        x_sq, slack, root = (
            (self.x_sq, self.slack, self.root_slack)
            if idx is None
            else (self.x_sq.index_select(0, idx), self.slack.index_select(0, idx), self.root_slack.index_select(0, idx))
        )
        gap = (x_sq + second - slack).clamp_min_(0).sqrt_()
        gap -= (x_sq + best + slack).clamp_min_(0).sqrt_()
        gap -= root
        if idx is None:
            self.gap = gap
        else:
            self.gap.index_copy_(0, idx, gap)

    def full(self, centers: torch.Tensor, labels: torch.Tensor) -> None:
        """All scores for every point: fills ``labels`` and resets the bounds."""
        best, second = torch.empty_like(self.x_sq), torch.empty_like(self.x_sq)
        self.nearest(centers, labels, best, second)
        self._set(None, best, second)

    def moved(self, old: torch.Tensor, new: torch.Tensor, labels: torch.Tensor) -> None:
        """Shrink the gaps for the move of the centres from ``old`` to ``new``."""
        delta = ((new - old) ** 2).sum(1).sqrt_()
        shrink = (delta + delta.max()).mul_(1 + 4 * torch.finfo(old.dtype).eps)
        self.gap.sub_(shrink.index_select(0, labels))  # index_select: 6× faster than shrink[labels]

    def step(self, centers: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Update ``labels`` in place for ``centers``: indices of the moved points, their old labels."""
        idx = _where(self.gap <= 0)
        if len(idx) > self.X.shape[0] // 2:  # most points: one pass over all is cheaper
            old = labels.clone()
            self.full(centers, labels)
            changed = (labels != old).nonzero().squeeze(1)
            return changed, old[changed]
        sub_labels = torch.empty_like(idx)
        best = torch.empty(len(idx), dtype=self.X.dtype, device=self.X.device)
        second = torch.empty_like(best)
        if len(idx):
            _Nearest(self.X.index_select(0, idx), self.k)(centers, sub_labels, best, second)
            self._set(idx, best, second)
        # index_select / index_copy_ rather than [idx]: the generic indexing kernel is several times slower
        changed = _where(sub_labels != labels.index_select(0, idx))
        idx, new = idx.index_select(0, changed), sub_labels.index_select(0, changed)
        old = labels.index_select(0, idx)
        labels.index_copy_(0, idx, new)
        return idx, old


def _where(mask: torch.Tensor) -> torch.Tensor:
    """Indices (int64) of the true entries of the 1-D bool ``mask``.

    On the CPU numpy's ``flatnonzero`` (a view of the same memory) is several times faster than
    ``torch.nonzero`` or ``masked_select``; elsewhere ``nonzero``.
    """
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.nonzero().squeeze(1)


def _cluster_sums(X: torch.Tensor, labels: torch.Tensor, k: int, sign: torch.Tensor | None = None):
    """Per-cluster sums ``(k, d)`` and counts ``(k,)`` of the rows of ``X``, each row weighted ±1.

    One ``bincount`` over ``label · d + feature``: serial (no parallel region) and, for a few
    hundred rows, cheaper than ``index_add_``.
    """
    d = X.shape[1]
    flat = (labels.unsqueeze(1) * d + torch.arange(d, device=X.device)).view(-1)
    w = X if sign is None else X * sign.unsqueeze(1)
    sums = torch.bincount(flat, weights=w.reshape(-1), minlength=k * d).view(k, d).to(X.dtype)
    counts = torch.bincount(labels, weights=sign.to(X.dtype) if sign is not None else None, minlength=k)
    return sums, counts.to(X.dtype)


def _update(X, centers, labels, sums, counts):
    """New centres: per-cluster means, with sklearn's relocation of empty clusters.

    ``sums``/``counts`` belong to the partition ``labels`` and are not modified.
    """
    empty = (counts == 0).nonzero().flatten()
    if len(empty):
        # farthest points (exact distances to their old centres, as sklearn) first
        far = torch.topk(((X - centers[labels]) ** 2).sum(1), len(empty)).indices
        old = labels[far]
        sums, counts = sums.clone(), counts.clone()
        sums.index_add_(0, old, -X[far])
        counts.index_add_(0, old, -torch.ones(len(far), dtype=X.dtype, device=X.device))
        sums[empty] = X[far]
        counts[empty] = 1.0
    return sums / counts.unsqueeze(1)


class KMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means (Lloyd) with scikit-learn's parameters and fitted attributes (a scikit-learn
    estimator: ``clone``, ``get_params``/``set_params``, ``Pipeline`` work).

    Parameters
    ----------
    n_clusters : int
    init : "k-means++", "random" or array (n_clusters, n_features)
    n_init : "auto" or int
        Runs from different seeds; the one with the lowest inertia is kept (the first on ties).
        ``"auto"``: 1 for "k-means++" or an array, 10 for "random" (scikit-learn's rule); with an
        array init only one run is made.
    max_iter : int
    tol : float
        Relative tolerance on the centre shift (scaled by the mean feature variance, as sklearn).
    random_state : None, int or numpy RandomState
        Seeds the initializations as in scikit-learn: one seed per run drawn from
        ``check_random_state(random_state)``; ``None`` uses numpy's global generator, so results
        differ between fits.

    Parameters are checked in ``fit``. numpy in → numpy out, torch in → torch out
    (``labels_``/``cluster_centers_`` follow the input of ``fit``; ``predict``/``transform``
    follow their own input).

    Attributes
    ----------
    cluster_centers_ : ndarray or Tensor [n_clusters, n_features]
    labels_ : ndarray or Tensor [n_samples]
    inertia_ : float
        Sum of squared distances to the assigned centres.
    n_iter_ : int
    n_features_in_ : int
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: Any = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: Any = None,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _check_params(self, n_features: int) -> tuple[Any, int]:
        """Validated ``(init, n_init)``; ``init`` a string or a float64 tensor of centres."""
        check_int("n_clusters", self.n_clusters, min=1)
        check_int("max_iter", self.max_iter, min=1)
        check_float("tol", self.tol, min=0.0)
        init = self.init
        if isinstance(init, str):
            if init not in ("k-means++", "random"):
                raise ValueError(f"init must be 'k-means++', 'random' or an array of centres, got {init!r}")
        else:
            init = as_tensor("init", init)
            if init.dim() != 2 or init.shape[0] != self.n_clusters:
                raise ValueError(f"init must have shape (n_clusters={self.n_clusters}, n_features)")
            if init.shape[1] != n_features:
                raise ValueError(f"init has {init.shape[1]} features but X has {n_features}")
        if self.n_init == "auto":
            n_init = 10 if isinstance(init, str) and init == "random" else 1
        else:
            n_init = check_int("n_init", self.n_init, min=1)
        if not isinstance(init, str):
            n_init = 1  # the same given centres every time
        return init, n_init

    def _initial_centers(self, X: torch.Tensor, init: Any, seed: int, s: float) -> torch.Tensor:
        """Initial centres for the (already scaled by ``s``) ``X``."""
        if isinstance(init, torch.Tensor):
            return init.to(X.dtype).to(X.device) * s
        g = make_generator(seed)
        if init == "random":
            idx = torch.randperm(X.shape[0], generator=g)[: self.n_clusters].to(X.device)
            return X[idx].clone()
        return kmeans_plusplus(X, self.n_clusters, g)

    def fit(self, X: Any, y: Any = None) -> KMeans:
        X, was_tensor = check_X(self, X, reset=True)
        init, n_init = self._check_params(X.shape[1])
        n = X.shape[0]
        if self.n_clusters > n:
            raise ValueError(f"n_samples={n} should be >= n_clusters={self.n_clusters}")
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=n_init)  # scikit-learn draws them so
        # huge (or tiny) values: fit on X·s, s a power of two (exact), so no square overflows
        top = max_abs(X)
        s = 1.0 if 2.0**-400 <= top <= 2.0**400 or top == 0 else common_scale(X)
        Xs = X * s if s != 1.0 else X
        best = None
        for seed in seeds.tolist():  # independent runs; the lowest inertia wins
            run = self._fit(Xs, self._initial_centers(Xs, init, seed, s))
            if best is None or run[2] < best[2]:
                best = run
        centers, labels, inertia, n_iter, mean = best
        self._mean = mean / s  # predict centres its input on it, as the fit did
        self._centers = centers / s
        self.cluster_centers_ = like_input(self._centers, was_tensor)
        self.labels_ = like_input(labels, was_tensor)
        self.inertia_ = inertia / s / s  # inf where the true value exceeds float64
        self.n_iter_ = n_iter
        return self

    def _fit(self, X: torch.Tensor, init: torch.Tensor):
        """One run from ``init``: ``(centers, labels, inertia, n_iter, mean)``."""
        n = X.shape[0]
        # like sklearn: centre the data for accuracy, and scale tol by the mean feature variance
        # (computed from the centred data: X.var(0) was 25× slower than this one pass)
        mean = X.mean(0)
        Xc = X - mean
        tol = float((Xc * Xc).sum(0).mean()) / n * self.tol if self.tol > 0 else 0.0
        centers = init - mean
        k = self.n_clusters
        bounds = _Bounds(Xc, k, centers)
        labels = torch.empty(n, dtype=torch.int64, device=X.device)
        sums = counts = None
        strict = False
        n_iter = 0
        for it in range(self.max_iter):
            n_iter = it + 1
            if sums is None:
                bounds.full(centers, labels)
                sums, counts = _cluster_sums(Xc, labels, k)
                moved = n
            else:  # only the points that changed cluster move their weight (see module notes)
                idx, old = bounds.step(centers, labels)
                moved = len(idx)
                if moved > n // 4:  # many moves: summing afresh is cheaper
                    sums, counts = _cluster_sums(Xc, labels, k)
                elif moved:
                    sign = torch.ones(2 * moved, dtype=X.dtype, device=X.device)
                    sign[moved:] = -1.0
                    rows = Xc.index_select(0, idx).repeat(2, 1)
                    ds, dc = _cluster_sums(rows, torch.cat([labels.index_select(0, idx), old]), k, sign)
                    sums, counts = sums + ds, counts + dc
            new = _update(Xc, centers, labels, sums, counts)
            shift = float(((new - centers) ** 2).sum())
            bounds.moved(centers, new, labels)
            centers = new
            if it > 0 and moved == 0:
                strict = True
                break
            if shift <= tol:
                break
        if not strict:  # labels for the final centres, as sklearn
            bounds.step(centers, labels)
        # exact ‖x − c‖² (not ‖x‖² + best, which cancels), in three passes and one allocation
        diff = centers.index_select(0, labels).sub_(Xc).view(-1)
        return centers + mean, labels, float(torch.dot(diff, diff)), n_iter, mean

    def _labels_of(self, X: torch.Tensor) -> torch.Tensor:
        # centred on the training mean, like the fit (far from the origin, ‖c‖² − 2x·c cancels)
        C = self._centers.to(X.dtype).to(X.device)
        mean = self._mean.to(X.dtype).to(X.device)
        top = max(max_abs(X), max_abs(C))
        s = 1.0 if top <= 2.0**400 else common_scale(X, C)
        return _nearest((X - mean) * s, (C - mean) * s)[0]

    def predict(self, X: Any):
        """Index of the nearest centre for each row."""
        check_fitted(self, "cluster_centers_")
        Xt, was_tensor = check_X(self, X, reset=False, dtype=self._centers.dtype)
        return like_input(self._labels_of(Xt), was_tensor)

    def fit_predict(self, X: Any, y: Any = None):
        return self.fit(X).labels_

    def transform(self, X: Any):
        """Euclidean distances to every centre, ``(n, n_clusters)``."""
        check_fitted(self, "cluster_centers_")
        Xt, was_tensor = check_X(self, X, reset=False, dtype=self._centers.dtype)
        C = self._centers.to(Xt.device)
        return like_input(torch.cdist(Xt, C), was_tensor)

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the sum of squared distances of ``X`` to its nearest centres (scikit-learn)."""
        check_fitted(self, "cluster_centers_")
        Xt, _ = check_X(self, X, reset=False, dtype=self._centers.dtype)
        C = self._centers.to(Xt.device)
        diff = Xt - C[self._labels_of(Xt)]
        return -float((diff * diff).sum())
