"""Splitters against sklearn.model_selection: identical indices for the same settings; partition
properties (disjoint, covering, stratified within ±1) on shuffled splits; bootstrap OOB sets."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import model_selection as ms
from sklearn.utils import resample

from deepnotes.evaluation import (
    Bootstrap,
    KFold,
    LeaveOneOut,
    LeavePOut,
    StratifiedKFold,
    holdout_split,
)


def same_splits(ours, ref):
    ours, ref = list(ours), list(ref)
    assert len(ours) == len(ref)
    for (a_tr, a_te), (b_tr, b_te) in zip(ours, ref):
        assert np.array_equal(a_tr, b_tr) and np.array_equal(a_te, b_te)
        assert a_tr.dtype == np.int64


def labels(n, k, seed):
    return np.random.default_rng(seed).integers(0, k, n) * 10 + 1


@settings(max_examples=30, derandomize=True, deadline=None)
@given(st.integers(2, 40), st.integers(2, 8), st.booleans(), st.integers(0, 1000))
def test_kfold_equals_sklearn(n, k, shuffle, seed):
    if k > n:
        with pytest.raises(ValueError, match="n_splits"):
            list(KFold(k).split(np.zeros(n)))
        return
    rs = seed if shuffle else None
    X = np.zeros((n, 2))
    same_splits(
        KFold(k, shuffle=shuffle, random_state=rs).split(X),
        ms.KFold(k, shuffle=shuffle, random_state=rs).split(X),
    )
    assert KFold(k).get_n_splits(X) == ms.KFold(k).get_n_splits(X)


@settings(max_examples=30, derandomize=True, deadline=None)
@given(
    st.integers(6, 60), st.integers(2, 5), st.integers(2, 4), st.booleans(), st.integers(0, 1000)
)
def test_stratified_kfold_equals_sklearn(n, k, n_classes, shuffle, seed):
    y = labels(n, n_classes, seed)
    counts = np.unique(y, return_counts=True)[1]
    if np.all(counts < k):
        with pytest.raises(ValueError, match="n_splits"):
            list(StratifiedKFold(k).split(np.zeros(n), y))
        return
    rs = seed if shuffle else None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn warns on a class smaller than k
        ref = list(ms.StratifiedKFold(k, shuffle=shuffle, random_state=rs).split(np.zeros(n), y))
    same_splits(StratifiedKFold(k, shuffle=shuffle, random_state=rs).split(np.zeros(n), y), ref)


def test_stratified_kfold_properties_when_shuffled():
    y = labels(97, 3, 1)
    tests = [te for _, te in StratifiedKFold(5, shuffle=True, random_state=3).split(y, y)]
    allidx = np.concatenate(tests)
    assert np.array_equal(np.sort(allidx), np.arange(97))  # disjoint and covering
    for c in np.unique(y):
        per_fold = [np.sum(y[t] == c) for t in tests]
        assert max(per_fold) - min(per_fold) <= 1


@pytest.mark.parametrize("n", [2, 7])
def test_leave_one_out_equals_sklearn(n):
    X = np.zeros((n, 1))
    same_splits(LeaveOneOut().split(X), ms.LeaveOneOut().split(X))
    assert LeaveOneOut().get_n_splits(X) == n


@pytest.mark.parametrize("n,p", [(4, 1), (6, 2), (7, 3)])
def test_leave_p_out_equals_sklearn(n, p):
    X = np.zeros((n, 1))
    same_splits(LeavePOut(p).split(X), ms.LeavePOut(p).split(X))
    assert LeavePOut(p).get_n_splits(X) == math.comb(n, p) == ms.LeavePOut(p).get_n_splits(X)


@pytest.mark.parametrize("test_size", [0.25, 0.3, 5])
@pytest.mark.parametrize("seed", [0, 42])
def test_holdout_equals_train_test_split(test_size, seed):
    idx = np.arange(23)
    tr, te = holdout_split(23, test_size=test_size, random_state=seed)
    rtr, rte = ms.train_test_split(idx, test_size=test_size, random_state=seed)
    assert np.array_equal(tr, rtr) and np.array_equal(te, rte)
    tr, te = holdout_split(np.zeros((23, 2)), test_size=test_size, shuffle=False)
    rtr, rte = ms.train_test_split(idx, test_size=test_size, shuffle=False)
    assert np.array_equal(tr, rtr) and np.array_equal(te, rte)


@settings(max_examples=30, derandomize=True, deadline=None)
@given(st.integers(10, 80), st.floats(0.1, 0.5), st.integers(0, 1000))
def test_stratified_holdout_keeps_class_shares(n, frac, seed):
    y = labels(n, 3, seed)
    tr, te = holdout_split(y, y, test_size=frac, stratify=True, random_state=seed)
    assert np.array_equal(np.sort(np.r_[tr, te]), np.arange(n)) and len(np.intersect1d(tr, te)) == 0
    assert len(te) == math.ceil(frac * n)
    for c in np.unique(y):
        share = np.sum(y == c) * len(te) / n
        assert abs(np.sum(y[te] == c) - share) <= 1


def test_bootstrap_draws_equal_sklearn_resample_and_oob_is_the_rest():
    n = 50
    rng = np.random.RandomState(9)
    splits = list(Bootstrap(3, random_state=9).split(np.zeros(n)))
    for train, oob in splits:
        ref = resample(
            np.arange(n), replace=True, random_state=rng
        )  # the same stream, split by split
        assert np.array_equal(train, ref)
        assert np.array_equal(oob, np.setdiff1d(np.arange(n), train))
    assert len(list(Bootstrap(4, train_size=10).split(np.zeros(n)))[0][0]) == 10


def test_splitter_errors():
    with pytest.raises(ValueError, match="n_splits"):
        KFold(1)
    with pytest.raises(ValueError, match="random_state"):
        KFold(3, random_state=0)
    with pytest.raises(TypeError, match="shuffle"):
        KFold(3, shuffle="yes")
    with pytest.raises(ValueError, match="y is required"):
        list(StratifiedKFold(2).split(np.zeros(10)))
    with pytest.raises(ValueError, match="y must be"):
        list(StratifiedKFold(2).split(np.zeros(10), np.zeros(9)))
    with pytest.raises(ValueError, match="p"):
        LeavePOut(3).get_n_splits(np.zeros(3))
    with pytest.raises(ValueError, match="LeaveOneOut"):
        list(LeaveOneOut().split(np.zeros(1)))
    with pytest.raises(ValueError, match="test_size"):
        holdout_split(10, test_size=1.5)
    with pytest.raises(ValueError, match="test_size"):
        holdout_split(10, test_size=10)
    with pytest.raises(ValueError, match="X must not be empty"):
        holdout_split(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="stratify"):
        holdout_split(10, np.zeros(10), stratify=True, shuffle=False)
    with pytest.raises(ValueError, match="n_splits"):
        Bootstrap(0)


def test_stratified_splits_take_columns_and_string_labels_like_sklearn():
    from sklearn.model_selection import StratifiedKFold as SKStratifiedKFold

    from deepnotes.evaluation import StratifiedKFold as OurStratifiedKFold

    rng = np.random.default_rng(21)
    y = rng.choice(np.array(["spam", "ham", "eggs"]), 50)
    X = np.zeros((50, 2))
    for shuffle, seed in ((False, None), (True, 3)):
        ours = OurStratifiedKFold(4, shuffle=shuffle, random_state=seed)
        ref = SKStratifiedKFold(4, shuffle=shuffle, random_state=seed)
        for target in (y, y[:, None]):  # labels and a column (n, 1)
            for (a, b), (c, d) in zip(ours.split(X, target), ref.split(X, target)):
                np.testing.assert_array_equal(a, c)
                np.testing.assert_array_equal(b, d)
