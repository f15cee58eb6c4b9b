"""cross_validate against sklearn.model_selection.cross_validate (and imblearn's Pipeline when a
resampler is given): the same scores fold by fold; the test folds are never resampled."""

import numpy as np
import pytest
import torch
from imblearn.over_sampling import RandomOverSampler as ImbROS
from imblearn.pipeline import make_pipeline
from sklearn import model_selection as ms
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from deepnotes.evaluation import KFold, StratifiedKFold, cross_validate
from deepnotes.imbalance import RandomOverSampler
from tests._reference import assert_same_maths


def data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    return rng.normal(size=(n, 3)) + y[:, None], y


SCORING = {"accuracy": "accuracy", "recall": "recall", "f1": "f1", "roc_auc": "roc_auc"}


def test_scores_equal_sklearn_cross_validate():
    X, y = data()
    cv = StratifiedKFold(4, shuffle=True, random_state=1)
    ours = cross_validate(LogisticRegression, X, y, cv, list(SCORING), return_train_score=True)
    ref = ms.cross_validate(
        LogisticRegression(), X, y, cv=cv, scoring=SCORING, return_train_score=True
    )
    for k in SCORING:
        assert_same_maths(torch.from_numpy(ours[f"test_{k}"]), torch.from_numpy(ref[f"test_{k}"]))
        assert_same_maths(torch.from_numpy(ours[f"train_{k}"]), torch.from_numpy(ref[f"train_{k}"]))


def test_resampling_inside_folds_equals_an_imblearn_pipeline():
    X, y = data(seed=3)
    cv = KFold(5, shuffle=True, random_state=0)
    ours = cross_validate(
        lambda: DecisionTreeClassifier(random_state=0),
        X,
        y,
        cv,
        ["f1", "recall"],
        resampler=RandomOverSampler(random_state=0),
    )
    pipe = make_pipeline(ImbROS(random_state=0), DecisionTreeClassifier(random_state=0))
    ref = ms.cross_validate(pipe, X, y, cv=cv, scoring=["f1", "recall"])
    for k in ("f1", "recall"):
        assert_same_maths(torch.from_numpy(ours[f"test_{k}"]), torch.from_numpy(ref[f"test_{k}"]))


def test_only_the_training_fold_is_resampled():
    X, y = data()
    seen = []

    class Spy:
        def fit_resample(self, Xa, ya):
            seen.append(len(ya))
            return RandomOverSampler(random_state=0).fit_resample(Xa, ya)

    res = cross_validate(
        LogisticRegression,
        torch.from_numpy(X),
        torch.from_numpy(y),
        KFold(5),
        {"acc": "accuracy"},
        Spy(),
    )
    assert seen == [120] * 5  # each call sees the 4/5 training part, never the test fold
    assert all(n > 120 for n in res["n_train"])


def test_callable_metric_and_errors():
    X, y = data()
    res = cross_validate(
        LogisticRegression, X, y, KFold(3), {"err": lambda t, p: float(np.mean(t != p))}
    )
    acc = cross_validate(LogisticRegression, X, y, KFold(3), ["accuracy"])["test_accuracy"]
    assert_same_maths(torch.from_numpy(res["test_err"]), torch.from_numpy(1 - acc))
    with pytest.raises(ValueError, match="metrics"):
        cross_validate(LogisticRegression, X, y, KFold(3), ["auc_score"])
    with pytest.raises(ValueError, match="metrics"):
        cross_validate(LogisticRegression, X, y, KFold(3), {})
    with pytest.raises(ValueError, match="inconsistent lengths"):
        cross_validate(LogisticRegression, X, y[:-1], KFold(3), ["accuracy"])
    with pytest.raises(TypeError, match="splitter"):
        cross_validate(LogisticRegression, X, y, 5, ["accuracy"])
    with pytest.raises(TypeError, match="resampler"):
        cross_validate(LogisticRegression, X, y, KFold(3), ["accuracy"], resampler=object())
    with pytest.raises(TypeError, match="make_model"):
        cross_validate(LogisticRegression(), X, y, KFold(3), ["accuracy"])
