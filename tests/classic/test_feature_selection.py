"""f_classif, chi2, SelectKBest and VarianceThreshold against sklearn.feature_selection: scores and
p-values (float64, randomized), masks with ties and NaN scores, k='all', k=0, k > n_features,
constant features, NaN input to VarianceThreshold, scikit-learn's estimator checks, Pipeline /
GridSearchCV, numpy in → numpy out and torch in → torch out, and one error test per bad argument."""

import numpy as np
import pytest
import torch
from sklearn import feature_selection as skfs
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from deepnotes.classic import NotFittedError, SelectKBest, VarianceThreshold, chi2, f_classif
from tests._reference import assert_same_maths

_ALL_CHECKS = parametrize_with_checks(
    [SelectKBest(), SelectKBest(k=1), SelectKBest(chi2, k="all"), VarianceThreshold(), VarianceThreshold(1e-3)]
)
# As in test_estimator_checks.py: the Array API check is left out (no Array API support is claimed;
# scikit-learn skips it itself unless SCIPY_ARRAY_API is set).
_CHECKS = [(estimator, check) for estimator, check in _ALL_CHECKS.args[1]
           if getattr(check, "func", check).__name__ != "check_array_api_input"]


@pytest.mark.parametrize(("estimator", "check"), _CHECKS, ids=_ALL_CHECKS.kwargs["ids"])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _data(seed, n=60, f=8, k=3, counts=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, f)) * rng.uniform(0.5, 3, size=f)
    X[:, : f // 2] += y[:, None] * rng.uniform(0, 1.5, size=f // 2)  # half the features informative
    if counts:
        X = rng.poisson(2 + 3 * (y[:, None] == np.arange(f)[None] % k), size=(n, f)).astype(np.float64)
    return X, y


# ------------------------------------------------------------------------------- score functions
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [2, 3, 5])
def test_f_classif_matches_sklearn(seed, k):
    X, y = _data(seed, k=k)
    f, p = f_classif(X, y)
    rf, rp = skfs.f_classif(X, y)
    assert isinstance(f, np.ndarray) and isinstance(p, np.ndarray)
    assert_same_maths(f, rf, rtol=1e-10, atol=0)
    assert_same_maths(p, rp, rtol=1e-8, atol=1e-300)
    ft, pt = f_classif(torch.from_numpy(X), torch.from_numpy(y))  # torch in → torch out
    assert isinstance(ft, torch.Tensor) and torch.equal(ft, torch.from_numpy(f)) and torch.equal(pt, torch.from_numpy(p))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [2, 4])
def test_chi2_matches_sklearn(seed, k):
    X, y = _data(seed, k=k, counts=True)
    X[:, 0] *= 0.37  # frequencies, not only integers
    s, p = chi2(X, y)
    rs, rp = skfs.chi2(X, y)
    assert_same_maths(s, rs, rtol=1e-10, atol=0)
    assert_same_maths(p, rp, rtol=1e-8, atol=1e-300)
    st, pt = chi2(torch.from_numpy(X), torch.from_numpy(y))
    assert isinstance(st, torch.Tensor) and torch.equal(st, torch.from_numpy(s)) and torch.equal(pt, torch.from_numpy(p))


def test_string_labels_and_a_label_column():
    X, y = _data(7)
    names = np.array(["cat", "ant", "bee"])[y]
    assert_same_maths(f_classif(X, names)[0], skfs.f_classif(X, names)[0], rtol=1e-10, atol=0)
    Xc = np.abs(X)
    assert_same_maths(chi2(Xc, names)[0], skfs.chi2(Xc, names)[0], rtol=1e-10, atol=0)
    with pytest.warns(Warning, match="column-vector"):
        f, _ = f_classif(X, y[:, None])
    assert_same_maths(f, skfs.f_classif(X, y)[0], rtol=1e-10, atol=0)


def test_degenerate_features_match_sklearn():
    # 4 classes of 8 samples: sklearn's raw sums are exact on these small integers, so its NaN / inf
    # come out exactly too
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(4), 8)
    X = rng.normal(size=(32, 4))
    X[:, 1] = 2.0           # constant: F = NaN, p = NaN
    X[:, 2] = 3.0 * y       # constant within each class: F = inf, p = 0
    X[:, 3] = 0.1           # constant and not exactly representable: still NaN for us
    with pytest.warns(UserWarning, match="constant"):
        f, p = f_classif(X, y)
    with pytest.warns(UserWarning, match="constant"), np.errstate(all="ignore"):
        rf, rp = skfs.f_classif(X[:, :3], y)
    np.testing.assert_array_equal(np.isnan(f[:3]), np.isnan(rf))
    assert np.isnan(f[1]) and np.isnan(p[1]) and np.isnan(rf[1]) and np.isnan(rp[1])
    assert f[2] == rf[2] == np.inf and p[2] == rp[2] == 0.0
    assert np.isnan(f[3]) and np.isnan(p[3])
    assert_same_maths(f[0], rf[0], rtol=1e-10, atol=0)
    # chi2: an all-zero feature is 0 / 0
    C = np.abs(X[:, :2])
    C[:, 1] = 0.0
    s, q = chi2(C, y)
    rs, rq = skfs.chi2(C, y)
    assert np.isnan(s[1]) and np.isnan(q[1]) and np.isnan(rs[1]) and np.isnan(rq[1])
    assert_same_maths(s[0], rs[0], rtol=1e-10, atol=0)


def test_one_class_or_one_sample_per_class_gives_nan_like_sklearn():
    X, _ = _data(4, n=6, f=3)
    X = np.abs(X)
    one = np.zeros(6, dtype=int)
    for ours, ref in ((f_classif, skfs.f_classif), (chi2, skfs.chi2)):
        with np.errstate(all="ignore"):
            got, ref_got = ours(X, one), ref(X, one)
        assert np.isnan(got[0]).all() and np.isnan(got[1]).all() and np.isnan(ref_got[0]).all()
    with np.errstate(all="ignore"):
        assert np.isnan(f_classif(X, np.arange(6))[0]).all() and np.isnan(skfs.f_classif(X, np.arange(6))[0]).all()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_score_function_errors():
    X, y = _data(0, n=10, f=3)
    with pytest.raises(ValueError, match="non-negative"):
        chi2(X, y)
    with pytest.raises(ValueError, match="non-negative"):
        chi2(torch.from_numpy(X), y)
    with pytest.raises(ValueError, match="y"):
        f_classif(X, None)
    with pytest.raises(ValueError, match="y"):
        f_classif(X, y[:5])
    with pytest.raises(ValueError, match="y"):
        chi2(np.abs(X), np.r_[np.nan, y[1:]])
    with pytest.raises(ValueError, match="NaN"):
        f_classif(np.r_[X[:-1], [[np.nan, 0, 0]]], y)
    with pytest.raises(ValueError, match="2D|2-D"):
        f_classif(X[:, 0], y)
    with pytest.raises(TypeError, match="X"):
        f_classif("not an array", y)


# ------------------------------------------------------------------------------------ SelectKBest
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [0, 1, 3, 8, "all"])
@pytest.mark.parametrize("score", ["f_classif", "chi2"])
def test_select_k_best_matches_sklearn(seed, k, score):
    X, y = _data(seed, counts=score == "chi2")
    ours = SelectKBest({"f_classif": f_classif, "chi2": chi2}[score], k=k).fit(X, y)
    ref = skfs.SelectKBest(getattr(skfs, score), k=k).fit(X, y)
    np.testing.assert_array_equal(ours.get_support(), ref.get_support())
    np.testing.assert_array_equal(ours.get_support(indices=True), ref.get_support(indices=True))
    assert_same_maths(ours.scores_, ref.scores_, rtol=1e-10, atol=0)
    assert_same_maths(ours.pvalues_, ref.pvalues_, rtol=1e-8, atol=1e-300)
    Xn = _data(seed + 100, n=7)[0]
    with pytest.warns(UserWarning, match="No features") if k == 0 else _nothing():
        out = ours.transform(Xn)
    with pytest.warns(UserWarning, match="No features") if k == 0 else _nothing():
        ref_out = ref.transform(Xn)
    np.testing.assert_array_equal(out, ref_out)
    if k != 0:  # sklearn's inverse_transform rejects an array of 0 columns; ours gives zeros
        np.testing.assert_array_equal(ours.inverse_transform(out), ref.inverse_transform(ref_out))
    else:
        np.testing.assert_array_equal(ours.inverse_transform(out), np.zeros_like(Xn))
    np.testing.assert_array_equal(ours.get_feature_names_out(), ref.get_feature_names_out())


def test_ties_and_nan_scores_rank_like_sklearn():
    # hand-made scores: ties among equal values go to the higher index; NaN ranks below -1e300 but
    # above -inf
    scores = np.array([3.0, np.nan, 3.0, -np.inf, 1.0, 3.0, -1e300, np.nan, 1.0])
    X = np.random.default_rng(0).normal(size=(5, len(scores)))

    def fixed(X, y):
        return scores.copy()

    for k in range(len(scores) + 1):
        ours = SelectKBest(fixed, k=k).fit(X, np.arange(5) % 2)
        ref = skfs.SelectKBest(fixed, k=k).fit(X, np.arange(5) % 2)
        np.testing.assert_array_equal(ours.get_support(), ref.get_support(), err_msg=f"k={k}")
        assert ours.pvalues_ is None and ref.pvalues_ is None
    assert SelectKBest(fixed, k=2).fit(X, None).get_support(indices=True).tolist() == [2, 5]


def test_constant_features_are_ranked_last_like_sklearn():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(2), 8)
    X = rng.normal(size=(16, 5))
    X[:, [1, 3]] = 4.0
    with pytest.warns(UserWarning, match="constant"):
        ours = SelectKBest(k=4).fit(X, y)
    with pytest.warns(UserWarning, match="constant"), np.errstate(all="ignore"):
        ref = skfs.SelectKBest(k=4).fit(X, y)
    np.testing.assert_array_equal(ours.get_support(), ref.get_support())
    assert ours.get_support().tolist() == [True, False, True, True, True]  # the later NaN wins the tie


def test_k_larger_than_n_features_keeps_all_with_sklearns_warning():
    X, y = _data(2, f=4)
    with pytest.warns(UserWarning, match="k=9 is greater than n_features=4"):
        ours = SelectKBest(k=9).fit(X, y)
    with pytest.warns(UserWarning, match="k=9 is greater than n_features=4"):
        ref = skfs.SelectKBest(k=9).fit(X, y)
    np.testing.assert_array_equal(ours.get_support(), ref.get_support())
    assert ours.get_support().all()


def test_torch_in_torch_out():
    X, y = _data(3)
    Xt = torch.from_numpy(X)
    sel = SelectKBest(k=3).fit(Xt, torch.from_numpy(y))
    ref = skfs.SelectKBest(k=3).fit(X, y)
    assert isinstance(sel.scores_, torch.Tensor) and isinstance(sel.pvalues_, torch.Tensor)
    assert isinstance(sel.get_support(), torch.Tensor)
    np.testing.assert_array_equal(sel.get_support().numpy(), ref.get_support())
    out = sel.transform(Xt)
    assert isinstance(out, torch.Tensor) and torch.equal(out, torch.from_numpy(ref.transform(X)))
    assert isinstance(sel.transform(X), np.ndarray)  # transform follows its own input
    assert torch.equal(sel.inverse_transform(out), torch.from_numpy(ref.inverse_transform(ref.transform(X))))
    assert isinstance(SelectKBest(k=3).fit_transform(Xt, y), torch.Tensor)
    vt = VarianceThreshold(1.0).fit(Xt)
    assert isinstance(vt.variances_, torch.Tensor) and isinstance(vt.transform(Xt), torch.Tensor)
    assert_same_maths(vt.variances_, skfs.VarianceThreshold(1.0).fit(X).variances_, rtol=1e-12, atol=0)
    images = torch.rand(10, 2, 3, 3)  # images are flattened, one row per sample
    assert SelectKBest(k=5).fit(images, torch.arange(10) % 2).transform(images).shape == (10, 5)


def test_in_a_pipeline_and_grid_search_like_sklearn():
    X, y = _data(5, n=120, f=20)
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    grid = {"select__k": [1, 3, 10, "all"]}
    ours = Pipeline([("select", SelectKBest()), ("clf", LogisticRegression())])
    ref = Pipeline([("select", skfs.SelectKBest()), ("clf", LogisticRegression())])
    a = GridSearchCV(ours, grid, cv=cv).fit(X, y)
    b = GridSearchCV(ref, grid, cv=cv).fit(X, y)
    assert a.best_params_ == b.best_params_
    np.testing.assert_allclose(a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"], rtol=1e-12)
    twin = clone(SelectKBest(chi2, k=4))
    assert twin.get_params() == {"score_func": chi2, "k": 4}


def test_select_k_best_errors():
    X, y = _data(0, n=12, f=4)
    with pytest.raises(ValueError, match="k must be"):
        SelectKBest(k=-1).fit(X, y)
    with pytest.raises(ValueError, match="k must be"):
        SelectKBest(k="best").fit(X, y)
    with pytest.raises(TypeError, match="k must be"):
        SelectKBest(k=2.5).fit(X, y)
    with pytest.raises(TypeError, match="score_func"):
        SelectKBest("f_classif").fit(X, y)
    with pytest.raises(ValueError, match="score_func must return one score per feature"):
        SelectKBest(lambda X, y: np.ones(3), k=2).fit(X, y)
    with pytest.raises(ValueError, match="y"):
        SelectKBest(k=2).fit(X, None)
    with pytest.raises(ValueError, match="non-negative"):
        SelectKBest(chi2, k=2).fit(X - 10, y)
    with pytest.raises(NotFittedError):
        SelectKBest().transform(X)
    sel = SelectKBest(k=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        sel.transform(X[:, :3])
    with pytest.raises(ValueError, match="features"):
        sel.transform(torch.from_numpy(X[:, :3]))
    with pytest.raises(ValueError, match="finite"):
        sel.transform(torch.full((2, 4), float("nan")))
    with pytest.raises(ValueError, match="2 columns"):
        sel.inverse_transform(X)
    with pytest.raises(ValueError, match="input_features"):
        sel.get_feature_names_out(["a", "b"])


# ------------------------------------------------------------------------------ VarianceThreshold
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.0, 0.5, 2.0])
def test_variance_threshold_matches_sklearn(seed, threshold):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 9)) * rng.uniform(0.1, 4, size=9)  # some ranges above 4: the min(var, range) rule
    X[:, 2] = 0.1   # constant, not exactly representable: variance must read exactly 0
    X[:, 5] = rng.integers(0, 2, 40) * 0.5
    X[:, 7] = rng.permutation(np.repeat([0.0, 10.0], 20))  # variance 25 > range 10: threshold 0 records 10
    ours = VarianceThreshold(threshold).fit(X)
    ref = skfs.VarianceThreshold(threshold).fit(X)
    assert ours.variances_[7] == (10.0 if threshold == 0 else 25.0)
    # atol: the constant 0.1 column's variance is rounding noise (~1e-33) when threshold > 0
    assert_same_maths(ours.variances_, ref.variances_, rtol=1e-12, atol=1e-30)
    assert ours.variances_[2] == 0.0 if threshold == 0 else ours.variances_[2] < 1e-30
    np.testing.assert_array_equal(ours.get_support(), ref.get_support())
    np.testing.assert_array_equal(ours.transform(X), ref.transform(X))


def test_variance_threshold_nan_handling_like_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4))
    X[rng.random((20, 4)) < 0.2] = np.nan
    X[:, 3] = np.nan  # all NaN: variance NaN, never kept
    X[0, 3] = 1.0
    X[:, 1] = np.where(np.isnan(X[:, 1]), np.nan, 7.0)  # constant apart from NaN
    for t in (0.0, 0.3):
        with np.errstate(all="ignore"):
            ours = VarianceThreshold(t).fit(X)
            ref = skfs.VarianceThreshold(t).fit(X)
        assert_same_maths(ours.variances_, ref.variances_, rtol=1e-12, atol=0, equal_nan=True)
        np.testing.assert_array_equal(ours.get_support(), ref.get_support())
        Xn = X.copy()
        Xn[0, 0] = np.inf  # transform passes NaN and inf through, as sklearn's
        np.testing.assert_array_equal(ours.transform(Xn), ref.transform(Xn))


def test_variance_threshold_errors():
    X = np.random.default_rng(0).normal(size=(6, 3))
    with pytest.raises(ValueError, match="threshold"):
        VarianceThreshold(-0.1).fit(X)
    with pytest.raises(TypeError, match="threshold"):
        VarianceThreshold("0").fit(X)
    with pytest.raises(ValueError, match="No feature in X meets the variance threshold 100.00000"):
        VarianceThreshold(100.0).fit(X)
    with pytest.raises(ValueError, match="only one sample"):
        VarianceThreshold().fit(X[:1])
    with pytest.raises(ValueError, match="inf"):
        VarianceThreshold().fit(np.r_[X, [[np.inf, 0, 0]]])
    with pytest.raises(ValueError, match="inf"):
        VarianceThreshold().fit(torch.tensor([[0.0, float("inf")], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="2-D"):
        VarianceThreshold().fit(torch.zeros(4))
    with pytest.raises(NotFittedError):
        VarianceThreshold().get_support()
