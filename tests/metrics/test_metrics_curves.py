"""PR / ROC curves, AUC and AP vs scikit-learn (float64, 1e-12, ties included) and hand values."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from deepnotes.metrics import (
    average_precision,
    confusion_matrix_at_thresholds,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)

TOL = {"rtol": 1e-12, "atol": 1e-12}


def _data(seed, n=300, decimals=1, labels=(0, 1)):
    rng = np.random.default_rng(seed)
    y = rng.choice(np.asarray(labels), n)
    s = rng.normal(size=n) + (y == labels[-1]) * 0.8
    return y, (np.round(s, decimals) if decimals is not None else s)


CASES = [
    (0, 1, (0, 1)),  # heavy ties
    (1, None, (0, 1)),  # distinct scores
    (2, 0, (-1, 1)),  # very heavy ties, ±1 labels
    (3, 2, (0, 1)),
]


@pytest.mark.parametrize(("seed", "decimals", "labels"), CASES)
@pytest.mark.parametrize("drop", [True, False])
def test_curves_match_sklearn(seed, decimals, labels, drop):
    y, s = _data(seed, decimals=decimals, labels=labels)
    for ours, ref in (
        (roc_curve(y, s, drop_intermediate=drop), skm.roc_curve(y, s, drop_intermediate=drop)),
        (
            precision_recall_curve(y, s, drop_intermediate=drop),
            skm.precision_recall_curve(y, s, drop_intermediate=drop),
        ),
    ):
        for a, b in zip(ours, ref):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize(("seed", "decimals", "labels"), CASES)
def test_scores_match_sklearn(seed, decimals, labels):
    y, s = _data(seed, decimals=decimals, labels=labels)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), **{"rel": 1e-12, "abs": 1e-12})
    ap = skm.average_precision_score(y, s)
    assert average_precision(y, s) == pytest.approx(ap, rel=1e-12, abs=1e-12)
    tns, fps, fns, tps, thr = skm.confusion_matrix_at_thresholds(y, s)
    for a, b in zip(confusion_matrix_at_thresholds(y, s), (tns, fps, fns, tps, thr)):
        np.testing.assert_array_equal(a, b)


def test_tensors_float32_and_pos_label():
    y, s = _data(5, decimals=2)
    ours = roc_curve(torch.from_numpy(y), torch.from_numpy(s.astype(np.float32)))
    ref = skm.roc_curve(y, s.astype(np.float32))
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, **TOL)
    # string-free multi-label y_true with pos_label: one class against the rest
    y3 = np.random.default_rng(6).integers(0, 3, len(s))
    for a, b in zip(
        precision_recall_curve(y3, s, pos_label=2), skm.precision_recall_curve(y3, s, pos_label=2)
    ):
        np.testing.assert_allclose(a, b, **TOL)
    assert roc_auc(torch.from_numpy(y3), s, pos_label=0) == pytest.approx(
        skm.roc_auc_score(y3 == 0, s), rel=1e-12
    )
    assert isinstance(roc_auc(y, s), float) and isinstance(average_precision(y, s), float)
    # integer and boolean scores
    si = np.random.default_rng(7).integers(0, 5, len(y))
    assert roc_auc(y, si) == pytest.approx(skm.roc_auc_score(y, si), rel=1e-12)
    assert roc_auc(y.astype(bool), si.astype(np.uint8)) == pytest.approx(
        skm.roc_auc_score(y, si), rel=1e-12
    )


def test_hand_computed_golden_values():
    # y by decreasing score: 0 1 1 0 1  ->  tp 0 1 2 2 3, fp 1 1 1 2 2, P = 3
    # precision 0, 1/2, 2/3, 1/2, 3/5; envelope 2/3, 2/3, 2/3, 3/5, 3/5
    y, s = [0, 1, 1, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5]
    assert average_precision(y, s, "step") == pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3, abs=1e-15)
    assert average_precision(y, s, "voc_all") == pytest.approx(
        (2 / 3 + 2 / 3 + 3 / 5) / 3, abs=1e-15
    )
    # 11 levels: r <= 2/3 -> 2/3 (levels 0 .. 0.6, seven of them); r in 0.7 .. 1 -> 3/5 (four)
    assert average_precision(y, s, "voc11") == pytest.approx(
        (7 * 2 / 3 + 4 * 3 / 5) / 11, abs=1e-15
    )
    # AUC: of the 3 x 2 (positive, negative) pairs, the positives at ranks 2 and 3 beat the
    # negative at rank 4; nothing beats the negative at rank 1: 2 of 6
    assert roc_auc(y, s) == pytest.approx(2 / 6, abs=1e-15)
    # ties: two tied samples (one of each class) enter together and count one half
    assert roc_auc([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(
        (1 + 1 + 0.5 + 1) / 4, abs=1e-15
    )


def test_voc11_recall_exactly_on_a_level():
    # P = 10; recall reaches exactly 0.3 (3/10) at the third positive: level 0.3 must use it
    y = [1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    s = np.arange(len(y), 0, -1, dtype=np.float64)
    tp = np.cumsum(y)
    prec = tp / np.arange(1, len(y) + 1)
    env = np.maximum.accumulate(prec[::-1])[::-1]
    expected = np.mean(
        [env[np.flatnonzero(tp >= k)[0]] for k in range(11)]
    )  # P = 10: r >= k/10 <=> tp >= k
    assert average_precision(y, s, "voc11") == pytest.approx(expected, abs=1e-15)
    assert env[2] == 1.0 and env[3] < 1.0  # the level-0.3 value is 1, not the lower next one


def _voc_all_loop(rec, prec):
    """The PASCAL VOC devkit's all-point AP, written as its loop over the curve points."""
    mrec = [0.0, *rec, 1.0]
    mpre = [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum(
        (mrec[i + 1] - mrec[i]) * mpre[i + 1]
        for i in range(len(mrec) - 1)
        if mrec[i + 1] != mrec[i]
    )


def _voc11_loop(rec, prec):
    total = 0.0
    for k in range(11):
        p = [pr for r, pr in zip(rec, prec) if r >= k / 10 - 1e-12]
        total += max(p) if p else 0.0
    return total / 11


@pytest.mark.parametrize("seed", range(4))
def test_voc_variants_match_devkit_loops(seed):
    y, s = _data(seed + 10, n=60, decimals=1)
    p, r, _ = skm.precision_recall_curve(y, s)
    rec, prec = r[:-1][::-1], p[:-1][::-1]  # increasing recall, one point per distinct score
    assert average_precision(y, s, "voc_all") == pytest.approx(_voc_all_loop(rec, prec), abs=1e-12)
    assert average_precision(y, s, "voc11") == pytest.approx(_voc11_loop(rec, prec), abs=1e-12)
    assert average_precision(y, s, "voc_all") >= average_precision(y, s, "step") - 1e-15


@settings(max_examples=30, derandomize=True, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(-3, 3)), min_size=2, max_size=30).filter(
        lambda v: 0 < sum(b for b, _ in v) < len(v)
    ),
    st.randoms(use_true_random=False),
)
def test_invariances(pairs, rnd):
    y = np.array([b for b, _ in pairs], dtype=int)
    s = np.array([v for _, v in pairs], dtype=np.float64)
    base_auc, base_ap = roc_auc(y, s), average_precision(y, s)
    assert 0.0 <= base_auc <= 1.0 and 0.0 < base_ap <= 1.0
    # strictly monotone map: same ranking, same AUC / AP
    assert roc_auc(y, np.exp(s) * 3 - 7) == pytest.approx(base_auc, abs=1e-12)
    assert average_precision(y, s**3, "voc11") == pytest.approx(
        average_precision(y, s, "voc11"), abs=1e-12
    )
    # order of the samples does not matter
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    assert roc_auc(y[perm], s[perm]) == pytest.approx(base_auc, abs=1e-12)
    assert average_precision(y[perm], s[perm]) == pytest.approx(base_ap, abs=1e-12)
    # reversing the scores mirrors the AUC
    assert roc_auc(y, -s) == pytest.approx(1.0 - base_auc, abs=1e-12)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_errors():
    y, s = np.array([0, 1, 1, 0]), np.array([0.1, 0.2, 0.3, 0.4])
    # one class: scikit-learn's documented results with an UndefinedMetricWarning
    # (tests/metrics/test_sklearn_conventions.py compares them with scikit-learn)
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(roc_auc(np.ones(4), s))
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(roc_curve(np.zeros(4), s)[1]).all()
    with pytest.warns(UndefinedMetricWarning):
        assert (precision_recall_curve(np.zeros(4), s)[1][:-1] == 1).all()
    with pytest.warns(UndefinedMetricWarning):
        assert average_precision(np.zeros(4), s) == 0.0
    assert average_precision(np.ones(4), s) == 1.0  # no negative: well defined
    with pytest.raises(ValueError, match="y_score"):
        roc_auc(y, np.array([0.1, np.nan, 0.3, 0.4]))
    with pytest.raises(ValueError, match="y_score"):
        average_precision(y, torch.tensor([0.1, float("inf"), 0.3, 0.4]))
    with pytest.raises(ValueError, match="y_true"):
        roc_auc([], [])
    with pytest.raises(ValueError, match="y_score"):
        roc_auc(y, s[:3])
    with pytest.raises(ValueError, match="multi_class"):
        roc_auc([0, 1, 2, 1], s)  # three classes and multi_class="raise"
    with pytest.raises(ValueError, match="y_true"):
        roc_curve([0, 1, 2, 1], s)  # not binary and no pos_label
    with pytest.raises(ValueError, match="y_score"):
        roc_auc(y, np.stack([s, s], 1))  # two columns for a binary y_true
    with pytest.raises(ValueError, match="interpolation"):
        average_precision(y, s, "coco101")
    with pytest.raises(TypeError, match="y_score"):
        roc_auc(y, ["a", "b", "c", "d"])
    with pytest.raises(TypeError, match="pos_label"):
        roc_auc(y, s, pos_label="1")  # a string for numeric labels
