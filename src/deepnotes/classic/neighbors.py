"""Exact k-nearest-neighbour search (squared Euclidean) with a certified low-precision filter.

Two versions with one contract, both tested against ``sklearn.neighbors.NearestNeighbors``:

* :func:`kneighbors_exact` — the definition: ``Σ (q − b)²`` in float64 for every pair, the ``k``
  smallest per query (equal distances: the lower index first).
* :func:`kneighbors` — the fast one, used by the samplers, K-means and ``KNNClassifier``:

  1. centre both sets on the fitted set's mean, scale by a power of two (exact) so that the
     largest norm is about 1, and sort the fitted rows by norm;
  2. score every pair with one low-precision matrix product (bfloat16 where the CPU multiplies
     it natively, else float32; always float32 accumulation), the norms folded in as extra
     columns so that the product is the squared distance: ``s̃ = [−2q, 1, ‖q‖²] · [b, ‖b‖², 1]``;
  3. bound the error: the product before its final rounding is within
     ``E = a·‖q‖‖b‖ + b·(‖q‖² + ‖b‖²)`` of ``‖q − b‖²`` (``a ≈ 4u``, ``b ≈ u``, ``u`` the unit
     round-off of the filter type; see :func:`score_bounds`), and the stored score is that
     product times ``1 ± v`` (``v = u`` for a bfloat16 result). ``‖b‖`` is taken as the largest
     norm of the column tile, which is tight because the rows are sorted by norm;
  4. an upper bound of the true k-th distance: any ``k`` distinct points give one, so the ``k``
     smallest upper bounds ``max(s̃, 0)/(1 − v) + E`` of the minima of super-groups of 512
     columns are merged tile by tile. The minima come from one ``amin`` per tile over groups of
     16 strided columns, taken on the scores' bit patterns read as integers: they order like
     non-negative floats, and the integer reduction is several times faster;
  5. keep every point whose lower bound ``s̃/(1 + v) − E`` is at most that upper bound — a
     superset of the ``k`` nearest and of every point tied with the k-th: first the groups
     whose minimum passes, then their members — and rank those few (about 10 per query on
     20-dimensional Gaussian data) by their exact float64 distance ``Σ (q − b)²``, equal
     distances by the lower row index.

  So the result is the exact float64 search's, not an approximation: the filter only decides
  which points are worth an exact look, and it provably never drops a neighbour. Should a query
  ever end with fewer than ``k`` candidates (it cannot, by the bound), it is redone exactly.
  A block whose neighbours sit too close for bfloat16's bound (so that most points pass) is
  redone with float32 products; ``precision="f64"`` runs the filter with float64 products.

When the queries are rows of the fitted set (``self_index`` given), each query's own row is
excluded explicitly instead of relying on it coming out first with distance 0 — with exact
duplicates scikit-learn may list the duplicate before the point itself; we always drop the point.

Threads: with five column tiles or more (fitted sets above about 20,000 rows), each torch thread
takes one contiguous range of row blocks (:func:`over_row_ranges`); below that, blocks are short
and each op runs on torch's threads, which measured faster on an idle machine.

Memory: one score tile of about two million values (4 MB in bfloat16) per thread, plus the
candidates.

It is a brute-force search. Measured against ``NearestNeighbors`` (5 neighbours, 2 cores):
0.5x its time for 2,000 queries in 10,000 × 64, 0.25–0.4x for the samplers' 20-dimensional
sets; 1.7x for 1,000 queries in 5,000 × 784, 3.7x for tight clusters in 20 dimensions; for
5,000 queries in 200,000 × 3, scikit-learn's k-d tree is 40x faster: in a few dimensions, use a
tree.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import torch

from deepnotes.core.checks import check_choice, check_int

_ROWS = 512  # query rows per block at the full tile width
_SCORES = 2 << 20  # scores per tile: narrower tiles take more rows (up to 4 x _ROWS)
_TILE = 4096  # target columns per tile: a 512 x 4096 bfloat16 score tile (4 MB) stays in cache
_GROUP = 16  # columns per strided group (one group minimum each)
_MERGE = 32  # groups per super-group in the running upper bound
_PRECISIONS = ("auto", "bf16", "f32", "f64")
# from this many column tiles on, row ranges run in parallel Python threads; below it, each op
# runs on torch's threads (fit 2,034 / 10,000 / 100,000 rows: 12 vs 18 ms, 16 vs 20 ms,
# 256 vs 237 ms on 2 cores)
_SPLIT_TILES = 5
_HARD = -2  # index marking the rows of a block handed on to a finer type


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX-BF16 flags, Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def score_bounds(dtype: torch.dtype, d: int) -> tuple[float, float, float]:
    """Error constants ``(a, b, v)`` of the folded product of the search, for ``d`` features.

    The product ``p`` of ``[−2q, 1, ‖q‖²] · [b, ‖b‖², 1]`` (``d + 2`` terms) computed from inputs
    rounded to ``dtype`` (unit round-off ``u``: ``2⁻⁸`` for bfloat16, ``2⁻²⁴`` for float32, ``2⁻⁵³``
    for float64) with float32 accumulation (float64 for float64) satisfies ``|p − ‖q − b‖²| <= a·‖q‖‖b‖ + b·(‖q‖² + ‖b‖²)``:

    * input rounding: ``(2u + u²)·2‖q‖‖b‖`` for the products (Cauchy–Schwarz), ``u`` of each norm;
    * float32 accumulation (and the rounding of float32 products): ``γ = (d + 3)·2⁻²⁴`` of the
      terms' absolute sum ``<= (1 + u)²·(2‖q‖‖b‖ + ‖q‖² + ‖b‖²)``.

    The stored score is ``s̃ = p·(1 + δ)`` with ``|δ| <= v`` (``v = u`` when the result is
    rounded to bfloat16, 0 for a float32 result). 1 % on top covers the float64 bookkeeping.
    """
    u = {torch.bfloat16: 2.0**-8, torch.float32: 2.0**-24, torch.float64: 2.0**-53}[dtype]
    acc = 2.0**-53 if dtype == torch.float64 else 2.0**-24  # float64 products accumulate in float64
    gamma = (d + 3) * acc * (1 + u) ** 2
    cross = 1.01 * (2 * (2 * u + u * u) + 2 * gamma)
    square = 1.01 * (u + gamma)
    return cross, square, (u if dtype == torch.bfloat16 else 0.0)


def _resolve(precision: str, device: torch.device) -> str:
    check_choice("precision", precision, _PRECISIONS)
    if precision != "auto":
        return precision
    if device.type != "cpu":  # GPUs run float64 products fast, and may reduce in lower precision
        return "f64"
    return "bf16" if native_bf16() else "f32"


@contextlib.contextmanager
def _float32_accumulation(device: torch.device):
    """On CUDA, no TF32 and no reduced-precision reductions while the block runs (restored)."""
    if device.type != "cuda":
        yield
        return
    m = torch.backends.cuda.matmul
    saved = (m.allow_tf32, m.allow_bf16_reduced_precision_reduction)
    m.allow_tf32, m.allow_bf16_reduced_precision_reduction = False, False
    try:
        yield
    finally:
        m.allow_tf32, m.allow_bf16_reduced_precision_reduction = saved


def _finite(X: torch.Tensor) -> bool:
    """No NaN or infinity in ``X``: one summing pass, the elementwise test only if the sum is not
    finite (a sum of finite values can also overflow)."""
    if not X.is_floating_point() or X.numel() == 0:
        return True
    return math.isfinite(float(X.sum())) or bool(torch.isfinite(X).all())


def _check(X_query, X_fit, n_neighbors, self_index, chunk_size) -> int:
    for name, X in (("X_query", X_query), ("X_fit", X_fit)):
        if not isinstance(X, torch.Tensor) or X.dim() != 2:
            raise ValueError(f"{name} must be a 2-d tensor (n, d)")
        if not _finite(X):
            raise ValueError(f"{name} contains NaN or infinite values")
    if X_query.shape[1] != X_fit.shape[1]:
        raise ValueError(
            f"X_query has {X_query.shape[1]} features but X_fit has {X_fit.shape[1]}"
        )
    k = check_int("n_neighbors", n_neighbors, min=1)
    check_int("chunk_size", chunk_size, min=1)
    if self_index is not None and len(self_index) != X_query.shape[0]:
        raise ValueError(
            f"self_index has {len(self_index)} entries for {X_query.shape[0]} queries"
        )
    available = X_fit.shape[0] - (0 if self_index is None else 1)
    if k > available:
        raise ValueError(
            f"n_neighbors ({k}) must be <= the number of candidate neighbours ({available})"
        )
    return k


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _result(idx, d2, return_distance, squared):
    if not return_distance:
        return idx
    return (d2 if squared else d2.sqrt()), idx


def kneighbors_exact(
    X_query: torch.Tensor,
    X_fit: torch.Tensor,
    n_neighbors: int,
    *,
    self_index: torch.Tensor | None = None,
    chunk_size: int = 2048,
    return_distance: bool = False,
    squared: bool = False,
):
    """The definition, in float64: ``Σ (q − b)²`` for every pair, the ``k`` smallest per query
    (equal distances: the lower index first); same contract as :func:`kneighbors`.

    No expansion ``‖q‖² − 2q·b + ‖b‖²``, so no cancellation and exact ties stay exact; memory
    is bounded by taking as many queries per block as keep ``rows × n × d`` near 4 million.
    """
    k = _check(X_query, X_fit, n_neighbors, self_index, chunk_size)
    A, Q = X_fit.to(torch.float64), X_query.to(torch.float64)
    n, d = A.shape
    rows = max(1, min(chunk_size, (1 << 22) // max(1, n * d)))
    idx, dist = [], []
    for start in range(0, Q.shape[0], rows):  # blocks bound memory; not a per-sample loop
        q = Q[start : start + rows]
        d2 = (q.unsqueeze(1) - A.unsqueeze(0)).square_().sum(-1)  # (rows, n)
        if self_index is not None:
            d2[torch.arange(d2.shape[0]), self_index[start : start + rows]] = float("inf")
        cols = torch.arange(n, device=d2.device).expand_as(d2)
        dd, i = _first_k(d2, cols, k)
        idx.append(i)
        dist.append(dd)
    return _result(torch.cat(idx), torch.cat(dist), return_distance, squared)


def kneighbors(
    X_query: torch.Tensor,
    X_fit: torch.Tensor,
    n_neighbors: int,
    *,
    self_index: torch.Tensor | None = None,
    chunk_size: int = 1024,
    return_distance: bool = False,
    squared: bool = False,
    precision: str = "auto",
):
    """Indices of the ``n_neighbors`` nearest rows of ``X_fit`` for every row of ``X_query``.

    Parameters
    ----------
    X_query : Tensor[m, d]
    X_fit : Tensor[n, d]
        Finite values (NaN or infinity raise ``ValueError``).
    n_neighbors : int
        ``k``; needs ``k <= n`` (``k <= n - 1`` with ``self_index``).
    self_index : Tensor[m] of int64, optional
        Row of ``X_fit`` that each query *is*; that row is never returned for it.
    chunk_size : int
        Query rows per block, capped at 512–2048 (more for a small fitted set): a block's score
        tile of about two million values must stay in cache.
    return_distance : bool
        Also return the distances (exact float64), as ``(dist, idx)``.
    squared : bool
        Return squared distances.
    precision : {"auto", "bf16", "f32", "f64"}
        Type of the filtering product: ``"auto"`` picks bfloat16 where the hardware multiplies it
        natively (about 3x faster than float32 there), else float32; on a GPU it picks
        ``"f64"``. Blocks of queries whose neighbours sit too close for bfloat16's error bound
        (tight clusters far from the mean, hundreds of dimensions) are redone in float32.
        Every choice returns the same neighbours (on a GPU, ``"bf16"``/``"f32"`` turn off TF32
        and reduced-precision reductions for the call: the error bound assumes float32
        accumulation).

    Returns
    -------
    Tensor[m, k] int64, nearest first (the order of ``sklearn.neighbors.NearestNeighbors``);
    with ``return_distance``, ``(Tensor[m, k] float64, Tensor[m, k] int64)``.
    """
    return NeighborIndex(X_fit, precision=precision).query(
        X_query, n_neighbors, self_index=self_index, chunk_size=chunk_size,
        return_distance=return_distance, squared=squared,
    )


class NeighborIndex:
    """The fitted side of :func:`kneighbors`, prepared once for many queries.

    Centred, scaled, sorted by norm and cut into column tiles of the filter type; ``query`` runs
    the search of :func:`kneighbors` against it (``KNNClassifier`` keeps one per fit).

    Parameters
    ----------
    X_fit : Tensor[n, d]
        Finite values.
    precision : {"auto", "bf16", "f32", "f64"}
        As in :func:`kneighbors`.
    """

    def __init__(self, X_fit: torch.Tensor, *, precision: str = "auto"):
        if not isinstance(X_fit, torch.Tensor) or X_fit.dim() != 2 or X_fit.shape[0] == 0:
            raise ValueError("X_fit must be a non-empty 2-d tensor (n, d)")
        if not _finite(X_fit):
            raise ValueError("X_fit contains NaN or infinite values")
        self.X_fit = X_fit
        self.mode = _resolve(precision, X_fit.device)
        self._finer: NeighborIndex | None = None
        dtype = {"bf16": torch.bfloat16, "f32": torch.float32, "f64": torch.float64}[self.mode]
        A64 = X_fit.to(torch.float64)
        n, d = A64.shape
        self.A64, self.n, self.d, self.dtype = A64, n, d, dtype
        self.centre = A64.mean(0)
        Ac = A64 - self.centre
        sq = (Ac * Ac).sum(1)
        top = float(sq.max())
        # a power of two: exact, and brings the largest norm near 1 (no over- or underflow)
        self.scale = 2.0 ** -math.ceil(math.log2(top) / 2) if top > 0 else 1.0
        sq, self.order = torch.sort(sq * self.scale**2)
        self.position = torch.empty_like(self.order)
        self.position[self.order] = torch.arange(n, device=self.order.device)
        g = _GROUP
        # tile width: a whole number of super-groups, and at least 16 groups per member index
        # (the group-min reduction vectorizes over the groups)
        unit = g * max(16, _MERGE)

        def width(T: int) -> int:
            return _ceil(_ceil(n, T), unit) * unit

        # the tile count (of the two nearest n / _TILE) that pads the fewest columns
        self.T = min({max(1, n // _TILE), n // _TILE + 1}, key=lambda T: (T * width(T), T))
        self.W = width(self.T)
        self.Gt = self.W // g
        n_pad = self.T * self.W
        # rows [b, ‖b‖², 1] against queries [−2q, 1, ‖q‖²]: the product is ‖q − b‖² >= 0
        rows = torch.zeros(n_pad, d + 2, dtype=dtype, device=A64.device)
        rows[:n, :d] = Ac[self.order] * self.scale
        rows[:n, d] = sq
        rows[n:, d] = float("inf")  # padding columns score +inf: never a bound nor a candidate
        rows[:, d + 1] = 1.0
        self.B = rows.view(self.T, self.W, d + 2).transpose(1, 2).contiguous()  # (T, d + 2, W)
        # non-negative floats order like their bit patterns read as integers, and integer
        # minima are 3-7x faster than float ones (bfloat16 ones are converted first)
        self.bits = {torch.bfloat16: torch.int16, torch.float32: torch.int32}.get(dtype, torch.int64)
        last = torch.clamp(torch.arange(1, self.T + 1) * self.W, max=n) - 1
        self.R = sq[last.to(sq.device)].sqrt()  # largest norm of each tile (rows sorted by norm)
        self.cross, self.square, self.v = score_bounds(dtype, d)

    def query(
        self,
        X_query: torch.Tensor,
        n_neighbors: int,
        *,
        self_index: torch.Tensor | None = None,
        chunk_size: int = 1024,
        return_distance: bool = False,
        squared: bool = False,
    ):
        """The ``n_neighbors`` nearest fitted rows of every row of ``X_query``; see :func:`kneighbors`."""
        k = _check(X_query, self.X_fit, n_neighbors, self_index, chunk_size)
        Q64 = X_query.to(torch.float64)
        Qs = torch.sub(Q64, self.centre).mul_(self.scale)
        own = None if self_index is None else self.position[self_index.to(torch.int64)]
        cap = max(_ROWS, min(4 * _ROWS, _SCORES // self.W))
        rows = min(chunk_size, cap, max(1, Q64.shape[0]))

        def search(lo: int, hi: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
            # one score buffer per worker: a fresh multi-MB tensor per block costs page faults,
            # and the threads' concurrent map/unmap calls serialize in the kernel
            raw = torch.empty(rows, self.W, dtype=self.dtype, device=Q64.device)
            return [
                self.block(Q64[s : min(s + rows, hi)], Qs[s : min(s + rows, hi)], k,
                           None if own is None else own[s : min(s + rows, hi)], raw)
                for s in range(lo, hi, rows)  # blocks bound memory; not a per-sample loop
            ]

        with _float32_accumulation(Q64.device):
            if self.T < _SPLIT_TILES:  # short blocks: torch's own threads split each op
                parts = search(0, Q64.shape[0])
            else:  # long blocks: one range of blocks per thread
                parts = over_row_ranges(search, Q64.shape[0], rows)
        d2 = torch.cat([p[0] for p in parts])
        idx = torch.cat([p[1] for p in parts])
        hard = (idx[:, 0] == _HARD).nonzero().flatten()
        if len(hard):  # neighbours too close for this type's error bound: a finer type
            d_h, i_h = self._finer_index().query(
                X_query[hard], k, self_index=None if self_index is None else self_index[hard],
                chunk_size=chunk_size, return_distance=True, squared=True,
            )
            d2[hard], idx[hard] = d_h, i_h
        short = (idx < 0).any(1).nonzero().flatten()
        if len(short):  # not reachable if the error bound holds; kept so a result is never wrong
            d_e, i_e = kneighbors_exact(
                X_query[short], self.X_fit, k,
                self_index=None if self_index is None else self_index[short],
                return_distance=True, squared=True,
            )
            d2[short], idx[short] = d_e, i_e
        return _result(idx, d2, return_distance, squared)

    def _finer_index(self) -> NeighborIndex:
        """The same fitted set with float32 products (only bfloat16 blocks are handed on)."""
        if self._finer is None:
            self._finer = NeighborIndex(self.X_fit, precision="f32")
        return self._finer

    def block(self, q64, qs, k, own, buffer):
        """Exact ``(d2, idx)`` of one query block; rows short of ``k`` candidates get ``-1``."""
        r, dev = q64.shape[0], q64.device
        g, Gt, W = _GROUP, self.Gt, self.W
        kk = k + (0 if own is None else 1)  # the query itself may be one of the group minima
        qn = qs.norm(dim=1, keepdim=True)
        # error bound of the product per (query, tile), plus a floor for products flushed to zero
        E = (self.cross * qn * self.R + self.square * (qn**2 + self.R**2) + 1e-30).float()
        # s ∈ [s̃/(1 + v) − E, max(s̃, 0)/(1 − v) + E]; 2⁻²⁰ absorbs the float32 arithmetic below
        up, down = 1 / (1 - self.v), (1 + self.v) * (1 + 2.0**-20)
        ones = torch.ones(r, 1, dtype=qs.dtype, device=dev)
        qh = torch.cat([-2 * qs, ones, qn**2], 1).to(self.dtype)
        raw = buffer[:r]
        bits = raw.view(self.bits).view(r, g, Gt)
        Sv = raw.view(r, g, Gt)  # group j of the tile: columns j, j + Gt, j + 2·Gt, ...
        best = torch.full((r, kk), float("inf"), device=dev)
        # super-groups: at most _MERGE groups, and at least 2·kk super-groups in all, or the
        # bound would come from far points (fewer than kk super-groups leave it infinite)
        merge = _MERGE
        while merge > 1 and self.T * (Gt // merge) < 2 * kk:
            merge //= 2
        # too many candidates for bfloat16's error bound (neighbours very close next to their
        # norms: tight clusters, many dimensions): the block goes to float32, whose product costs
        # less than ranking them all exactly. float32 keeps what it gets: its bound is 65,536x
        # tighter, so many candidates there mean a loose upper bound (low dimensions, where the
        # group minima lie far from the k-th neighbour), which float64 would not cure
        refine = self.dtype == torch.bfloat16
        max_groups = r * (64 + 8 * kk)
        max_candidates = r * (64 + 4 * kk) * 64 / max(64, self.d + 2)  # exact ranking costs ∝ d
        n_groups = 0
        kept = []
        for t in range(self.T):  # column tiles: each score tile is reduced while in cache
            torch.mm(qh, self.B[t], out=raw)
            # group minima on the bit patterns: exact where the group's scores are >= 0; a group
            # with a (rounded) negative score yields one of its negative scores, which passes
            # the filter below anyway (the limit is > 0: every upper bound is >= E > 0)
            gmin = bits.amin(1).view(self.dtype).float()
            Et = E[:, t : t + 1]
            # the upper bound needs kk distinct points: minima of super-groups of `merge` groups
            coarse = gmin.view(r, Gt // merge, merge).amin(2)
            bound = coarse.clamp_min_(0).mul_(up).add_(Et)
            if kk == 1:
                best = torch.minimum(best, bound.amin(1, keepdim=True))
            else:
                both = torch.cat([best, bound], 1)
                best = torch.topk(both, kk, dim=1, largest=False, sorted=False).values
            # a group may hold a neighbour only if its lower bound is under the upper bound
            pr, pj = (gmin <= (best.amax(1, keepdim=True) + Et) * down).nonzero(as_tuple=True)
            n_groups += len(pr)
            if refine and n_groups > max_groups:
                return _hard(r, k, dev)
            gm = gmin.view(-1).index_select(0, pr * Gt + pj)
            kept.append((Sv[pr, :, pj].float(), gm, pr, pj, t))
        tau = best.amax(1)  # final upper bound of the k-th score: the tightest
        take = torch.Tensor.index_select  # 1-d gathers: about 2x faster than indexing
        if self.T == 1:  # one tile: its groups were chosen with the final bound already
            vals, _, pr, pj, _ = kept[0]
            pt = torch.zeros_like(pr)
            lim = (take(tau, 0, pr) + take(E[:, 0], 0, pr)) * down
        else:
            pr = torch.cat([p for _, _, p, _, _ in kept])
            pt = torch.cat([torch.full_like(p, t) for _, _, p, _, t in kept])
            lim = (take(tau, 0, pr) + take(E.view(-1), 0, pr * self.T + pt)) * down
            # groups kept under an earlier, looser bound and now out of reach are dropped first
            live = (torch.cat([gm for _, gm, *_ in kept]) <= lim).nonzero().flatten()
            vals = take(torch.cat([v for v, *_ in kept]), 0, live)  # (groups, g) member scores
            pr, pt, lim = take(pr, 0, live), take(pt, 0, live), take(lim, 0, live)
            pj = take(torch.cat([j for _, _, _, j, _ in kept]), 0, live)
        # members whose lower bound s̃ − E is under the row's upper bound
        i, m = (vals <= lim.unsqueeze(1)).nonzero(as_tuple=True)
        if refine and len(i) > max_candidates:
            return _hard(r, k, dev)
        row = take(pr, 0, i)
        cc = take(pt * W + pj, 0, i) + m * Gt  # column in the sorted, padded order
        ok = cc < self.n
        if own is not None:
            ok &= cc != take(own, 0, row)
        ok = ok.nonzero().flatten()
        row, cc = take(row, 0, ok), take(cc, 0, ok)
        if k == 1:  # the nearest: two row-wise minima, no grouping by row needed
            cc = take(self.order, 0, cc)
            d2 = (take(self.A64, 0, cc) - take(q64, 0, row)).square_().sum(1)
            return _nearest(row, cc, d2, r)
        o = torch.argsort(row, stable=True)  # a few candidates per row: cheap to group by row
        row, cc = take(row, 0, o), take(self.order, 0, take(cc, 0, o))
        d2 = (take(self.A64, 0, cc) - take(q64, 0, row)).square_().sum(1)
        per_row = torch.bincount(row, minlength=r)
        width = max(int(per_row.max()) if len(row) else 0, k)
        starts = torch.cumsum(per_row, 0) - per_row
        slot = row * width + torch.arange(len(row), device=dev) - take(starts, 0, row)
        D = torch.full((r * width,), float("inf"), dtype=torch.float64, device=dev)
        ids = torch.full((r * width,), -1, dtype=torch.int64, device=dev)
        D.index_copy_(0, slot, d2)
        ids.index_copy_(0, slot, cc)
        D, ids = D.view(r, width), ids.view(r, width)
        dist, idx = _first_k(D, ids, k)
        idx[per_row < k] = -1
        return dist, idx


def _hard(r: int, k: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """A block handed on to a finer type: every index is ``_HARD``."""
    return (torch.full((r, k), float("inf"), dtype=torch.float64, device=device),
            torch.full((r, k), _HARD, dtype=torch.int64, device=device))


def _nearest(row, cc, d2, r):
    """Per row, the smallest ``d2`` and, among equal ones, the smallest ``cc``: ``(r, 1)`` each
    (``inf`` / ``-1`` for a row without candidates)."""
    best = torch.full((r,), float("inf"), dtype=d2.dtype, device=d2.device)
    best.scatter_reduce_(0, row, d2, reduce="amin")
    at_min = (d2 == best.index_select(0, row)).nonzero().flatten()
    big = torch.iinfo(torch.int64).max
    idx = torch.full((r,), big, dtype=torch.int64, device=d2.device)
    idx.scatter_reduce_(0, row.index_select(0, at_min), cc.index_select(0, at_min), reduce="amin")
    idx[idx == big] = -1
    return best.unsqueeze(1), idx.unsqueeze(1)


def _first_k(D: torch.Tensor, ids: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest of each row of ``D`` and their ``ids``, equal values by smaller ``ids``.

    ``topk`` breaks ties arbitrarily, so it takes ``k + 1`` values and the rare rows with two
    equal finite values among them are redone by index order then a stable sort on ``D``.
    """
    m = min(k + 1, D.shape[1])
    d, j = torch.topk(D, m, dim=1, largest=False, sorted=True)
    tie = ((d[:, 1:] == d[:, :-1]) & torch.isfinite(d[:, 1:])).any(1).nonzero().flatten()
    d, i = d[:, :k], ids.gather(1, j[:, :k])
    if len(tie):
        Ii, perm = torch.sort(torch.where(ids[tie] < 0, ids.new_tensor(2**62), ids[tie]), dim=1)
        Di = D[tie].gather(1, perm)
        order = torch.sort(Di, dim=1, stable=True).indices[:, :k]
        d[tie], i[tie] = Di.gather(1, order), Ii.gather(1, order)
    return d, i


def over_row_ranges(search, m: int, rows: int) -> list:
    """Run ``search(lo, hi)`` on contiguous row ranges, one per torch thread, each single-threaded.

    Coarse-grained parallelism (like scikit-learn's chunked neighbour search): every worker runs
    whole blocks on its own, instead of every small op being split across threads that wait for
    each other at each op's end — on a machine whose cores other processes also use, the per-op
    way was measured up to 10x slower. torch ops release the GIL, so Python threads run in parallel.
    Side effect: torch's intra-op thread count is 1 while the workers run, then restored (it is
    process-wide, so torch work in other Python threads runs single-threaded meanwhile).
    """
    threads = torch.get_num_threads()
    if threads == 1:
        return search(0, m)
    if m <= rows:  # one block: small ops, which torch's thread pool only slows down
        torch.set_num_threads(1)
        try:
            return search(0, m)
        finally:
            torch.set_num_threads(threads)
    per = -(-m // threads)
    per = -(-per // rows) * rows  # whole blocks per worker
    ranges = [(lo, min(lo + per, m)) for lo in range(0, m, per)]
    torch.set_num_threads(1)  # the workers' ops must not fan out again
    try:
        # the calling thread takes the first range; kept threads take the others (starting
        # threads per call cost milliseconds: a new thread waits for the GIL to report in)
        futures = [_pool(len(ranges) - 1).submit(_single, search, *r) for r in ranges[1:]]
        parts = [search(*ranges[0])] + [f.result() for f in futures]
    finally:
        torch.set_num_threads(threads)
    return [t for part in parts for t in part]


def _single(search, lo: int, hi: int) -> list:
    """``search`` in a kept worker thread, with that thread's own OpenMP setting at one thread.

    ``torch.set_num_threads`` also sets the calling thread's OpenMP thread count; without this
    call a kept thread that had run torch ops left an OpenMP team behind, and torch's parallel
    ops in the main thread ran 2x slower from then on (measured on K-means).
    """
    torch.set_num_threads(1)
    return search(lo, hi)


_POOL: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, size, pool)


def _pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool with at least ``workers`` threads (grown on demand, never shrunk).

    A forked child (a data-loader worker, say) does not inherit the threads, so it builds its own.
    """
    global _POOL
    pid = os.getpid()
    if _POOL is None or _POOL[0] != pid or _POOL[1] < workers:
        if _POOL is not None and _POOL[0] == pid:
            _POOL[2].shutdown(wait=False)
        size = max(1, workers)
        _POOL = (pid, size, ThreadPoolExecutor(size, thread_name_prefix="deepnotes-knn"))
    return _POOL[2]
