"""kNN prediction and K-means against scikit-learn, with identical results checked before timing.

* ``knn_predict``: fit 10,000 × 64, predict 2,000 (L2, K = 5) vs
  ``KNeighborsClassifier(algorithm="brute")`` — target ratio <= 1.0;
* ``kmeans``: 100,000 × 16, k = 10, the same initial centres, up to 50 Lloyd iterations (tol = 0)
  vs ``sklearn.cluster.KMeans(algorithm="lloyd", n_init=1)`` — target ratio <= 1.0.

Both sides get the same float64 numpy arrays. Each case is timed with the default threads and
again with one thread on both sides (see :func:`single_thread`): the first row compares the two
libraries as they come, the second the algorithms on equal resources.
"""

from __future__ import annotations

import numpy as np

from deepnotes.bench.api import BenchItem, bench_case


@bench_case(
    "knn_predict",
    reference="sklearn.neighbors.KNeighborsClassifier(algorithm='brute').predict",
    requires=("sklearn",),
    target=1.0,
    description="KNNClassifier.predict vs scikit-learn brute force, identical predictions",
)
def knn_predict_case(quick: bool) -> list[BenchItem]:
    from sklearn.neighbors import KNeighborsClassifier

    from deepnotes.classic import KNNClassifier

    n_fit, n_query = (2_000, 500) if quick else (10_000, 2_000)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(n_fit, 64)), rng.integers(0, 10, n_fit)
    Q = rng.normal(size=(n_query, 64))
    ours = KNNClassifier(n_neighbors=5).fit(X, y)
    ref = KNeighborsClassifier(5, algorithm="brute").fit(X, y)
    if not np.array_equal(ours.predict(Q), ref.predict(Q)):  # numpy in, numpy out
        raise RuntimeError("knn_predict: predictions differ from scikit-learn")
    size = f"fit {n_fit}x64, predict {n_query}"
    return [
        BenchItem(size=size, ours=lambda: ours.predict(Q), reference=lambda: ref.predict(Q), repeats=5),
        BenchItem(size=size + ", 1 thread", ours=single_thread(lambda: ours.predict(Q)),
                  reference=single_thread(lambda: ref.predict(Q)), repeats=5),
    ]


@bench_case(
    "kmeans",
    reference="sklearn.cluster.KMeans(algorithm='lloyd')",
    requires=("sklearn",),
    target=1.0,
    description="KMeans (same init, 50 Lloyd iterations) vs scikit-learn",
)
def kmeans_case(quick: bool) -> list[BenchItem]:
    from sklearn.cluster import KMeans as SKKMeans

    from deepnotes.classic import KMeans

    n = 20_000 if quick else 100_000
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(10, 16))
    X = centres[rng.integers(0, 10, n)] + rng.normal(size=(n, 16))
    init = X[rng.choice(n, 10, replace=False)]

    def ours():
        return KMeans(10, init=init, max_iter=50, tol=0.0).fit(X)

    def ref():
        return SKKMeans(10, init=init, n_init=1, max_iter=50, tol=0.0, algorithm="lloyd").fit(X)

    a, b = ours(), ref()
    if a.n_iter_ != b.n_iter_ or abs(a.inertia_ - b.inertia_) > 1e-6 * abs(b.inertia_):
        raise RuntimeError("kmeans: result differs from scikit-learn")
    size = f"{n}x16, k=10, {b.n_iter_} iterations"
    return [
        BenchItem(size=size, ours=ours, reference=ref, repeats=5),
        BenchItem(size=size + ", 1 thread", ours=single_thread(ours), reference=single_thread(ref), repeats=5),
    ]


def single_thread(fn):
    """``fn`` run with one torch thread and one BLAS/OpenMP thread (restored afterwards).

    On a shared, oversubscribed machine many small parallel regions lose more to thread
    contention than one big one; timing both sides on one thread compares the algorithms.
    """
    import torch
    from threadpoolctl import threadpool_limits

    def run():
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with threadpool_limits(1):
                return fn()
        finally:
            torch.set_num_threads(n)

    return run


@bench_case(
    "knn_clustered_highdim",
    reference="sklearn.neighbors.NearestNeighbors(algorithm='brute').kneighbors",
    requires=("sklearn",),
    target=2.0,
    description="kneighbors on 2,000 x 4,096 clustered points, 100 queries (the filter cannot "
                "prune: bounded memory, float64 product) vs scikit-learn, identical neighbours",
)
def knn_clustered_case(quick: bool) -> list[BenchItem]:
    import torch
    from sklearn.neighbors import NearestNeighbors

    from deepnotes.classic import kneighbors

    rng = np.random.default_rng(0)
    n, d = (1_000, 2_048) if quick else (2_000, 4_096)
    centres = rng.normal(scale=10.0, size=(20, d))
    X = centres[rng.integers(0, 20, n)] + 0.01 * rng.normal(size=(n, d))
    Q = X[:100] + 0.001 * rng.normal(size=(100, d))
    Xt, Qt = torch.from_numpy(X), torch.from_numpy(Q)

    def ours():
        return kneighbors(Qt, Xt, 5)

    def ref():
        return NearestNeighbors(n_neighbors=5, algorithm="brute").fit(X).kneighbors(Q)[1]

    if not np.array_equal(ours().numpy(), ref()):
        raise RuntimeError("knn_clustered_highdim: neighbours differ from scikit-learn")
    size = f"{n}x{d} in 20 tight clusters, 100 queries, k=5"
    return [BenchItem(size=size, ours=ours, reference=ref, repeats=5)]


@bench_case(
    "kmeans_float64_init",
    reference="sklearn.cluster.KMeans(algorithm='lloyd')",
    requires=("sklearn",),
    target=1.0,
    description="KMeans on a numpy float64 array with an explicit init array (10 centres, "
                "50 iterations) vs scikit-learn",
)
def kmeans_float64_case(quick: bool) -> list[BenchItem]:
    from sklearn.cluster import KMeans as SKKMeans

    from deepnotes.classic import KMeans

    n = 20_000 if quick else 100_000
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 16))  # no cluster structure: every iteration moves points
    init = X[:10].copy()

    def ours():
        return KMeans(10, init=init, max_iter=50, tol=0.0).fit(X)

    def ref():
        return SKKMeans(10, init=init, n_init=1, max_iter=50, tol=0.0, algorithm="lloyd").fit(X)

    a, b = ours(), ref()
    if a.n_iter_ != b.n_iter_ or abs(a.inertia_ - b.inertia_) > 1e-6 * abs(b.inertia_):
        raise RuntimeError("kmeans_float64_init: result differs from scikit-learn")
    return [BenchItem(size=f"{n}x16 float64 numpy, k=10, {b.n_iter_} iterations", ours=ours,
                      reference=ref, repeats=3)]
