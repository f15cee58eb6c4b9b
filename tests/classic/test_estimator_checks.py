"""KNNClassifier and KMeans as scikit-learn estimators: scikit-learn's own estimator checks, and
clone / get_params / Pipeline / cross_val_score / GridSearchCV compared with scikit-learn's
KNeighborsClassifier and KMeans; n_neighbors, n_init, random_state; numpy in → numpy out."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from deepnotes.classic import KMeans, KNNClassifier, NearestNeighbor, kmeans_plusplus
from deepnotes.core.seeding import make_generator

_ALL_CHECKS = parametrize_with_checks(
    [KNNClassifier(), KNNClassifier(metric="l1"), NearestNeighbor(), KMeans(), KMeans(init="random")]
)
# Every check runs and none is expected to fail, except scikit-learn's Array API check: these
# estimators do not claim Array API support, and scikit-learn skips that check itself unless
# SCIPY_ARRAY_API is set, so it is left out here instead of showing up as a skip.
_CHECKS = [(estimator, check) for estimator, check in _ALL_CHECKS.args[1]
           if getattr(check, "func", check).__name__ != "check_array_api_input"]


@pytest.mark.parametrize(("estimator", "check"), _CHECKS, ids=_ALL_CHECKS.kwargs["ids"])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _data(seed=0, n=240):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 5)) + y[:, None] * 0.8
    return X * rng.uniform(0.5, 20, size=5), y


def test_clone_and_params_with_the_n_neighbors_name_and_the_old_k_alias():
    knn = KNNClassifier(n_neighbors=4, metric="l1")
    assert knn.get_params() == {"n_neighbors": 4, "metric": "l1", "chunk_size": 128, "k": None}
    twin = clone(knn)
    assert twin is not knn and twin.get_params() == knn.get_params()
    X, y = _data(1)
    old = KNNClassifier(k=7).fit(X, y)  # the old name still works and takes precedence
    new = KNNClassifier(n_neighbors=7).fit(X, y)
    np.testing.assert_array_equal(old.predict(X), new.predict(X))
    assert new.set_params(n_neighbors=2).n_neighbors == 2
    km = KMeans(3, n_init=2, random_state=np.random.RandomState(0))
    assert clone(km).get_params()["n_init"] == 2


def test_pipeline_cross_val_score_equals_sklearn():
    X, y = _data(2)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    ours = Pipeline([("scale", StandardScaler()), ("knn", KNNClassifier(n_neighbors=5))])
    ref = Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier(5, algorithm="brute"))])
    np.testing.assert_array_equal(cross_val_score(ours, X, y, cv=cv), cross_val_score(ref, X, y, cv=cv))
    grid = {"knn__n_neighbors": [1, 3, 9, 15]}
    a = GridSearchCV(ours, grid, cv=cv).fit(X, y)
    b = GridSearchCV(ref, grid, cv=cv).fit(X, y)
    assert a.best_params_ == b.best_params_
    np.testing.assert_array_equal(a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"])


def test_string_labels_and_output_kinds():
    X, y = _data(3)
    names = np.array(["ant", "bee", "cat"])[y]
    knn = KNNClassifier(3).fit(X, names)
    ref = KNeighborsClassifier(3, algorithm="brute").fit(X, names)
    pred = knn.predict(X)
    assert isinstance(pred, np.ndarray) and pred.dtype.kind == "U"
    np.testing.assert_array_equal(pred, ref.predict(X))
    assert np.mean(knn.predict(X) == names) == knn.score(X, names) == ref.score(X, names)
    num = KNNClassifier(3).fit(X, y)
    assert isinstance(num.predict(X), np.ndarray)
    assert isinstance(num.predict_proba(X), np.ndarray)
    Xt = torch.from_numpy(X)
    assert isinstance(num.predict(Xt), torch.Tensor) and isinstance(num.predict_proba(Xt), torch.Tensor)
    np.testing.assert_array_equal(num.predict(Xt).numpy(), num.predict(X))
    km = KMeans(3, random_state=0).fit(X)
    assert isinstance(km.labels_, np.ndarray) and isinstance(km.cluster_centers_, np.ndarray)
    assert isinstance(km.predict(X), np.ndarray) and isinstance(km.transform(X), np.ndarray)
    assert isinstance(km.predict(Xt), torch.Tensor) and isinstance(km.transform(Xt), torch.Tensor)
    kt = KMeans(3, random_state=0).fit(Xt)
    assert isinstance(kt.labels_, torch.Tensor)
    np.testing.assert_array_equal(kt.labels_.numpy(), km.labels_)


def test_kmeans_n_init_keeps_the_best_run():
    X, _ = _data(4, n=300)
    k, n_init = 4, 5
    best = KMeans(k, n_init=n_init, random_state=0).fit(X)
    # the same runs one by one: scikit-learn's seeds, drawn from RandomState(0)
    seeds = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=n_init)
    runs = [
        KMeans(k, init=kmeans_plusplus(torch.from_numpy(X), k, make_generator(int(s))).numpy()).fit(X)
        for s in seeds
    ]
    inertias = [r.inertia_ for r in runs]
    assert best.inertia_ == min(inertias)
    np.testing.assert_array_equal(best.labels_, runs[int(np.argmin(inertias))].labels_)
    # on separated blobs, multi-start finds scikit-learn's multi-start optimum
    Xb, _ = make_blobs(400, n_features=3, centers=6, cluster_std=1.0, random_state=0)
    ref = SKKMeans(6, n_init=10, random_state=0).fit(Xb)
    assert KMeans(6, n_init=10, random_state=0).fit(Xb).inertia_ == pytest.approx(ref.inertia_, rel=1e-9)


def test_kmeans_random_state_kinds():
    X, _ = _data(5, n=200)
    a = KMeans(3, init="random", random_state=np.random.RandomState(7)).fit(X)
    b = KMeans(3, init="random", random_state=np.random.RandomState(7)).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    c = KMeans(3, init="random", random_state=7).fit(X)  # an int seeds RandomState(7), as sklearn
    np.testing.assert_array_equal(a.cluster_centers_, c.cluster_centers_)
    shared = np.random.RandomState(1)  # a shared RandomState advances between fits
    first = KMeans(3, init="random", n_init=1, max_iter=1, random_state=shared).fit(X)
    second = KMeans(3, init="random", n_init=1, max_iter=1, random_state=shared).fit(X)
    assert not np.array_equal(first.cluster_centers_, second.cluster_centers_)
    assert KMeans(init="random").get_params()["n_init"] == "auto"


def test_kmeans_in_a_pipeline_as_a_transformer():
    X, y = _data(6)
    pipe = Pipeline(
        [("km", KMeans(6, random_state=0)), ("scale", StandardScaler()), ("clf", LogisticRegression())]
    )
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and bool((scores > 0.5).all())


def test_estimator_errors():
    X, y = _data(7, n=20)
    with pytest.raises(ValueError, match="n_init"):
        KMeans(2, n_init=0).fit(X)
    with pytest.raises(ValueError, match="Unknown label type"):
        KNNClassifier(3).fit(X, X[:, 0] + 0.5)  # continuous target
    with pytest.raises(ValueError, match="requires y"):
        KNNClassifier(3).fit(X, None)
    with pytest.raises(ValueError, match="features"):
        KNNClassifier(3).fit(X, y).predict(torch.from_numpy(X[:, :2]))
