"""Resampled ensembles: each member sees a differently resampled copy of the data; members vote.

:class:`ResampledVotingClassifier` takes any sampler and any scikit-learn style classifier;
:class:`EasyEnsembleClassifier` is the special case of Liu et al. (2009): balanced random
under-samples of the majority, one member per subset, all minority samples kept in each
(``imblearn.ensemble.EasyEnsembleClassifier`` uses boosted members; we default to logistic
regression — any estimator can be passed).

Soft voting averages ``predict_proba``; hard voting counts predicted labels (ties go to the
smaller class, as ``argmax`` takes the first).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 2)); y = (X[:, 0] > 1.2).astype(int)
>>> clf = EasyEnsembleClassifier(n_estimators=3, random_state=0).fit(X, y)
>>> clf.predict_proba(X).shape
(200, 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression

from deepnotes.core.checks import check_choice, check_int
from deepnotes.imbalance._base import as_features, as_target, random_state_of
from deepnotes.imbalance.random import RandomUnderSampler


def _numpy(X: Any) -> np.ndarray:
    t, _ = as_features(X)
    return t.cpu().numpy()


class ResampledVotingClassifier(ClassifierMixin, BaseEstimator):
    """An ensemble whose members are trained on independent resamplings of the training set.

    Parameters
    ----------
    estimator : classifier with fit / predict_proba, optional
        Cloned for every member (default ``LogisticRegression()``).
    sampler : sampler with fit_resample and random_state, optional
        Cloned for every member with its own seed (default ``RandomUnderSampler()``).
    n_estimators : int
    voting : {"soft", "hard"}
    random_state : None, int or RandomState
        Draws one seed per member.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
    estimators_ : list of fitted members
    """

    def __init__(
        self,
        estimator: Any = None,
        sampler: Any = None,
        *,
        n_estimators: int = 10,
        voting: str = "soft",
        random_state: Any = None,
    ):
        self.estimator = estimator
        self.sampler = sampler
        self.n_estimators = n_estimators
        self.voting = voting
        self.random_state = random_state

    def _default_sampler(self) -> Any:
        return RandomUnderSampler()

    def fit(self, X: Any, y: Any) -> ResampledVotingClassifier:
        """Fit ``n_estimators`` members, each on ``sampler.fit_resample(X, y)`` with its own seed."""
        n_est = check_int("n_estimators", self.n_estimators, min=1)
        check_choice("voting", self.voting, ("soft", "hard"))
        Xn = _numpy(X)
        codes, classes, _ = as_target(y, Xn.shape[0])
        if len(classes) < 2:
            raise ValueError(f"y needs at least 2 classes, got {len(classes)}")
        self.classes_ = classes
        labels = classes[codes.numpy()]  # the original labels, so dict strategies keep their keys
        base = LogisticRegression() if self.estimator is None else self.estimator
        sampler = self._default_sampler() if self.sampler is None else self.sampler
        seeds = random_state_of(self.random_state).randint(np.iinfo(np.int32).max, size=n_est)
        self.estimators_ = []
        for seed in seeds:  # one member per iteration: the ensemble's size, not the data's
            member_sampler = clone(sampler).set_params(random_state=int(seed))
            X_res, y_res = member_sampler.fit_resample(Xn, labels)
            self.estimators_.append(clone(base).fit(X_res, y_res))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean member probabilities (soft) or vote fractions (hard): ``(n, n_classes)``."""
        if not hasattr(self, "estimators_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit first")
        Xn = _numpy(X)
        k = len(self.classes_)
        total = np.zeros((Xn.shape[0], k))
        for est in self.estimators_:  # a loop over members
            if self.voting == "soft":
                proba = est.predict_proba(Xn)
                total[:, np.searchsorted(self.classes_, est.classes_)] += proba
            else:
                total[np.arange(Xn.shape[0]), np.searchsorted(self.classes_, est.predict(Xn))] += (
                    1.0
                )
        return total / len(self.estimators_)

    def predict(self, X: Any) -> np.ndarray:
        """The class with the largest averaged probability / vote count."""
        proba = self.predict_proba(X)  # raises first when not fitted
        return self.classes_[proba.argmax(1)]


class EasyEnsembleClassifier(ResampledVotingClassifier):
    """EasyEnsemble: members trained on balanced random under-samples of the data.

    Parameters
    ----------
    n_estimators : int
    estimator : classifier, optional
        Default ``LogisticRegression()``.
    sampling_strategy : float, str, dict or callable
        Passed to each member's :class:`RandomUnderSampler`.
    replacement : bool
        Under-sample with replacement.
    random_state : None, int or RandomState
    voting : {"soft", "hard"}
    """

    def __init__(
        self,
        n_estimators: int = 10,
        estimator: Any = None,
        *,
        sampling_strategy: Any = "auto",
        replacement: bool = False,
        random_state: Any = None,
        voting: str = "soft",
    ):
        super().__init__(
            estimator=estimator,
            sampler=None,
            n_estimators=n_estimators,
            voting=voting,
            random_state=random_state,
        )
        self.sampling_strategy = sampling_strategy
        self.replacement = replacement

    def _default_sampler(self) -> Any:
        return RandomUnderSampler(
            sampling_strategy=self.sampling_strategy, replacement=self.replacement
        )
