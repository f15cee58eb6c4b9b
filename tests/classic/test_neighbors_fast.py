"""The certified-filter k-NN search against sklearn.neighbors.NearestNeighbors and the float64 search."""

from __future__ import annotations

import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from deepnotes.classic import neighbors_fast as neighbors
from deepnotes.classic.neighbors import kneighbors_exact
from deepnotes.classic.neighbors_fast import (
    NeighborIndex,
    kneighbors,
    native_bf16,
    score_bounds,
)

PRECISIONS = ["bf16", "f32", "f64"]


def sk(A, Q, k):
    d, i = NearestNeighbors(n_neighbors=k).fit(A.numpy()).kneighbors(Q.numpy())
    return torch.from_numpy(d), torch.from_numpy(i)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("shape", [(3000, 20), (9000, 3), (700, 64), (50, 1)])
def test_indices_and_distances_equal_sklearn(precision, shape):
    g = torch.Generator().manual_seed(shape[0])
    A = torch.randn(*shape, generator=g, dtype=torch.float64)
    Q = torch.randn(400, shape[1], generator=g, dtype=torch.float64)
    k = min(7, shape[0])
    d, i = kneighbors(Q, A, k, return_distance=True, precision=precision)
    d_ref, i_ref = sk(A, Q, k)
    assert torch.equal(i, i_ref)
    # scikit-learn expands ‖a‖² − 2ab + ‖b‖²; we sum (q − b)²: equal to float64 round-off
    torch.testing.assert_close(d, d_ref, rtol=1e-6, atol=1e-6)
    d2, _ = kneighbors(Q, A, k, return_distance=True, squared=True, precision=precision)
    torch.testing.assert_close(d2, ((A[i] - Q.unsqueeze(1)) ** 2).sum(-1), rtol=1e-12, atol=0)


@pytest.mark.parametrize("precision", ["bf16", "f32"])
@pytest.mark.parametrize("tile,rows,group", [(1024, 7, 64), (4096, 256, 32), (2048, 33, 64)])
def test_self_excluded_across_tiles_blocks_and_groups(precision, tile, rows, group, monkeypatch):
    monkeypatch.setattr(neighbors, "_TILE", tile)
    monkeypatch.setattr(neighbors, "_ROWS", rows)
    monkeypatch.setattr(neighbors, "_GROUP", group)
    g = torch.Generator().manual_seed(tile + rows)
    A = torch.randn(9000, 5, generator=g, dtype=torch.float64)
    pick = torch.randperm(9000, generator=g)[:500]
    ours = kneighbors(A[pick], A, 4, self_index=pick, precision=precision)
    _, ref = sk(A, A[pick], 5)
    assert torch.equal(ours, ref[:, 1:])
    assert torch.equal(ours, kneighbors_exact(A[pick], A, 4, self_index=pick, chunk_size=100))


def _hard_sets():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(2000, 8, generator=g, dtype=torch.float64)
    yield "offset 1e6", base + 1e6
    yield "scales 1e-3..1e3", base * torch.logspace(-3, 3, 8, dtype=torch.float64)
    yield "tiny 1e-30", base * 1e-30
    yield "huge 1e30", base * 1e30
    out = base.clone()
    out[0] = 1e4  # one far outlier
    yield "outlier", out
    yield "clusters", base * 1e-3 + torch.randint(0, 5, (2000, 1), generator=g) * 10.0


@pytest.mark.parametrize("precision", ["bf16", "f32"])
@pytest.mark.parametrize("name,A", list(_hard_sets()), ids=lambda v: v if isinstance(v, str) else "")
def test_hard_data_equals_the_float64_search(precision, name, A):
    pick = torch.arange(0, 2000, 7)
    ours = kneighbors(A[pick], A, 6, self_index=pick, precision=precision)
    full = ((A.unsqueeze(0) - A[pick].unsqueeze(1)) ** 2).sum(-1)  # Σ (q − b)², no cancellation
    full[torch.arange(len(pick)), pick] = float("inf")
    ref = torch.argsort(full, dim=1, stable=True)[:, :6]  # by distance, ties by index
    assert torch.equal(ours, ref), name


@pytest.mark.parametrize("k", [1, 9])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_exact_ties_go_to_the_lower_index(precision, k):
    g = torch.Generator().manual_seed(0)
    A = torch.randint(0, 3, (600, 2), generator=g).to(torch.float64)  # many duplicates
    Q = torch.randint(0, 3, (50, 2), generator=g).to(torch.float64)
    d, i = kneighbors(Q, A, k, return_distance=True, squared=True, precision=precision)
    # reference rule: sort candidates by (distance, index)
    full = ((A.unsqueeze(0) - Q.unsqueeze(1)) ** 2).sum(-1)
    key = full * 10_000 + torch.arange(600, dtype=torch.float64)
    ref = torch.argsort(key, dim=1)[:, :k]
    assert torch.equal(i, ref)
    assert torch.equal(d, full.gather(1, ref))


def test_the_error_bound_holds_on_the_actual_products():
    """‖q − b‖² lies in [s̃/(1 + v) − E, max(s̃, 0)/(1 − v) + E] for the folded products of the search."""
    g = torch.Generator().manual_seed(1)
    for dtype in (torch.bfloat16, torch.float32, torch.float64):
        for d in (1, 7, 64, 300):
            Q = torch.randn(200, d, generator=g, dtype=torch.float64)
            B = torch.randn(500, d, generator=g, dtype=torch.float64)
            B[:50] = -Q[:50].sign() * B[:50].abs()  # opposite signs: the −2q·b errors add up
            B[50:60] = Q[50:60] + 1e-3  # near-duplicates: scores near 0, some rounded below it
            b_sq, q_sq = (B * B).sum(1), (Q * Q).sum(1)
            qh = torch.cat([-2 * Q, torch.ones(200, 1, dtype=torch.float64), q_sq[:, None]], 1)
            bh = torch.cat([B, b_sq[:, None], torch.ones(500, 1, dtype=torch.float64)], 1)
            approx = (qh.to(dtype) @ bh.to(dtype).T).to(torch.float64)
            exact = ((Q.unsqueeze(1) - B.unsqueeze(0)) ** 2).sum(-1)
            qn, bn = Q.norm(dim=1, keepdim=True), B.norm(dim=1)
            cross, square, v = score_bounds(dtype, d)
            E = cross * qn * bn + square * (qn**2 + bn**2)
            assert bool((exact >= approx / (1 + v) - E).all()), (dtype, d)
            assert bool((exact <= approx.clamp_min(0) / (1 - v) + E).all()), (dtype, d)
            worst = float(((approx - exact).abs() / (E + v * exact)).max())
            if dtype == torch.bfloat16 and d <= 7:  # the bound is not vacuous
                assert worst > 0.1, (d, worst)


def test_bit_pattern_minimum_of_nonnegative_floats():
    """The group minimum taken on integer views equals the float minimum for scores >= 0."""
    g = torch.Generator().manual_seed(8)
    for dtype, bits in ((torch.bfloat16, torch.int16), (torch.float32, torch.int32)):
        S = (torch.rand(64, 32, 40, generator=g) * 10.0 ** torch.randint(-5, 5, (64, 32, 40), generator=g)).to(dtype)
        S[0, 3, 5] = 0.0
        assert torch.equal(S.view(bits).amin(1).view(dtype), S.amin(1))
        S[1, :, 0] = -S[1, :, 0]  # negatives: still some value <= 0 from the group
        got = S.view(bits).amin(1).view(dtype)
        assert bool((got[1, 0] <= 0) & (S[1, :, 0] == got[1, 0]).any())


@pytest.mark.parametrize("n,k", [(40, 5), (1000, 3), (1000, 15), (1797, 40)])
def test_small_fitted_sets_keep_the_candidate_lists_short(n, k, monkeypatch):
    """Few groups must not leave the upper bound infinite (every point a candidate)."""
    widths = []
    real = neighbors.first_k

    def spy(D, ids, kk):
        widths.append(D.shape[1])
        return real(D, ids, kk)

    monkeypatch.setattr(neighbors, "first_k", spy)
    from sklearn.datasets import load_digits

    A = torch.from_numpy(load_digits().data[:n] / 16.0)  # 64 features, sixteenths: many ties
    ours = kneighbors(A[:200], A, k, precision="bf16")
    assert max(widths) <= max(10 * k, n // 4), widths  # candidates per query, at most
    monkeypatch.setattr(neighbors, "first_k", real)
    assert torch.equal(ours, kneighbors_exact(A[:200], A, k))


@pytest.mark.parametrize("precision", ["bf16", "f32"])
def test_queries_far_outside_the_fitted_set(precision):
    """Scores overflowing the filter type (queries 1e20 away) still give the exact answer."""
    g = torch.Generator().manual_seed(9)
    A = torch.randn(700, 4, generator=g, dtype=torch.float64)
    scale = torch.tensor([1.0, 1e3, 1e20, 1e-3]).repeat_interleave(torch.tensor([10, 10, 5, 5]))
    Q = torch.randn(30, 4, generator=g, dtype=torch.float64) * scale[:, None]
    assert torch.equal(kneighbors(Q, A, 4, precision=precision), kneighbors_exact(Q, A, 4))


@pytest.mark.parametrize("shape,spread", [((6000, 20), 1e-3), ((1500, 784), 1.0)])
def test_data_too_close_for_bfloat16_goes_to_a_finer_product(shape, spread, monkeypatch):
    """Tight clusters far from the mean, or hundreds of dimensions: bfloat16's error bound lets
    most points through, so the search takes float32 tiles (per block) or the float64 product
    (up front in many dimensions); same answer, no blow-up."""
    calls = []
    real_direct, real_f32 = NeighborIndex._direct, NeighborIndex._float32

    def spy_direct(self, *args):
        calls.append("f64")
        return real_direct(self, *args)

    def spy_f32(self):
        calls.append("f32")
        return real_f32(self)

    monkeypatch.setattr(NeighborIndex, "_direct", spy_direct)
    monkeypatch.setattr(NeighborIndex, "_float32", spy_f32)
    g = torch.Generator().manual_seed(shape[1])
    centres = torch.randint(0, 50, (shape[0], 1), generator=g).to(torch.float64) * (spread < 1)
    A = torch.randn(*shape, generator=g, dtype=torch.float64) * spread + centres
    ours = kneighbors(A[:300], A, 5, self_index=torch.arange(300), precision="bf16")
    assert calls
    assert torch.equal(ours, kneighbors_exact(A[:300], A, 5, self_index=torch.arange(300)))


def test_index_is_reusable_and_matches_the_function():
    g = torch.Generator().manual_seed(2)
    A = torch.randn(1500, 6, generator=g, dtype=torch.float64)
    index = NeighborIndex(A, precision="bf16")
    for seed in range(3):
        Q = torch.randn(100, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        assert torch.equal(index.query(Q, 3), kneighbors(Q, A, 3, precision="f64"))


def test_float32_and_integer_inputs():
    g = torch.Generator().manual_seed(4)
    A = torch.randn(800, 4, generator=g)
    assert torch.equal(kneighbors(A[:90], A, 5), sk(A, A[:90], 5)[1])
    Ai = torch.randint(-50, 50, (300, 3), generator=g)
    assert torch.equal(kneighbors(Ai, Ai, 1, self_index=torch.arange(300)),
                       kneighbors_exact(Ai, Ai, 1, self_index=torch.arange(300)))


def test_rows_short_of_candidates_are_redone_exactly(monkeypatch):
    g = torch.Generator().manual_seed(5)
    A = torch.randn(1000, 3, generator=g, dtype=torch.float64)
    real = NeighborIndex.block

    def broken(self, q64, qs, k, own, buffer):
        d, i = real(self, q64, qs, k, own, buffer)
        i[::3] = -1  # pretend every third row ran short
        return d, i

    monkeypatch.setattr(NeighborIndex, "block", broken)
    d, i = kneighbors(A[:200], A, 4, return_distance=True, precision="bf16")
    d_ref, i_ref = kneighbors_exact(A[:200], A, 4, return_distance=True)
    assert torch.equal(i, i_ref)
    torch.testing.assert_close(d, d_ref, rtol=1e-12, atol=0)


def test_bad_input_is_named():
    A = torch.randn(10, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="n_neighbors"):
        kneighbors(A[:3], A[:3], 3, self_index=torch.arange(3))
    with pytest.raises(ValueError, match="n_neighbors"):
        kneighbors(A, A, 11)
    with pytest.raises(TypeError, match="n_neighbors"):
        kneighbors(A, A, 2.5)
    bad = A.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="X_fit contains NaN"):
        kneighbors(A, bad, 2)
    with pytest.raises(ValueError, match="X_query contains NaN"):
        kneighbors(bad, A, 2)
    with pytest.raises(ValueError, match="features"):
        kneighbors(A[:, :2], A, 2)
    with pytest.raises(ValueError, match="self_index"):
        kneighbors(A, A, 2, self_index=torch.arange(4))
    with pytest.raises(ValueError, match="precision"):
        kneighbors(A, A, 2, precision="fp8")
    with pytest.raises(ValueError, match="X_fit"):
        NeighborIndex(torch.randn(0, 3))
    assert isinstance(native_bf16(), bool)
