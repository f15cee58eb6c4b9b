"""The readable chunked search against scikit-learn, and the fast search against it on the
adversarial cases: clusters in many dimensions, huge and tiny magnitudes, offsets, duplicates,
near-ties; bounded memory and no global torch state changed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from deepnotes.classic import KMeans, KNNClassifier
from deepnotes.classic.neighbors import kneighbors_exact
from deepnotes.classic.neighbors_fast import NeighborIndex, kneighbors
from deepnotes.imbalance import SMOTE

PRECISIONS = ["auto", "bf16", "f32", "f64"]


def sk(A, Q, k):
    d, i = NearestNeighbors(n_neighbors=k).fit(A.numpy()).kneighbors(Q.numpy())
    return torch.from_numpy(d), torch.from_numpy(i)


@pytest.mark.parametrize("shape", [(500, 3), (300, 40), (64, 700)])
def test_readable_search_equals_sklearn(shape):
    g = torch.Generator().manual_seed(shape[1])
    A = torch.randn(*shape, generator=g, dtype=torch.float64)
    Q = torch.randn(37, shape[1], generator=g, dtype=torch.float64)
    d, i = kneighbors_exact(Q, A, 5, return_distance=True, chunk_size=7)
    d_ref, i_ref = sk(A, Q, 5)
    assert torch.equal(i, i_ref)
    torch.testing.assert_close(d, d_ref, rtol=1e-12, atol=1e-12)
    d2, _ = kneighbors_exact(Q, A, 5, return_distance=True, squared=True)
    torch.testing.assert_close(d2, d_ref**2, rtol=1e-12, atol=1e-12)


def test_readable_search_in_column_blocks_and_self_index(monkeypatch):
    """Blocks of fitted rows merge into the same k best; a query never returns itself."""
    from deepnotes.classic import neighbors

    g = torch.Generator().manual_seed(4)
    A = torch.randn(300, 4, generator=g, dtype=torch.float64)
    whole = kneighbors_exact(A, A, 6, self_index=torch.arange(300))
    monkeypatch.setattr(neighbors, "_BLOCK", 50)  # 50 // 4 = 12 rows per block of columns
    assert torch.equal(kneighbors_exact(A, A, 6, self_index=torch.arange(300)), whole)
    assert torch.equal(whole, sk(A, A, 7)[1][:, 1:])


def _clustered(n, d, seed, spread=0.01, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(20, d, generator=g, dtype=torch.float64) * 10 + offset
    labels = torch.randint(0, 20, (n,), generator=g)
    return centres[labels] + spread * torch.randn(n, d, generator=g, dtype=torch.float64)


def _cases():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(400, 6, generator=g, dtype=torch.float64)
    dup = base[torch.randint(0, 40, (400,), generator=g)]  # exact duplicates, many ties
    grid = torch.randint(-3, 4, (400, 5), generator=g).to(torch.float64)  # integer grid: ties
    near = base.clone()
    near[1::2] = near[::2] + 1e-13  # near-ties: pairs that differ in the last bits
    return {
        "clustered high dimension": _clustered(300, 1024, 1),
        "offset 1e8": base + 1e8,
        "clustered offset 1e8": _clustered(300, 8, 2, offset=1e8),
        "norms 1e154": base * 1e154,
        "values 1e300": base * 1e300,
        "values 1e-300": base * 1e-300,
        "duplicates": dup,
        "integer grid": grid,
        "near-ties": near,
    }


CASES = _cases()


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", list(CASES))
def test_fast_search_agrees_with_the_readable_one(name, precision):
    """Same indices (ties by the lower index) and the same distances, no exception, whatever
    the magnitude: the adversarial cases of the issue."""
    A = CASES[name]
    own = torch.arange(0, len(A), 3)
    d, i = kneighbors(A[own], A, 4, self_index=own, return_distance=True, precision=precision)
    d_ref, i_ref = kneighbors_exact(A[own], A, 4, self_index=own, return_distance=True)
    assert torch.equal(i, i_ref)
    assert bool(torch.isfinite(d).all())
    torch.testing.assert_close(d, d_ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("scale", [1e154, 1e300, 1e-300])
def test_no_overflow_and_sklearn_agrees_at_any_magnitude(scale):
    g = torch.Generator().manual_seed(3)
    A = torch.randn(200, 5, generator=g, dtype=torch.float64)
    d, i = kneighbors(A[:50] * scale, A * scale, 3, return_distance=True)
    d_ref, i_ref = sk(A, A[:50], 3)  # the same search before scaling
    assert torch.equal(i, i_ref)
    torch.testing.assert_close(d / scale, d_ref, rtol=1e-12, atol=0)


def test_queries_far_outside_a_tiny_fitted_set():
    g = torch.Generator().manual_seed(5)
    A = torch.randn(100, 3, generator=g, dtype=torch.float64) * 1e-300
    Q = torch.randn(10, 3, generator=g, dtype=torch.float64) * 1e300
    assert torch.equal(kneighbors(Q, A, 3), kneighbors_exact(Q, A, 3))


def test_samplers_knn_and_kmeans_take_huge_finite_values():
    """The OverflowError of the issue reached every caller of the search."""
    g = np.random.default_rng(0)
    X = g.normal(size=(60, 4)) * 1e154
    y = np.array([0] * 45 + [1] * 15)
    X_res, y_res = SMOTE(k_neighbors=3, random_state=0).fit_resample(X, y)
    assert np.isfinite(X_res).all() and np.bincount(y_res).tolist() == [45, 45]
    Xt = torch.from_numpy(X)
    pred = KNNClassifier(3).fit(Xt, torch.from_numpy(y)).predict(Xt)
    ref = NearestNeighbors(n_neighbors=3).fit(X / 1e154).kneighbors(X / 1e154)[1]
    assert torch.equal(pred, torch.from_numpy((y[ref].mean(1) > 0.5).astype(np.int64)))
    km = KMeans(3, random_state=0).fit(Xt)
    assert bool(torch.isfinite(km.cluster_centers_).all())


def test_no_global_torch_state_is_changed(monkeypatch):
    """Thread count and TF32 flags are never set, not even temporarily."""
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    g = torch.Generator().manual_seed(6)
    A = torch.randn(30_000, 8, generator=g, dtype=torch.float64)  # several column tiles
    index = NeighborIndex(A)
    index.query(A[:2000], 3, self_index=torch.arange(2000))
    KNNClassifier(3).fit(A[:3000], (A[:3000, 0] > 0).long()).predict(A[:500])
    KMeans(4, random_state=0, max_iter=5).fit(A[:5000])
    assert calls == []
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == tf32


_PEAK = """
import resource, sys, torch
from deepnotes.classic.neighbors_fast import kneighbors
g = torch.Generator().manual_seed(0)
centres = torch.randn(20, 4096, generator=g, dtype=torch.float64) * 10
A = centres[torch.randint(0, 20, (2000,), generator=g)]
A += 0.01 * torch.randn(2000, 4096, generator=g, dtype=torch.float64)
Q = A[:100] + 0.001 * torch.randn(100, 4096, generator=g, dtype=torch.float64)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
idx = kneighbors(Q, A, 5, precision=sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024, int(idx[0, 0]))
"""


@pytest.mark.parametrize("precision", ["auto", "f32"])
def test_peak_memory_of_the_clustered_high_dimensional_case(precision):
    """100 queries against 2,000 × 4,096 clustered points (the set itself: 64 MB) took 7.2 GB;
    the peak resident memory may now grow by at most 300 MB during the search (fresh process:
    ru_maxrss is a process-wide high-water mark)."""
    out = subprocess.run([sys.executable, "-c", _PEAK, precision], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    grown, first = out.stdout.split()
    assert float(grown) < 300, out.stdout
    assert first == "0"
