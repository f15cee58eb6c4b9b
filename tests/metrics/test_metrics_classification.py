"""Accuracy, confusion matrix, precision / recall / F1 vs scikit-learn and torchmetrics."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from torchmetrics.functional import classification as tmc

from deepnotes.metrics import accuracy, confusion_matrix, f1_score, precision, recall

OURS = {"precision": precision, "recall": recall, "f1": f1_score}
SK = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
TM = {
    "precision": tmc.multiclass_precision,
    "recall": tmc.multiclass_recall,
    "f1": tmc.multiclass_f1_score,
}


def _labels(seed, n=200, k=5, offset=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n) + offset
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n) + offset)
    return y, p


@pytest.mark.parametrize("kind", ["precision", "recall", "f1"])
@pytest.mark.parametrize("average", ["micro", "macro", "weighted", None])
@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_multiclass_matches_sklearn(kind, average, zero_division):
    y, p = _labels(0, k=6)
    p[p == 5] = 4  # class 5 is never predicted: a zero denominator for precision
    ours = OURS[kind](y, p, average=average, zero_division=zero_division)
    ref = SK[kind](y, p, average=average, zero_division=zero_division)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    # a subset of labels, including one that never occurs
    lab = [4, 1, 9]
    ours = OURS[kind](y, p, labels=lab, average=average, zero_division=zero_division)
    ref = SK[kind](y, p, labels=lab, average=average, zero_division=zero_division)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["precision", "recall", "f1"])
@pytest.mark.parametrize("average", ["micro", "macro", "weighted"])
def test_multiclass_matches_torchmetrics(kind, average):
    y, p = _labels(1, k=4)
    ref = TM[kind](torch.from_numpy(p), torch.from_numpy(y), num_classes=4, average=average).item()
    ours = OURS[kind](torch.from_numpy(y), torch.from_numpy(p), average=average)
    assert ours == pytest.approx(ref, rel=1e-6)  # torchmetrics computes in float32


@pytest.mark.parametrize("kind", ["precision", "recall", "f1"])
def test_binary_matches_sklearn(kind):
    y, p = _labels(2, k=2)
    for pos in (1, 0):
        assert OURS[kind](y, p, pos_label=pos) == pytest.approx(
            SK[kind](y, p, pos_label=pos), abs=1e-15
        )
    yp, pp = y * 2 - 1, p * 2 - 1  # ±1 labels
    assert OURS[kind](yp, pp) == pytest.approx(SK[kind](yp, pp), abs=1e-15)
    # nothing predicted positive and nothing positive: 0/0 -> zero_division
    z = np.zeros(5, dtype=int)
    assert OURS[kind](z, z) == SK[kind](z, z, zero_division=0.0) == 0.0
    assert OURS[kind](z, z, zero_division=1.0) == SK[kind](z, z, zero_division=1.0) == 1.0


def test_binary_hand_values_on_boundaries():
    y = [1, 1, 1, 0, 0, 0]
    p = [1, 1, 0, 1, 0, 0]  # tp 2, fp 1, fn 1
    assert precision(y, p) == 2 / 3 and recall(y, p) == 2 / 3 and f1_score(y, p) == 2 / 3
    assert accuracy(y, p) == 4 / 6


@pytest.mark.parametrize("offset", [0, -3, 1000])
def test_confusion_matrix_exact(offset):
    y, p = _labels(3, k=7, offset=offset)
    np.testing.assert_array_equal(confusion_matrix(y, p), skm.confusion_matrix(y, p))
    lab = [offset + 2, offset + 9, offset]
    np.testing.assert_array_equal(
        confusion_matrix(y, p, labels=lab), skm.confusion_matrix(y, p, labels=lab)
    )
    # tensors and integral floats
    np.testing.assert_array_equal(
        confusion_matrix(torch.from_numpy(y), torch.from_numpy(p).double()),
        skm.confusion_matrix(y, p),
    )
    assert confusion_matrix(y, p).dtype == np.int64


def test_confusion_matrix_sparse_labels_and_torchmetrics():
    # a wide label range goes through the unique/searchsorted path
    y, p = _labels(4, k=3)
    big = np.array([-(10**9), 7, 10**9])
    np.testing.assert_array_equal(
        confusion_matrix(big[y], big[p]), skm.confusion_matrix(big[y], big[p])
    )
    ref = tmc.multiclass_confusion_matrix(torch.from_numpy(p), torch.from_numpy(y), num_classes=3)
    np.testing.assert_array_equal(confusion_matrix(y, p), ref.numpy())
    # slow reference: a loop over samples
    slow = np.zeros((3, 3), dtype=np.int64)
    for a, b in zip(y, p):
        slow[a, b] += 1
    np.testing.assert_array_equal(confusion_matrix(y, p), slow)


def test_accuracy_matches_sklearn():
    y, p = _labels(5)
    assert accuracy(y, p) == skm.accuracy_score(y, p)
    assert accuracy(torch.from_numpy(y), p) == skm.accuracy_score(y, p)
    assert isinstance(accuracy(y, p), float)


@settings(max_examples=30, derandomize=True, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=25),
    st.randoms(use_true_random=False),
)
def test_order_invariance_and_bounds(pairs, rnd):
    y = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    for avg in ("micro", "macro", "weighted"):
        v = f1_score(y, p, average=avg)
        assert 0.0 <= v <= 1.0
        assert f1_score(y[perm], p[perm], average=avg) == pytest.approx(v, abs=1e-12)
        assert v == pytest.approx(skm.f1_score(y, p, average=avg, zero_division=0.0), abs=1e-12)
    assert confusion_matrix(y, p).sum() == len(y)


def test_errors():
    y, p = np.array([0, 1, 2]), np.array([0, 2, 1])
    with pytest.raises(ValueError, match="average"):
        precision(y, p)  # three classes with average="binary"
    with pytest.raises(ValueError, match="average"):
        recall(y, p, average="samples")
    with pytest.raises(ValueError, match="pos_label"):
        f1_score([0, 1], [1, 0], pos_label=2)
    with pytest.raises(ValueError, match="zero_division"):
        precision(y, p, average="macro", zero_division=0.5)
    with pytest.raises(ValueError, match="zero_division"):
        precision(y, p, average="macro", zero_division="sometimes")
    with pytest.raises(TypeError, match="zero_division"):
        precision(y, p, average="macro", zero_division=[0.0])
    with pytest.raises(ValueError, match="y_pred"):
        accuracy(y, np.array([0.2, 0.9, 0.4]))  # scores where labels are expected
    with pytest.raises(ValueError, match="y_pred"):
        accuracy(y, p[:2])
    with pytest.raises(ValueError, match="y_true"):
        confusion_matrix([], [])
    with pytest.raises(ValueError, match="y_true"):
        confusion_matrix(np.array([0.0, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        confusion_matrix(y, p, labels=[0, 0])
    with pytest.raises(ValueError, match="labels"):
        confusion_matrix(y, p, labels=[])
    with pytest.raises(ValueError, match="mix"):
        accuracy(["a", "b"], [0, 1])  # string labels against numbers
    with pytest.raises(TypeError, match="y_true"):
        accuracy({"a": 1}, [0])
