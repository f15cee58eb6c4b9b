"""Data splits for model evaluation: holdout, K-fold, stratified K-fold, leave-one-out, leave-p-out
and the bootstrap with out-of-bag test sets.

The splitters follow ``sklearn.model_selection``: ``split(X, y=None)`` yields
``(train_idx, test_idx)`` int64 numpy arrays (they index numpy arrays and tensors alike) and
``get_n_splits(X, y=None)`` counts them, so they can also be passed as ``cv=`` to scikit-learn.
Without shuffling the indices are identical to scikit-learn's; with shuffling the random draws
use a ``numpy.random.RandomState`` in scikit-learn's order, so they are identical too for the
same ``random_state`` (``holdout_split(stratify=...)`` excepted: it uses its own allocation).

Example
-------
>>> import numpy as np
>>> [t.tolist() for _, t in KFold(3).split(np.zeros((7, 1)))]
[[0, 1, 2], [3, 4], [5, 6]]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import combinations
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from deepnotes.core.checks import check_float, check_int, check_type


def _n_samples(X: Any) -> int:
    if isinstance(X, (int, np.integer)) and not isinstance(X, bool):
        return check_int("X", X, min=1)
    try:
        n = len(X)
    except TypeError as exc:
        raise TypeError(
            f"X must be an array-like with a length or an int, got {type(X).__name__}"
        ) from exc
    if n == 0:
        raise ValueError("X must not be empty")
    return n


def _labels(y: Any, n: int) -> np.ndarray:
    if y is None:
        raise ValueError("y is required for a stratified split")
    arr = np.asarray(y.cpu() if hasattr(y, "cpu") else y)
    if arr.ndim == 2 and arr.shape[1] == 1:  # a column (n, 1), as scikit-learn's column_or_1d
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"y must be 1-D with one label per sample ({n}), got shape {arr.shape}")
    return arr


def _random_state(random_state: Any, shuffle: bool) -> Any:
    if not shuffle and random_state is not None:
        raise ValueError("random_state has no effect without shuffle=True; leave it None")
    return random_state


def holdout_split(
    X: Any,
    y: Any = None,
    *,
    test_size: float | int = 0.25,
    shuffle: bool = True,
    stratify: bool = False,
    random_state: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One train/test split: ``(train_idx, test_idx)``.

    Parameters
    ----------
    X : array-like (n, ...) or int n
    y : array-like (n,), optional
        Needed with ``stratify=True``.
    test_size : float in (0, 1) or int in [1, n - 1]
        A float takes ``ceil(test_size · n)`` test samples (scikit-learn's rule).
    shuffle : bool
        Without shuffling the last samples form the test set.
    stratify : bool
        Keep each class's share in both parts (each class's test count is within 1 of
        ``test_size`` times its size, largest remainders first).
    random_state : None, int or RandomState

    Returns
    -------
    train_idx, test_idx : int64 ndarrays; the same as ``sklearn.model_selection.train_test_split``
    on ``arange(n)`` when not stratified (ours are sorted within each part only if not shuffled).
    """
    n = _n_samples(X)
    if isinstance(test_size, float):
        frac = check_float(
            "test_size", test_size, min=0.0, max=1.0, min_inclusive=False, max_inclusive=False
        )
        n_test = math.ceil(frac * n)
    else:
        n_test = check_int("test_size", test_size, min=1, max=n - 1)
    if n_test >= n:
        raise ValueError(f"test_size leaves no training sample (n={n}, n_test={n_test})")
    if stratify:
        if not shuffle:
            raise ValueError("stratify=True needs shuffle=True")
        return _stratified_holdout(_labels(y, n), n_test, check_random_state(random_state))
    if not shuffle:
        _random_state(random_state, shuffle)
        return np.arange(n - n_test), np.arange(n - n_test, n)
    perm = check_random_state(random_state).permutation(n)
    return perm[n_test:], perm[:n_test]


def _stratified_holdout(y: np.ndarray, n_test: int, rng: np.random.RandomState):
    classes, codes = np.unique(y, return_inverse=True)
    counts = np.bincount(codes)
    exact = counts * (n_test / len(y))
    per_class = np.floor(exact).astype(np.int64)
    # hand the remaining test slots to the classes with the largest fractional parts
    extra = n_test - per_class.sum()
    per_class[np.argsort(-(exact - per_class), kind="stable")[:extra]] += 1
    perm = rng.permutation(len(y))
    order = perm[np.argsort(codes[perm], kind="stable")]  # shuffled within each class
    rank = np.arange(len(y)) - np.repeat(np.cumsum(counts) - counts, counts)
    in_test = rank < np.repeat(per_class, counts)
    return np.sort(order[~in_test]), np.sort(order[in_test])


class _Splitter:
    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = _n_samples(X)
        for test in self._test_sets(n, y):
            mask = np.zeros(n, dtype=bool)
            mask[test] = True  # both parts come out sorted, as sklearn's masks give them
            yield np.flatnonzero(~mask), np.flatnonzero(mask)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class KFold(_Splitter):
    """K consecutive folds (shuffled first if asked); the first ``n % K`` folds get one more sample.

    Parameters
    ----------
    n_splits : int >= 2
    shuffle : bool
    random_state : None, int or RandomState (only with ``shuffle=True``)
    """

    def __init__(self, n_splits: int = 5, *, shuffle: bool = False, random_state: Any = None):
        self.n_splits = check_int("n_splits", n_splits, min=2)
        self.shuffle = bool(check_type("shuffle", shuffle, bool))
        self.random_state = _random_state(random_state, shuffle)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def _test_sets(self, n: int, y: Any):
        if self.n_splits > n:
            raise ValueError(f"n_splits ({self.n_splits}) must be <= the number of samples ({n})")
        idx = np.arange(n)
        if self.shuffle:
            check_random_state(self.random_state).shuffle(idx)
        sizes = np.full(self.n_splits, n // self.n_splits)
        sizes[: n % self.n_splits] += 1
        return np.split(idx, np.cumsum(sizes)[:-1])


class StratifiedKFold(KFold):
    """K folds that each keep the class proportions (scikit-learn's allocation).

    Classes are numbered by first appearance; the sorted labels are dealt round-robin to the
    folds, which fixes how many samples of each class every fold gets; within a class, samples
    fill the folds in order (shuffled per class with ``shuffle=True``). Needs ``y``; a class
    smaller than ``n_splits`` is allowed as long as one class has at least ``n_splits`` samples.
    """

    def _test_sets(self, n: int, y: Any):
        y = _labels(y, n)
        _, first, inv = np.unique(y, return_index=True, return_inverse=True)
        codes = np.argsort(np.argsort(first))[inv]  # classes by order of first appearance
        counts = np.bincount(codes)
        if np.all(self.n_splits > counts):
            raise ValueError(f"n_splits ({self.n_splits}) is greater than the size of every class")
        k = len(counts)
        dealt = np.sort(codes)
        alloc = np.bincount(np.arange(n) % self.n_splits * k + dealt, minlength=self.n_splits * k)
        alloc = alloc.reshape(self.n_splits, k)
        rng = check_random_state(self.random_state)
        fold_of = np.empty(n, dtype=np.int64)
        for c in range(k):  # a loop over classes; sklearn shuffles each class in this order
            folds = np.repeat(np.arange(self.n_splits), alloc[:, c])
            if self.shuffle:
                rng.shuffle(folds)
            fold_of[codes == c] = folds
        return [np.flatnonzero(fold_of == f) for f in range(self.n_splits)]


class LeaveOneOut(_Splitter):
    """``n`` splits, each testing on a single sample."""

    def get_n_splits(self, X: Any, y: Any = None, groups: Any = None) -> int:
        n = _n_samples(X)
        if n < 2:
            raise ValueError("LeaveOneOut needs at least 2 samples")
        return n

    def _test_sets(self, n: int, y: Any):
        self.get_n_splits(n)
        return np.arange(n).reshape(n, 1)


class LeavePOut(_Splitter):
    """Every subset of ``p`` samples as a test set, in lexicographic order: ``C(n, p)`` splits."""

    def __init__(self, p: int):
        self.p = check_int("p", p, min=1)

    def get_n_splits(self, X: Any, y: Any = None, groups: Any = None) -> int:
        n = _n_samples(X)
        if n <= self.p:
            raise ValueError(f"p ({self.p}) must be smaller than the number of samples ({n})")
        return math.comb(n, self.p)

    def _test_sets(self, n: int, y: Any):
        self.get_n_splits(n)
        return (np.array(c) for c in combinations(range(n), self.p))  # lazy: C(n, p) explodes


class Bootstrap(_Splitter):
    """Bootstrap splits: ``n`` training draws with replacement, the never-drawn (out-of-bag) samples as test.

    The training indices repeat samples (``train_size`` draws, default ``n``); a sample is out of
    bag with probability ``(1 − 1/n)^n → 1/e ≈ 0.368``. With an int ``random_state`` the draws of
    split ``i`` equal ``sklearn.utils.resample(arange(n), random_state=...)`` on the same stream.

    Parameters
    ----------
    n_splits : int >= 1
    train_size : int, optional
    random_state : None, int or RandomState
    """

    def __init__(
        self, n_splits: int = 10, *, train_size: int | None = None, random_state: Any = None
    ):
        self.n_splits = check_int("n_splits", n_splits, min=1)
        self.train_size = None if train_size is None else check_int("train_size", train_size, min=1)
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = _n_samples(X)
        m = n if self.train_size is None else self.train_size
        rng = check_random_state(self.random_state)
        for _ in range(self.n_splits):  # one draw per split
            train = rng.randint(0, n, size=m)
            drawn = np.zeros(n, dtype=bool)
            drawn[train] = True
            yield train.astype(np.int64), np.flatnonzero(~drawn)
