"""The fast exact k-nearest-neighbour search: a low-precision filter, then exact ranking.

Same contract and same result as the readable :func:`deepnotes.classic.neighbors.kneighbors_exact`
(tested for agreement); used by the samplers, K-means' helpers and ``KNNClassifier``.

1. Values beyond ``2^±400`` are first scaled by one power of two (exact); the fitted set is
   centred on its mean when that offset is large next to the spread, scaled by a power of two so
   that the largest norm is about 1, and its rows are sorted by norm.
2. Score every pair with one low-precision matrix product (bfloat16 where the CPU multiplies it
   natively and a probe confirms float32 accumulation, else float32), the norms folded in as
   extra columns so that the product is the squared distance: ``s̃ = [−2q, 1, ‖q‖²] · [b, ‖b‖², 1]``.
3. Bound the error of that product: ``|s̃ − ‖q − b‖²| <= a·‖q‖‖b‖ + b·(‖q‖² + ‖b‖²)`` (see
   :func:`score_bounds`; ``‖b‖`` is the largest norm of the column tile).
4. An upper bound of each query's k-th distance comes from the minima of groups of columns (any
   ``k`` distinct points give one); every point whose lower bound is under it is a candidate — a
   superset of the ``k`` nearest and of every point tied with the k-th.
5. Rank the candidates by their exact float64 distance ``Σ (q − b)²``, equal distances by the
   lower row index.

Fall-backs keep it bounded and never much slower than a plain search: in many dimensions (over
about 700), where the low-precision filter seldom prunes, the index uses the float64 product ``‖q‖² + ‖b‖² − 2q·b`` from the start, whose error bound is tiny (candidates: the points
within it of the k-th score, then exact ranking); a block whose candidates still exceed a fixed
budget is redone with float32 tiles (after bfloat16) or that float64 product, and past float64 (masses of exact duplicates) by the plain chunked
search. Queries too far outside the fitted set for the scaled product go to the plain search.
The error bound assumes float32 accumulation of the low-precision product, which a GPU with TF32
does not give: off the CPU the filter always runs in float64. No global torch setting (threads,
TF32) is read or changed.

Memory: score blocks of about two million values (one query row at least: ``n`` values for a
fitted set above two million rows), the kept groups and candidates under a fixed budget, the
exact ranking in slices, plus the index itself (a float64 copy of the set, and the tiles).
"""

from __future__ import annotations

import functools
import math

import torch

from deepnotes.classic.neighbors import (
    check_inputs,
    first_k,
    kneighbors_exact,
    result,
)
from deepnotes.core.checks import check_choice

_ROWS = 512  # query rows per block at the full tile width
_SCORES = 2 << 20  # scores per tile: narrower tiles take more rows (up to 4 x _ROWS)
_TILE = 4096  # target columns per tile
_GROUP = 16  # columns per strided group (one group minimum each)
_MERGE = 32  # groups per super-group in the running upper bound
_BUDGET = 1 << 22  # values of kept group scores per block, and of one exact-ranking slice
_PRECISIONS = ("auto", "bf16", "f32", "f64")
_HARD = -2  # index marking the rows of a block handed on to the float64 product
_SAFE = 2.0**400  # below this magnitude no square, sum of squares or difference overflows


@functools.cache
def native_bf16() -> bool:
    """Whether bfloat16 products are fast here and accumulate in float32.

    Fast: the CPU has AVX512-BF16 (torch's own capability check). Float32 accumulation, which
    the error bound assumes and torch does not promise, is probed: ``1 + 256 · 2⁻⁹`` summed in
    one bfloat16 product is 1.5 with float32 accumulation and 1.0 with bfloat16 accumulation.
    """
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if check is None or not check():
        return False
    a = torch.full((1, 257), 2.0**-9, dtype=torch.bfloat16)
    a[0, 0] = 1.0
    return float(a @ torch.ones(257, 1, dtype=torch.bfloat16)) == 1.5


def score_bounds(dtype: torch.dtype, d: int) -> tuple[float, float, float]:
    """Error constants ``(a, b, v)`` of the folded product of the search, for ``d`` features.

    The product ``p`` of ``[−2q, 1, ‖q‖²] · [b, ‖b‖², 1]`` (``d + 2`` terms) computed from inputs
    rounded to ``dtype`` (unit round-off ``u``: ``2⁻⁸`` for bfloat16, ``2⁻²⁴`` for float32, ``2⁻⁵³``
    for float64) with float32 accumulation (float64 for float64), in any order, satisfies
    ``|p − ‖q − b‖²| <= a·‖q‖‖b‖ + b·(‖q‖² + ‖b‖²)``:

    * input rounding: ``(2u + u²)·2‖q‖‖b‖`` for the products (Cauchy–Schwarz), ``u`` of each norm;
    * accumulation (and the rounding of the products): ``γ = (d + 3)·2⁻²⁴`` of the terms'
      absolute sum ``<= (1 + u)²·(2‖q‖‖b‖ + ‖q‖² + ‖b‖²)``.

    The stored score is ``s̃ = p·(1 + δ)`` with ``|δ| <= v`` (``v = u`` when the result is
    rounded to bfloat16, 0 for a float32 result). 1 % on top covers the float64 bookkeeping.
    """
    u = {torch.bfloat16: 2.0**-8, torch.float32: 2.0**-24, torch.float64: 2.0**-53}[dtype]
    acc = 2.0**-53 if dtype == torch.float64 else 2.0**-24
    gamma = (d + 3) * acc * (1 + u) ** 2
    cross = 1.01 * (2 * (2 * u + u * u) + 2 * gamma)
    square = 1.01 * (u + gamma)
    return cross, square, (u if dtype == torch.bfloat16 else 0.0)


def _resolve(precision: str, device: torch.device) -> str:
    check_choice("precision", precision, _PRECISIONS)
    if device.type != "cpu":  # the bound needs float32 accumulation, which TF32 does not give
        return "f64"
    if precision == "auto":
        return "bf16" if native_bf16() else "f32"
    if precision == "bf16" and not native_bf16():
        return "f32"
    return precision


def _magnitude(X: torch.Tensor) -> float:
    """``max |x|`` in one pass (NaN if any; 0 for an empty or integer-free input)."""
    if X.numel() == 0:
        return 0.0
    lo, hi = torch.aminmax(X)
    return max(-float(lo), float(hi)) if not math.isnan(float(lo) + float(hi)) else math.nan


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


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
    """The search of :func:`deepnotes.classic.neighbors.kneighbors_exact`, filtered; same
    arguments and result, plus:

    precision : {"auto", "bf16", "f32", "f64"}
        Type of the filtering product: ``"auto"`` picks bfloat16 where the CPU multiplies it
        natively with float32 accumulation, else float32 (``"bf16"`` falls back to float32 there
        too); off the CPU always float64. Every choice returns the same neighbours.
    chunk_size : int
        Query rows per block, capped at 512–2048 (more for a small fitted set).
    """
    return NeighborIndex(X_fit, precision=precision).query(
        X_query, n_neighbors, self_index=self_index, chunk_size=chunk_size,
        return_distance=return_distance, squared=squared,
    )


class NeighborIndex:
    """The fitted side of :func:`kneighbors`, prepared once for many queries.

    Scaled, centred, sorted by norm and cut into column tiles of the filter type; ``query`` runs
    the search of :func:`kneighbors` against it (``KNNClassifier`` keeps one per fit).

    Parameters
    ----------
    X_fit : Tensor[n, d]
        Finite values, any magnitude.
    precision : {"auto", "bf16", "f32", "f64"}
        As in :func:`kneighbors`.
    """

    def __init__(self, X_fit: torch.Tensor, *, precision: str = "auto"):
        if not isinstance(X_fit, torch.Tensor) or X_fit.dim() != 2 or X_fit.shape[0] == 0:
            raise ValueError("X_fit must be a non-empty 2-d tensor (n, d)")
        top = _magnitude(X_fit)
        if not math.isfinite(top):
            raise ValueError("X_fit contains NaN or infinite values")
        self.X_fit, self.precision = X_fit, precision
        self.mode = _resolve(precision, X_fit.device)
        dtype = {"bf16": torch.bfloat16, "f32": torch.float32, "f64": torch.float64}[self.mode]
        # huge or tiny values: one exact power-of-two scaling, so that nothing below overflows
        self.s = 1.0 if 1 / _SAFE <= top <= _SAFE or top == 0 else 2.0 ** -math.frexp(top)[1]
        A64 = X_fit.to(torch.float64)
        if self.s != 1.0:
            A64 = A64 * self.s
        n, d = A64.shape
        self.A64, self.n, self.d, self.dtype = A64, n, d, dtype
        # centre on the mean where the offset is large next to the spread (the product's error
        # grows with the norms); a small offset is left alone, which saves a copy of the set
        self.centre = A64.mean(0)
        sq = torch.linalg.vector_norm(A64, dim=1).square_()
        if float(self.centre.square().sum()) > 0.25 * float(sq.mean()):
            self.Ac = A64 - self.centre
            sq = torch.linalg.vector_norm(self.Ac, dim=1).square_()
        else:
            self.centre, self.Ac = torch.zeros_like(self.centre), A64
        top = float(sq.max())
        # a power of two brings the largest centred norm near 1 (the products' scale)
        self.scale = 2.0 ** -math.ceil(math.log2(top) / 2) if top > 0 else 1.0
        self.sq = sq * self.scale**2
        self.cross64, self.square64, _ = score_bounds(torch.float64, d)
        self.R64 = float(self.sq.max()) ** 0.5
        if self.mode != "f64" and not self._prunes(dtype):
            self.mode, self.dtype = "f64", torch.float64  # the filter would keep most points
        if self.mode != "f64":
            self._tiles(n, d, dtype)

    def _prunes(self, dtype: torch.dtype) -> bool:
        """Whether the ``dtype`` filter is worth building: in many dimensions its error bound
        is wide next to the gaps between distances, and the exact ranking of each candidate costs
        ``d``, so block()'s candidate budget (at k = 5) leaves fewer than 8 per query: the float64
        product is cheaper from the start (a speed rule: the result does not depend on it)."""
        return (64 + 4 * 6) * 64 / max(64, self.d + 2) >= 8

    def _tiles(self, n: int, d: int, dtype: torch.dtype) -> None:
        """Rows sorted by norm, cut into column tiles of the low-precision filter type."""
        sq, self.order = torch.sort(self.sq)
        self.position = torch.empty_like(self.order)
        self.position[self.order] = torch.arange(n, device=self.order.device)
        g = _GROUP
        # tile width: a whole number of super-groups, and at least 16 groups per member index
        unit = g * max(16, _MERGE)

        def width(T: int) -> int:
            return _ceil(_ceil(n, T), unit) * unit

        # the tile count (of the two nearest n / _TILE) that pads the fewest columns
        self.T = min({max(1, n // _TILE), n // _TILE + 1}, key=lambda T: (T * width(T), T))
        self.W = width(self.T)
        self.Gt = self.W // g
        n_pad = self.T * self.W
        # rows [b, ‖b‖², 1] against queries [−2q, 1, ‖q‖²]: the product is ‖q − b‖² >= 0
        rows = torch.zeros(n_pad, d + 2, dtype=dtype, device=sq.device)
        rows[:n, :d] = self.Ac.index_select(0, self.order).mul_(self.scale)
        rows[:n, d] = sq
        rows[n:, d] = float("inf")  # padding columns score +inf: never a bound nor a candidate
        rows[:, d + 1] = 1.0
        self.B = rows.view(self.T, self.W, d + 2).transpose(1, 2).contiguous()  # (T, d + 2, W)
        # non-negative floats order like their bit patterns read as integers, whose minima are
        # faster than float ones
        self.bits = {torch.bfloat16: torch.int16, torch.float32: torch.int32}[dtype]
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
        k = check_inputs(X_query, self.X_fit, n_neighbors, self_index, chunk_size, fit_checked=True)
        Q64 = X_query.to(torch.float64) * self.s  # the fitted set's units
        Qs = torch.sub(Q64, self.centre).mul_(self.scale)
        if _magnitude(Q64) > _SAFE or not math.isfinite(float(Qs.square().sum())):
            # far outside the fitted set's range: the plain search rescales on its own
            return kneighbors_exact(
                X_query, self.X_fit, k, self_index=self_index,
                return_distance=return_distance, squared=squared,
            )
        if self.mode == "f64":
            d2, idx = self._direct(Q64, Qs, k, self_index, chunk_size)
            return result(idx, d2, self.s, return_distance, squared)
        own = None if self_index is None else self.position[self_index.to(torch.int64)]
        cap = max(_ROWS, min(4 * _ROWS, _SCORES // self.W))
        rows = min(chunk_size, cap, max(1, Q64.shape[0]))
        raw = torch.empty(rows, self.W, dtype=self.dtype, device=Q64.device)  # reused per block
        parts = [
            self.block(Q64[s : s + rows], Qs[s : s + rows], k,
                       None if own is None else own[s : s + rows], raw)
            for s in range(0, Q64.shape[0], rows)  # blocks bound memory; not a per-sample loop
        ]
        d2 = torch.cat([p[0] for p in parts])
        idx = torch.cat([p[1] for p in parts])
        # rows the filter could not prune within the budget, and (not reachable if the error
        # bound holds; kept so that a result is never wrong) rows short of candidates
        hard = (idx < 0).any(1).nonzero().flatten()
        if len(hard):
            sub = None if self_index is None else self_index[hard]
            if self.mode == "bf16":  # float32 tiles next: their bound is 65,536x tighter
                d_h, i_h = self._float32().query(X_query[hard], k, self_index=sub, chunk_size=chunk_size,
                                                 return_distance=True, squared=True)
                d2[hard], idx[hard] = d_h * (self.s * self.s), i_h  # back to the fitted set's units
            else:
                d2[hard], idx[hard] = self._direct(Q64[hard], Qs[hard], k, sub, chunk_size)
        return result(idx, d2, self.s, return_distance, squared)

    def _float32(self) -> NeighborIndex:
        """The same fitted set with float32 tiles (built on first use)."""
        if getattr(self, "_f32", None) is None:
            self._f32 = NeighborIndex(self.X_fit, precision="f32")
        return self._f32

    def _direct(self, Q64, Qs, k, self_index, chunk_size):
        """Squared distances (fitted set's units) and indices by the float64 product; rows it
        cannot settle within the budget (masses of exact ties) go to the plain search."""
        rows = max(1, min(chunk_size, _SCORES // self.n))
        parts = [
            self.direct_block(Q64[s : s + rows], Qs[s : s + rows], k,
                              None if self_index is None else self_index[s : s + rows])
            for s in range(0, Q64.shape[0], rows)  # blocks bound memory; not a per-sample loop
        ]
        d2 = torch.cat([p[0] for p in parts])
        idx = torch.cat([p[1] for p in parts])
        hard = (idx < 0).any(1).nonzero().flatten()
        if len(hard):
            d2[hard], idx[hard] = kneighbors_exact(
                Q64[hard], self.A64, k, self_index=None if self_index is None else self_index[hard],
                return_distance=True, squared=True,
            )
        return d2, idx

    def direct_block(self, q64, qs, k, own):
        """One block by the float64 product ``‖q‖² + ‖b‖² − 2q·b``: candidates within its error
        bound of the k-th score, then exact ranking."""
        r = q64.shape[0]
        qq = (qs * qs).sum(1, keepdim=True)
        # qs · (scale·Ac)ᵀ = scale·(qs · Acᵀ) exactly: scale is a power of two
        P = torch.addmm(self.sq.unsqueeze(0), qs, self.Ac.T, alpha=-2.0 * self.scale).add_(qq)
        if own is not None:  # a query is never its own neighbour
            P.scatter_(1, own.view(-1, 1).to(torch.int64), math.inf)
        qn = qq.sqrt()
        # twice the square term: the norms were computed in float64 too
        E = self.cross64 * qn * self.R64 + 2 * self.square64 * (qq + self.R64**2) + 1e-300
        kth = torch.topk(P, k, dim=1, largest=False, sorted=True).values[:, -1:]
        # lower bound P − E of a candidate under the upper bound kth + E of the k-th distance
        row, cc = (P <= kth + 2 * E).nonzero(as_tuple=True)
        if len(row) > max(_BUDGET // max(1, self.d), r * (k + 64)):
            return _hard(r, k, q64.device)
        return self._rank(q64, row, cc, r, k)

    def _exact_d2(self, q64: torch.Tensor, row: torch.Tensor, cc: torch.Tensor) -> torch.Tensor:
        """``Σ (q − b)²`` for the pairs ``(row, cc)``, in slices that bound the gathered memory."""
        step = max(1, _BUDGET // max(1, self.d))
        take = torch.Tensor.index_select
        return torch.cat([
            (take(self.A64, 0, cc[i : i + step]) - take(q64, 0, row[i : i + step])).square_().sum(1)
            for i in range(0, len(row), step)  # slices bound memory; not a per-sample loop
        ]) if len(row) else torch.zeros(0, dtype=torch.float64, device=q64.device)

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
        # less than ranking them all exactly. Any type: kept groups past the budget hand the
        # block on (float64 to the plain search), which bounds the memory
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
            if n_groups * g > _BUDGET or (refine and n_groups > max_groups):
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
        return self._rank(q64, row, take(self.order, 0, cc), r, k)

    def _rank(self, q64, row, cc, r, k):
        """Exact ``(d2, idx)`` of ``r`` query rows from candidate pairs ``(row, cc)`` (``cc`` a
        fitted row); rows short of ``k`` candidates get ``-1``."""
        take, dev = torch.Tensor.index_select, q64.device
        if k == 1:  # the nearest: two row-wise minima, no grouping by row needed
            return _nearest(row, cc, self._exact_d2(q64, row, cc), r)
        o = torch.argsort(row, stable=True)  # a few candidates per row: cheap to group by row
        row, cc = take(row, 0, o), take(cc, 0, o)
        d2 = self._exact_d2(q64, row, cc)
        per_row = torch.bincount(row, minlength=r)
        width = max(int(per_row.max()) if len(row) else 0, k)
        starts = torch.cumsum(per_row, 0) - per_row
        slot = row * width + torch.arange(len(row), device=dev) - take(starts, 0, row)
        D = torch.full((r * width,), float("inf"), dtype=torch.float64, device=dev)
        ids = torch.full((r * width,), -1, dtype=torch.int64, device=dev)
        D.index_copy_(0, slot, d2)
        ids.index_copy_(0, slot, cc)
        D, ids = D.view(r, width), ids.view(r, width)
        dist, idx = first_k(D, ids, k)
        idx[per_row < k] = -1
        return dist, idx


def _hard(r: int, k: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """A block handed on (to the float64 product, or from it to the plain search): every index
    is ``_HARD``."""
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


