"""KMeans against sklearn.cluster.KMeans(algorithm="lloyd") with the same initial centres."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SKKMeans

from deepnotes.classic import KMeans, NotFittedError, kmeans_plusplus
from tests._reference import assert_iterative


def _blobs(seed, n=400, d=4, k=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4, size=(k, d))
    return np.concatenate([rng.normal(size=(n // k, d)) + c for c in centres]), rng


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tol,max_iter", [(1e-4, 300), (0.0, 300), (0.0, 3)])
def test_same_init_same_result_as_sklearn(seed, tol, max_iter):
    X, rng = _blobs(seed)
    init = X[rng.choice(len(X), 6, replace=False)]
    ours = KMeans(6, init=init, max_iter=max_iter, tol=tol).fit(X)
    ref = SKKMeans(6, init=init, n_init=1, max_iter=max_iter, tol=tol, algorithm="lloyd").fit(X)
    assert_iterative(ours.cluster_centers_, torch.from_numpy(ref.cluster_centers_))
    assert_iterative(torch.tensor(ours.inertia_), torch.tensor(ref.inertia_))
    assert torch.equal(ours.labels_, torch.from_numpy(ref.labels_).long())
    assert ours.n_iter_ == ref.n_iter_
    assert torch.equal(ours.predict(X[:50]), torch.from_numpy(ref.predict(X[:50])).long())
    assert_iterative(ours.transform(X[:20]), torch.from_numpy(ref.transform(X[:20])))


def test_empty_cluster_takes_farthest_point():
    # a centre far from all data gets no points in the first assignment; sklearn relocates it
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.2, 5.0], [9.0, 0.0]])
    init = np.array([[0.0, 0.0], [5.0, 5.0], [100.0, 100.0]])
    ours = KMeans(3, init=init, max_iter=1, tol=0.0).fit(X)
    ref = SKKMeans(3, init=init, n_init=1, max_iter=1, tol=0.0, algorithm="lloyd").fit(X)
    assert_iterative(ours.cluster_centers_, torch.from_numpy(ref.cluster_centers_))
    assert_iterative(torch.tensor(ours.inertia_), torch.tensor(ref.inertia_))


def test_kmeans_plusplus_fit_is_good_and_reproducible():
    X, _ = _blobs(5, n=500, k=5)
    a = KMeans(5, random_state=3).fit(X)
    b = KMeans(5, random_state=3).fit(X)
    assert torch.equal(a.labels_, b.labels_)
    best_ref = SKKMeans(5, n_init=10, random_state=0).fit(X).inertia_
    assert a.inertia_ <= 1.05 * best_ref
    seeds = kmeans_plusplus(torch.from_numpy(X), 5, torch.Generator().manual_seed(0))
    assert seeds.shape == (5, 4)
    # every seed is a data point
    exact = torch.cdist(seeds, torch.from_numpy(X), compute_mode="donot_use_mm_for_euclid_dist")
    assert bool((exact.min(1).values == 0).all())
    r = KMeans(5, init="random", random_state=1).fit(X)
    assert r.cluster_centers_.shape == (5, 4)


def test_kmeans_errors():
    X = np.random.default_rng(0).normal(size=(4, 2))
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(5).fit(X)
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(0)
    with pytest.raises(ValueError, match="init"):
        KMeans(2, init="kmeans++")
    with pytest.raises(ValueError, match="init"):
        KMeans(2, init=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="init"):
        KMeans(2, init=np.zeros((2, 3))).fit(X)
    with pytest.raises(ValueError, match="tol"):
        KMeans(2, tol=-1.0)
    with pytest.raises(NotFittedError, match="fit"):
        KMeans(2).predict(X)
    with pytest.raises(ValueError, match="X"):
        KMeans(2).fit(X).predict(np.zeros((2, 3)))


def test_row_blocks_do_not_change_the_result(monkeypatch):
    import deepnotes.classic.kmeans as km

    X, rng = _blobs(7, n=1000)
    init = X[rng.choice(len(X), 5, replace=False)]
    ref = SKKMeans(5, init=init, n_init=1, max_iter=100, tol=0.0, algorithm="lloyd").fit(X)
    monkeypatch.setattr(km, "_CHUNK", 64)  # 16 blocks, the last one partial
    ours = KMeans(5, init=init, max_iter=100, tol=0.0).fit(X)
    assert torch.equal(ours.labels_, torch.from_numpy(ref.labels_).long())
    assert_iterative(ours.cluster_centers_, torch.from_numpy(ref.cluster_centers_))
