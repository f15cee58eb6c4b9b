"""Class weights, threshold moving, prior correction, resampled ensembles and the one-class framing."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.covariance import EmpiricalCovariance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score, recall_score
from sklearn.utils.class_weight import compute_class_weight

from deepnotes.imbalance import (
    SMOTE,
    EasyEnsembleClassifier,
    GaussianAnomalyDetector,
    OneClassClassifier,
    RandomUnderSampler,
    ResampledVotingClassifier,
    balanced_class_weights,
    best_threshold,
    prior_correction,
)
from tests._reference import assert_same_maths


@settings(max_examples=30, derandomize=True, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60))
def test_balanced_weights_equal_sklearn(labels):
    y = np.array(labels)
    classes = np.unique(y)
    ref = compute_class_weight("balanced", classes=classes, y=y)
    assert_same_maths(balanced_class_weights(y), torch.from_numpy(ref))
    assert_same_maths(
        balanced_class_weights(torch.from_numpy(y), classes=classes[::-1]),
        torch.from_numpy(ref[::-1].copy()),
    )


def test_balanced_weights_errors():
    with pytest.raises(ValueError, match="classes"):
        balanced_class_weights([0, 0, 1], classes=[0, 1, 2])
    with pytest.raises(ValueError, match="y must be"):
        balanced_class_weights([])


def scores(seed=0, n=200):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    return y, np.round(rng.normal(size=n) + 1.2 * y, 2)  # ties on purpose


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_threshold_f1_matches_a_brute_force_search(seed):
    y, s = scores(seed)
    t, f1 = best_threshold(y, s)
    cands = np.unique(s)
    f1s = np.array([f1_score(y, (s >= c).astype(int), zero_division=0) for c in cands])
    assert f1 == pytest.approx(f1s.max(), abs=1e-12)
    assert t == cands[np.argmax(f1s)]


@pytest.mark.parametrize("target", [0.0, 0.5, 0.8, 1.0])
def test_best_threshold_recall_matches_a_brute_force_search(target):
    y, s = scores(3)
    t, prec = best_threshold(y, s, objective="recall", target_recall=target)
    cands = np.unique(s)
    ok = [c for c in cands if recall_score(y, (s >= c).astype(int)) >= target]
    assert t == max(ok)
    assert prec == pytest.approx(precision_score(y, (s >= t).astype(int)), abs=1e-12)


def test_best_threshold_errors():
    y, s = scores()
    with pytest.raises(ValueError, match="target_recall"):
        best_threshold(y, s, objective="recall")
    with pytest.raises(ValueError, match="target_recall"):
        best_threshold(y, s, objective="recall", target_recall=1.5)
    with pytest.raises(ValueError, match="objective"):
        best_threshold(y, s, objective="auc")


def test_prior_correction_is_a_logit_shift_for_two_classes():
    g = torch.Generator().manual_seed(0)
    p1 = torch.rand(50, generator=g, dtype=torch.float64) * 0.98 + 0.01
    proba = torch.stack([1 - p1, p1], 1)
    train, true = (
        torch.tensor([0.5, 0.5], dtype=torch.float64),
        torch.tensor([0.9, 0.1], dtype=torch.float64),
    )
    out = prior_correction(proba, train, true)
    logit = torch.log(p1 / (1 - p1)) + np.log(0.1 / 0.9) - np.log(0.5 / 0.5)
    assert_same_maths(out[:, 1], torch.sigmoid(logit))
    assert_same_maths(out.sum(1), torch.ones(50, dtype=torch.float64))
    assert_same_maths(prior_correction(proba, true, true), proba)  # same priors: unchanged


def test_prior_correction_errors():
    p = torch.full((3, 2), 0.5, dtype=torch.float64)
    with pytest.raises(ValueError, match="train_prior"):
        prior_correction(p, [0.3, 0.3], [0.5, 0.5])
    with pytest.raises(ValueError, match="true_prior"):
        prior_correction(p, [0.5, 0.5], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="proba"):
        prior_correction(torch.tensor([0.5, 0.5]), [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="proba"):
        prior_correction(torch.tensor([[float("nan"), 0.5]]), [0.5, 0.5], [0.5, 0.5])


def blobs(seed=0, n=400):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.12).astype(int)
    X = rng.normal(size=(n, 3)) + 1.5 * y[:, None]
    return X, y + 1  # labels 1, 2


@pytest.mark.parametrize("voting", ["soft", "hard"])
def test_easy_ensemble_equals_its_members_by_hand(voting):
    X, y = blobs()
    clf = EasyEnsembleClassifier(n_estimators=4, random_state=3, voting=voting).fit(X, y)
    seeds = np.random.RandomState(3).randint(np.iinfo(np.int32).max, size=4)
    votes = np.zeros((len(X), 2))
    for s in seeds:  # slow reference: rebuild each member from its seed
        Xr, yr = RandomUnderSampler(random_state=int(s)).fit_resample(X, y)
        assert np.bincount(yr)[1:].tolist() == [int((y == 2).sum())] * 2
        m = LogisticRegression().fit(Xr, yr)
        if voting == "soft":
            votes += m.predict_proba(X)
        else:
            votes[np.arange(len(X)), m.predict(X) - 1] += 1
    assert_same_maths(torch.from_numpy(clf.predict_proba(X)), torch.from_numpy(votes / 4))
    assert np.array_equal(clf.predict(X), np.array([1, 2])[votes.argmax(1)])
    assert np.array_equal(clone(clf).get_params()["n_estimators"], 4)


def test_resampled_voting_with_smote_raises_minority_recall():
    X, y = blobs(1, 1000)
    plain = LogisticRegression().fit(X, y)
    ens = ResampledVotingClassifier(
        LogisticRegression(), SMOTE(), n_estimators=3, random_state=0
    ).fit(X, y)
    assert recall_score(y, ens.predict(X), pos_label=2) > recall_score(
        y, plain.predict(X), pos_label=2
    )


def test_ensemble_errors():
    X, y = blobs()
    with pytest.raises(ValueError, match="n_estimators"):
        EasyEnsembleClassifier(n_estimators=0).fit(X, y)
    with pytest.raises(ValueError, match="voting"):
        EasyEnsembleClassifier(voting="median").fit(X, y)
    with pytest.raises(ValueError, match="classes"):
        EasyEnsembleClassifier().fit(X, np.ones(len(X), int))
    with pytest.raises(ValueError, match="not fitted"):
        EasyEnsembleClassifier().predict(X)


def test_mahalanobis_equals_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4)) @ rng.normal(size=(4, 4))
    Q = rng.normal(size=(20, 4))
    det = GaussianAnomalyDetector().fit(X)
    ref = EmpiricalCovariance().fit(X)
    assert_same_maths(det.mahalanobis(Q), torch.from_numpy(ref.mahalanobis(Q)), rtol=1e-6)
    # the 0.99 quantile of 80 scores lies between the top two: exactly ceil(0.01 * 80) = 1 above
    assert int((det.mahalanobis(X) > det.threshold_).sum()) == 1


def test_one_class_classifier_is_trained_on_the_normal_class_only():
    X, y = blobs(2, 600)
    X[y == 2] += 3.0
    clf = OneClassClassifier(normal_class=1, anomaly_class=2, contamination=0.05).fit(X, y)
    # the anomaly rows do not change the fit: dropping them gives the same scores
    clf2 = OneClassClassifier(normal_class=1, anomaly_class=2, contamination=0.05).fit(
        X[y == 1], y[y == 1]
    )
    assert np.allclose(clf.decision_function(X), clf2.decision_function(X))
    pred = clf.predict(X)
    assert set(np.unique(pred)) <= {1, 2}
    assert recall_score(y, pred, pos_label=2) > 0.8
    assert np.mean(pred[y == 1] == 2) == pytest.approx(0.05, abs=0.01)


def test_one_class_errors():
    X, y = blobs()
    with pytest.raises(ValueError, match="normal_class"):
        OneClassClassifier(normal_class=9).fit(X, y)
    with pytest.raises(ValueError, match="contamination"):
        OneClassClassifier(contamination=0.7).fit(X, y)
    with pytest.raises(ValueError, match="inconsistent lengths"):
        OneClassClassifier().fit(X, y[:-1])
    with pytest.raises(ValueError, match="not fitted"):
        OneClassClassifier().predict(X)
