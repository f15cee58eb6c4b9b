"""KMeans against sklearn.cluster.KMeans(algorithm="lloyd") with the same initial centres."""

import math

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SKKMeans

from deepnotes.classic import KMeans, NotFittedError, kmeans_plusplus
from tests._reference import assert_iterative


def _t(a):
    """numpy out for numpy in: compare as tensors."""
    return torch.as_tensor(a)


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
    assert_iterative(_t(ours.cluster_centers_), torch.from_numpy(ref.cluster_centers_))
    assert_iterative(torch.tensor(ours.inertia_), torch.tensor(ref.inertia_))
    assert torch.equal(_t(ours.labels_), torch.from_numpy(ref.labels_).long())
    assert ours.n_iter_ == ref.n_iter_
    assert torch.equal(_t(ours.predict(X[:50])), torch.from_numpy(ref.predict(X[:50])).long())
    assert_iterative(_t(ours.transform(X[:20])), torch.from_numpy(ref.transform(X[:20])))


def test_empty_cluster_takes_farthest_point():
    # a centre far from all data gets no points in the first assignment; sklearn relocates it
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.2, 5.0], [9.0, 0.0]])
    init = np.array([[0.0, 0.0], [5.0, 5.0], [100.0, 100.0]])
    ours = KMeans(3, init=init, max_iter=1, tol=0.0).fit(X)
    ref = SKKMeans(3, init=init, n_init=1, max_iter=1, tol=0.0, algorithm="lloyd").fit(X)
    assert_iterative(_t(ours.cluster_centers_), torch.from_numpy(ref.cluster_centers_))
    assert_iterative(torch.tensor(ours.inertia_), torch.tensor(ref.inertia_))


def test_kmeans_plusplus_fit_is_good_and_reproducible():
    X, _ = _blobs(5, n=500, k=5)
    a = KMeans(5, random_state=3).fit(X)
    b = KMeans(5, random_state=3).fit(X)
    assert torch.equal(_t(a.labels_), _t(b.labels_))
    best_ref = SKKMeans(5, n_init=10, random_state=0).fit(X).inertia_
    assert a.inertia_ <= 1.05 * best_ref
    seeds = kmeans_plusplus(torch.from_numpy(X), 5, torch.Generator().manual_seed(0))
    assert seeds.shape == (5, 4)
    # every seed is a data point
    exact = torch.cdist(seeds, torch.from_numpy(X), compute_mode="donot_use_mm_for_euclid_dist")
    assert bool((exact.min(1).values == 0).all())
    r = KMeans(5, init="random", random_state=1).fit(X)
    assert _t(r.cluster_centers_).shape == (5, 4)


def test_kmeans_errors():
    X = np.random.default_rng(0).normal(size=(4, 2))
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(5).fit(X)
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(0).fit(X)  # parameters are checked in fit (scikit-learn's contract)
    with pytest.raises(ValueError, match="init"):
        KMeans(2, init="kmeans++").fit(X)
    with pytest.raises(ValueError, match="init"):
        KMeans(2, init=np.zeros((3, 2))).fit(X)
    with pytest.raises(ValueError, match="init"):
        KMeans(2, init=np.zeros((2, 3))).fit(X)
    with pytest.raises(ValueError, match="tol"):
        KMeans(2, tol=-1.0).fit(X)
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
    assert torch.equal(_t(ours.labels_), torch.from_numpy(ref.labels_).long())
    assert_iterative(_t(ours.cluster_centers_), torch.from_numpy(ref.cluster_centers_))


def test_skipped_points_do_not_change_the_result(monkeypatch):
    # overlapping blobs: labels keep moving for many iterations, so most points are skipped by the
    # bounds while some are recomputed, and the result must still be sklearn's
    import deepnotes.classic.kmeans as km

    full_passes = []
    orig = km._Bounds.full
    monkeypatch.setattr(km._Bounds, "full", lambda self, c, lab: full_passes.append(1) or orig(self, c, lab))
    rng = np.random.default_rng(11)
    X = np.concatenate([rng.normal(size=(300, 3)) + c for c in rng.normal(scale=1.5, size=(6, 3))])
    init = X[rng.choice(len(X), 8, replace=False)]
    ours = KMeans(8, init=init, max_iter=200, tol=0.0).fit(X)
    ref = SKKMeans(8, init=init, n_init=1, max_iter=200, tol=0.0, algorithm="lloyd").fit(X)
    assert ours.n_iter_ == ref.n_iter_ and ref.n_iter_ >= 10
    assert len(full_passes) < ours.n_iter_ // 2  # the bounds did skip work
    assert torch.equal(_t(ours.labels_), torch.from_numpy(ref.labels_).long())
    assert_iterative(_t(ours.cluster_centers_), torch.from_numpy(ref.cluster_centers_))
    assert_iterative(torch.tensor(ours.inertia_), torch.tensor(ref.inertia_))


def test_exact_ties_go_to_the_first_centre_like_sklearn():
    # integer points symmetric about 0 (so centring is exact) and integer centres: the first
    # assignment's scores are exact and the points in the middle are real ties, which must go to
    # the first of the equidistant centres; the centres after one iteration show where they went
    init = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    offsets = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    middle = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    X = np.concatenate([(init[:, None] + offsets).reshape(-1, 2), middle, middle])
    assert X.mean(0).tolist() == [0.0, 0.0]
    ours = KMeans(4, init=init, max_iter=1, tol=0.0).fit(X)
    ref = SKKMeans(4, init=init, n_init=1, max_iter=1, tol=0.0, algorithm="lloyd").fit(X)
    assert_iterative(_t(ours.cluster_centers_), torch.from_numpy(ref.cluster_centers_))
    assert_iterative(torch.tensor(ours.inertia_), torch.tensor(ref.inertia_))
    # predict does not centre: integer queries equidistant from 2 or 4 fitted integer centres
    fitted = KMeans(4, init=init, max_iter=1).fit((init[:, None] + offsets).reshape(-1, 2))
    assert torch.equal(_t(fitted.cluster_centers_), torch.from_numpy(init))
    q = middle
    assert _t(fitted.predict(q)).tolist() == [0, 1, 0, 1, 0]
    assert _t(fitted.predict(q)).tolist() == SKKMeans(4, init=init, n_init=1, max_iter=1).fit(
        (init[:, None] + offsets).reshape(-1, 2)).predict(q).tolist()


def test_one_cluster():
    X, _ = _blobs(3, n=100)
    init = X[:1]
    ours = KMeans(1, init=init, max_iter=5, tol=0.0).fit(X)
    ref = SKKMeans(1, init=init, n_init=1, max_iter=5, tol=0.0, algorithm="lloyd").fit(X)
    assert ours.n_iter_ == ref.n_iter_
    assert_iterative(_t(ours.cluster_centers_), torch.from_numpy(ref.cluster_centers_))


def test_random_state_none_is_not_deterministic_and_an_int_is():
    X, _ = _blobs(11, n=300)
    X = torch.as_tensor(X)
    inits = {tuple(KMeans(5, init="random", random_state=None, max_iter=1).fit(X)
                   .cluster_centers_[0].tolist()) for _ in range(6)}
    assert len(inits) > 1  # sklearn: None draws fresh randomness per fit
    a = KMeans(5, init="random", random_state=3, max_iter=1).fit(X).cluster_centers_
    assert torch.equal(a, KMeans(5, init="random", random_state=3, max_iter=1).fit(X).cluster_centers_)


def test_predict_far_from_the_origin_equals_the_fitted_labels():
    """At an offset of 1e8, predict without centring agreed with labels_ on 19 % of rows."""
    g = np.random.default_rng(0)
    X = g.normal(size=(2000, 4)) + 1e8
    km = KMeans(8, random_state=0).fit(X)
    assert torch.equal(_t(km.predict(X)), _t(km.labels_))
    C = km.cluster_centers_
    exact = ((X[:, None, :] - C[None]) ** 2).sum(-1).argmin(1)  # Σ (x − c)²: no cancellation
    assert _t(km.predict(X)).tolist() == exact.tolist()


@pytest.mark.parametrize("scale", [1e154, 1e300, 1e-300])
def test_any_finite_magnitude(scale):
    X, _ = _blobs(4, n=200)
    X = np.asarray(X, dtype=np.float64)
    init = X[:3]
    ours = KMeans(3, init=init * scale, max_iter=20).fit(X * scale)
    ref = KMeans(3, init=init, max_iter=20).fit(X)
    assert torch.equal(_t(ours.labels_), _t(ref.labels_))
    torch.testing.assert_close(_t(ours.cluster_centers_) / scale, _t(ref.cluster_centers_), rtol=1e-12, atol=0)
    # inf (1e154: the true value exceeds float64) and 0 (1e-300: below it) included
    assert math.isclose(ours.inertia_, ref.inertia_ * scale * scale, rel_tol=1e-9, abs_tol=1e-300)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tol,max_iter", [(1e-4, 300), (0.0, 300), (0.0, 2)])
def test_readable_lloyd_equals_sklearn_and_the_fast_kmeans(seed, tol, max_iter):
    from deepnotes.classic import lloyd

    X, rng = _blobs(seed, n=600, d=5, k=6)
    init = X[rng.choice(len(X), 6, replace=False)]
    Xt, It = torch.from_numpy(X), torch.from_numpy(init)
    centers, labels, inertia, n_iter = lloyd(Xt, It, max_iter=max_iter, tol=tol)
    ref = SKKMeans(6, init=init, n_init=1, max_iter=max_iter, tol=tol, algorithm="lloyd").fit(X)
    assert n_iter == ref.n_iter_
    assert labels.tolist() == ref.labels_.tolist()
    assert_iterative(centers, torch.from_numpy(ref.cluster_centers_))
    assert math.isclose(inertia, ref.inertia_, rel_tol=1e-9)
    fast = KMeans(6, init=init, max_iter=max_iter, tol=tol).fit(X)
    assert torch.equal(_t(fast.labels_), labels) and fast.n_iter_ == n_iter
    assert_iterative(_t(fast.cluster_centers_), centers)


def test_readable_lloyd_relocates_empty_clusters_like_sklearn():
    from deepnotes.classic import lloyd

    X, _ = _blobs(7, n=200, d=2, k=2)
    init = np.array([[0.0, 0.0], [0.1, 0.0], [500.0, 500.0]])  # the third centre attracts nothing
    centers, labels, _, n_iter = lloyd(torch.from_numpy(X), torch.from_numpy(init), tol=0.0)
    ref = SKKMeans(3, init=init, n_init=1, tol=0.0, algorithm="lloyd").fit(X)
    assert labels.tolist() == ref.labels_.tolist() and n_iter == ref.n_iter_
    assert_iterative(centers, torch.from_numpy(ref.cluster_centers_))


def test_kmeans_plusplus_far_from_the_origin_draws_the_same_rows():
    # the seeding works on centred data: an offset of 1e4 must not change the draws
    X = torch.randn(500, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    near = kmeans_plusplus(X, 20, torch.Generator().manual_seed(1))
    far = kmeans_plusplus(X + 1e4, 20, torch.Generator().manual_seed(1))
    torch.testing.assert_close(far - 1e4, near, rtol=0, atol=1e-9)  # the same points drawn
    assert bool(((X + 1e4)[:, None] == far[None]).all(-1).any(0).all())  # seeds are rows of X


def test_kmeans_plusplus_second_seed_follows_the_squared_distance_law():
    # one candidate draw per step when k = 2 gives 2 + ln 2 -> 2 candidates; with points at 0, 0,
    # 1 and 3 and the first seed at 0, the second is 3 unless both candidates are 1: P = 1 - 0.1²
    X = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], dtype=torch.float64)
    far = total = 0
    for seed in range(600):
        seeds = kmeans_plusplus(X, 2, torch.Generator().manual_seed(seed))
        if float(seeds[0, 0]) == 0.0:
            total += 1
            far += float(seeds[1, 0]) == 3.0
            assert float(seeds[1, 0]) != 0.0  # a point at distance 0 has probability 0
    p = 1 - 0.1**2
    assert abs(far / total - p) < 4 * np.sqrt(p * (1 - p) / total) + 1e-9
