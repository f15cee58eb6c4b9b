"""Samplers against imbalanced-learn: same class counts for every strategy, same indices and same
synthetic points for a fixed seed, SMOTE geometry and neighbour sets, ADASYN's counts."""

from collections import Counter

import numpy as np
import pytest
import torch
from imblearn import over_sampling as imb_over
from imblearn import under_sampling as imb_under
from imblearn.utils import check_sampling_strategy
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_classification
from sklearn.neighbors import NearestNeighbors

from deepnotes.imbalance import (
    ADASYN,
    SMOTE,
    ClusterCentroids,
    GaussianNoiseOverSampler,
    RandomOverSampler,
    RandomUnderSampler,
    adasyn_counts,
    kneighbors,
    resolve_sampling_strategy,
)
from tests._reference import assert_iterative, assert_same_maths


def data(seed=0, n=300, weights=(0.6, 0.3, 0.1), d=4):
    X, y = make_classification(
        n_samples=n,
        n_features=d,
        n_informative=3,
        n_redundant=0,
        n_classes=len(weights),
        n_clusters_per_class=1,
        weights=list(weights),
        random_state=seed,
    )
    return X, y + 3  # labels 3, 4, 5: codes and labels differ


OVER = [
    "auto",
    "minority",
    "not majority",
    "not minority",
    "all",
    {4: 200, 5: 190},
    lambda y: {5: int((y == 3).sum())},
]
UNDER = ["auto", "majority", "not minority", "not majority", "all", {3: 40, 4: 30}]


@pytest.mark.parametrize("strategy", OVER, ids=str)
def test_over_strategy_matches_imblearn(strategy):
    X, y = data()
    classes, counts = np.unique(y, return_counts=True)
    ours = resolve_sampling_strategy(strategy, classes, counts, "over-sampling")
    assert dict(ours) == dict(check_sampling_strategy(strategy, y, "over-sampling"))
    for ours_s, ref_s in [(RandomOverSampler, imb_over.RandomOverSampler), (SMOTE, imb_over.SMOTE)]:
        _, yo = ours_s(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
        _, yr = ref_s(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
        assert Counter(yo) == Counter(yr)


@pytest.mark.parametrize("strategy", UNDER, ids=str)
def test_under_strategy_matches_imblearn(strategy):
    X, y = data()
    classes, counts = np.unique(y, return_counts=True)
    ours = resolve_sampling_strategy(strategy, classes, counts, "under-sampling")
    assert dict(ours) == dict(check_sampling_strategy(strategy, y, "under-sampling"))
    _, yo = RandomUnderSampler(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
    _, yr = imb_under.RandomUnderSampler(sampling_strategy=strategy, random_state=0).fit_resample(
        X, y
    )
    assert Counter(yo) == Counter(yr)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 1.0])
def test_float_strategy_binary_matches_imblearn(ratio):
    X, y = data(weights=(0.85, 0.15))
    for kind in ("over-sampling", "under-sampling"):
        classes, counts = np.unique(y, return_counts=True)
        ours = resolve_sampling_strategy(ratio, classes, counts, kind)
        assert dict(ours) == dict(check_sampling_strategy(ratio, y, kind))


@pytest.mark.parametrize("replacement", [False, True])
@pytest.mark.parametrize("seed", [0, 7])
def test_random_under_same_indices(replacement, seed):
    X, y = data(seed)
    ours = RandomUnderSampler(random_state=seed, replacement=replacement)
    ref = imb_under.RandomUnderSampler(random_state=seed, replacement=replacement)
    Xo, yo = ours.fit_resample(X, y)
    Xr, yr = ref.fit_resample(X, y)
    assert np.array_equal(ours.sample_indices_, ref.sample_indices_)
    assert np.array_equal(Xo, Xr) and np.array_equal(yo, yr)


@pytest.mark.parametrize("seed", [0, 3])
def test_random_over_same_indices(seed):
    X, y = data(seed)
    ours, ref = RandomOverSampler(random_state=seed), imb_over.RandomOverSampler(random_state=seed)
    Xo, yo = ours.fit_resample(X, y)
    Xr, yr = ref.fit_resample(X, y)
    assert np.array_equal(ours.sample_indices_, ref.sample_indices_)
    assert np.array_equal(Xo, Xr) and np.array_equal(yo, yr)


@pytest.mark.parametrize("shrinkage", [0.0, 0.5, 2.0])
def test_gaussian_noise_equals_smoothed_bootstrap(shrinkage):
    X, y = data(1)
    ours = GaussianNoiseOverSampler(shrinkage=shrinkage, random_state=4)
    ref = imb_over.RandomOverSampler(shrinkage=shrinkage, random_state=4)
    Xo, yo = ours.fit_resample(X, y)
    Xr, yr = ref.fit_resample(X, y)
    assert_same_maths(torch.from_numpy(Xo), torch.from_numpy(Xr))
    assert np.array_equal(yo, yr)


def test_gaussian_noise_spread_is_the_bandwidth():
    # the noise of the copies has the per-feature std shrinkage * h * sigma_class (z-test over 20k)
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(100, 2)), rng.normal(0, 3, size=(20_000, 2))])
    y = np.r_[np.zeros(100, int), np.ones(20_000, int)]
    s = GaussianNoiseOverSampler(shrinkage=1.0, random_state=0)
    Xo, _ = s.fit_resample(X, y)
    noise = Xo[len(X) :] - X[s.sample_indices_[len(X) :]]
    h = (4 / (4 * len(X))) ** (1 / 6)
    expected = h * X[:100].std(0)
    assert np.allclose(noise.std(0), expected, rtol=0.03)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("seed", [0, 11])
def test_smote_same_points_as_imblearn(k, seed):
    X, y = data(seed)
    Xo, yo = SMOTE(k_neighbors=k, random_state=seed).fit_resample(X, y)
    Xr, yr = imb_over.SMOTE(k_neighbors=k, random_state=seed).fit_resample(X, y)
    assert_same_maths(torch.from_numpy(Xo), torch.from_numpy(Xr))
    assert np.array_equal(yo, yr)


def test_smote_points_lie_on_segments_to_a_neighbour():
    X, y = data(2)
    s = SMOTE(k_neighbors=4, random_state=0)
    Xo, yo = s.fit_resample(X, y)
    for c_code, label in enumerate((3, 4, 5)):
        if c_code not in s.neighbors_:
            continue
        Xc = X[y == label]
        new = Xo[len(X) :][yo[len(X) :] == label]
        # slow reference: for each new point, some (sample, neighbour) pair has it on its segment
        nbr = s.neighbors_[c_code].numpy()
        a = Xc[:, None, :]  # (m, 1, d)
        b = Xc[nbr]  # (m, k, d)
        for p in new[:40]:
            t = ((p - a) * (b - a)).sum(-1) / ((b - a) ** 2).sum(-1)
            closest = a + np.clip(t, 0, 1)[..., None] * (b - a)
            assert np.linalg.norm(closest - p, axis=-1).min() < 1e-9


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kneighbors_equals_sklearn(dtype):
    g = torch.Generator().manual_seed(0)
    A = torch.randn(300, 6, generator=g, dtype=torch.float64)
    Q = torch.randn(50, 6, generator=g, dtype=torch.float64)
    ours = kneighbors(Q.to(dtype), A.to(dtype), 7, chunk_size=16)
    ref = (
        NearestNeighbors(n_neighbors=7).fit(A.to(dtype).numpy()).kneighbors(Q.to(dtype).numpy())[1]
    )
    assert torch.equal(ours, torch.from_numpy(ref))
    # queries that are rows of the fitted set: sklearn's list without the point itself
    own = kneighbors(A, A, 5, self_index=torch.arange(300), chunk_size=64)
    ref_own = NearestNeighbors(n_neighbors=6).fit(A.numpy()).kneighbors(A.numpy())[1][:, 1:]
    assert torch.equal(own, torch.from_numpy(ref_own))


@pytest.mark.parametrize("seed", [0, 5])
def test_adasyn_same_points_as_imblearn(seed):
    X, y = data(seed, weights=(0.5, 0.3, 0.2))
    Xo, yo = ADASYN(random_state=seed).fit_resample(X, y)
    Xr, yr = imb_over.ADASYN(random_state=seed).fit_resample(X, y)
    assert_same_maths(torch.from_numpy(Xo), torch.from_numpy(Xr))
    assert np.array_equal(yo, yr)


def test_adasyn_counts_follow_the_formula():
    X, y = data(4, weights=(0.8, 0.2))
    s = ADASYN(n_neighbors=5, random_state=0)
    s.fit_resample(X, y)
    minority = X[y == 4]
    n_new = s.sampling_strategy_[4]
    # slow reference: fraction of majority points among the 5 neighbours, normalised, rounded
    d = ((minority[:, None] - X[None]) ** 2).sum(-1)
    d[np.arange(len(minority)), np.flatnonzero(y == 4)] = np.inf
    nn = np.argsort(d, axis=1)[:, :5]
    r = (y[nn] != 4).mean(1)
    assert np.array_equal(s.n_generated_[1].numpy(), np.rint(r / r.sum() * n_new).astype(int))
    assert adasyn_counts(torch.tensor([0.0, 0.5, 1.5]), 9).tolist() == [0, 2, 7]  # 2.25, 6.75


def test_cluster_centroids_are_kmeans_centroids():
    X, y = data(3, n=240)
    s = ClusterCentroids(random_state=2)
    Xo, yo = s.fit_resample(X, y)
    minority = int(np.bincount(y)[3:].min())
    assert Counter(yo) == {3: minority, 4: minority, 5: minority}
    assert np.array_equal(Xo[yo == 5], X[y == 5])
    for label, code in ((3, 0), (4, 1)):
        Xc = X[y == label]
        seeds = s.cluster_seeds_[code].numpy()
        assert all((Xc == p).all(1).any() for p in seeds)  # seeds are samples of the class
        ref = SkKMeans(minority, init=seeds, n_init=1, algorithm="lloyd").fit(Xc)
        assert_iterative(torch.from_numpy(Xo[yo == label]), torch.from_numpy(ref.cluster_centers_))
        assert np.array_equal(s.labels_[code].numpy(), ref.labels_)
        # and every centre is the mean of the points assigned to it
        for j in range(minority):
            assert np.allclose(
                Xc[s.labels_[code].numpy() == j].mean(0), Xo[yo == label][j], atol=1e-12
            )


@pytest.mark.parametrize(
    "sampler",
    [
        RandomUnderSampler(random_state=0),
        RandomOverSampler(random_state=0),
        SMOTE(random_state=0),
        ADASYN(random_state=0),
        GaussianNoiseOverSampler(random_state=0),
        ClusterCentroids(random_state=0),
    ],
    ids=lambda s: type(s).__name__,
)
def test_torch_input_gives_torch_output_and_keeps_dtype(sampler):
    X, y = data(0)
    Xn, yn = sampler.fit_resample(X.astype(np.float32), y.astype(np.int32))
    assert Xn.dtype == np.float32 and yn.dtype == np.int32
    Xt, yt = sampler.fit_resample(torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y))
    assert isinstance(Xt, torch.Tensor) and Xt.dtype == torch.float32 and yt.dtype == torch.int64
    assert np.array_equal(Xt.numpy(), Xn) and np.array_equal(yt.numpy(), yn)
