"""Segmentation metrics against torchmetrics and scikit-learn; boundary F-score against a slow loop."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, jaccard_score, recall_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassJaccardIndex,
)

from deepnotes.metrics.boundary import BoundaryFScore, boundary_f1_score
from deepnotes.metrics.segmentation import (
    SegmentationConfusion,
    mean_iou,
    mean_pixel_accuracy,
    per_class_accuracy,
    per_class_iou,
    pixel_accuracy,
    segmentation_confusion_matrix,
)

TOL = {"rtol": 0, "atol": 1e-12}
# torchmetrics turns the (exact, integer) confusion matrix into float32 before dividing
# (`confmat.float()` in its reduce functions, whatever the metric's dtype), so its ratios carry
# float32 rounding: compared at float32 resolution. The float64 check at 1e-12 is against
# scikit-learn below, and the confusion matrix itself is compared exactly with torchmetrics'.
TM_TOL = {"rtol": 1e-6, "atol": 1e-7}


def _random_case(seed: int):
    """Masks with skewed class frequencies, some classes absent, an optional ignore label."""
    g = np.random.default_rng(seed)
    k = int(g.integers(2, 7))
    shape = (int(g.integers(1, 4)), int(g.integers(1, 9)), int(g.integers(1, 9)))
    probs = g.dirichlet(np.full(k, 0.5))
    absent = g.random(k) < 0.3  # drop some classes from truth and/or prediction
    probs_t = np.where(absent, 0, probs) + 1e-12
    t = g.choice(k, size=shape, p=probs_t / probs_t.sum())
    noisy = g.random(shape) < g.uniform(0, 0.6)
    p = np.where(noisy, g.choice(k, size=shape, p=probs_t / probs_t.sum()), t)
    ignore = [None, 255, -100, int(g.integers(0, k))][int(g.integers(0, 4))]
    if ignore is not None:
        t = np.where(g.random(shape) < 0.15, ignore, t)
    return k, t, p, ignore


def _tm(metric_cls, k, t, p, ignore, average):
    m = metric_cls(num_classes=k, average=average, ignore_index=ignore).double()
    return m(torch.as_tensor(p), torch.as_tensor(t)).double().numpy()


@pytest.mark.parametrize("seed", range(60))
def test_metrics_equal_torchmetrics(seed):
    k, t, p, ignore = _random_case(seed)
    cm = MulticlassConfusionMatrix(num_classes=k, ignore_index=ignore)(
        torch.as_tensor(p), torch.as_tensor(t)
    )
    assert np.array_equal(segmentation_confusion_matrix(t, p, k, ignore), cm.numpy())
    np.testing.assert_allclose(
        mean_iou(t, p, k, ignore), _tm(MulticlassJaccardIndex, k, t, p, ignore, "macro"), **TM_TOL
    )
    np.testing.assert_allclose(
        per_class_iou(t, p, k, ignore),
        _tm(MulticlassJaccardIndex, k, t, p, ignore, "none"),
        **TM_TOL,
    )
    np.testing.assert_allclose(
        pixel_accuracy(t, p, k, ignore), _tm(MulticlassAccuracy, k, t, p, ignore, "micro"), **TM_TOL
    )
    np.testing.assert_allclose(
        mean_pixel_accuracy(t, p, k, ignore),
        _tm(MulticlassAccuracy, k, t, p, ignore, "macro"),
        **TM_TOL,
    )
    np.testing.assert_allclose(
        per_class_accuracy(t, p, k, ignore),
        _tm(MulticlassAccuracy, k, t, p, ignore, "none"),
        **TM_TOL,
    )


@pytest.mark.parametrize("seed", range(30))
def test_per_class_iou_and_matrix_equal_sklearn(seed):
    k, t, p, ignore = _random_case(seed)
    keep = t.reshape(-1) != ignore if ignore is not None else np.ones(t.size, bool)
    tt, pp = t.reshape(-1)[keep], p.reshape(-1)[keep]
    if tt.size == 0:
        return
    expected = jaccard_score(tt, pp, labels=list(range(k)), average=None, zero_division=0)
    np.testing.assert_allclose(per_class_iou(t, p, k, ignore), expected, **TOL)
    np.testing.assert_allclose(pixel_accuracy(t, p, k, ignore), accuracy_score(tt, pp), **TOL)
    recalls = recall_score(tt, pp, labels=list(range(k)), average=None, zero_division=0)
    np.testing.assert_allclose(per_class_accuracy(t, p, k, ignore), recalls, **TOL)
    # the means over the classes seen in truth or prediction (torchmetrics' rule), in float64
    seen = np.isin(np.arange(k), np.concatenate([tt, pp]))
    iou_seen = seen.copy()
    if ignore is not None and 0 <= ignore < k:
        iou_seen[ignore] = False
    np.testing.assert_allclose(mean_iou(t, p, k, ignore), expected[iou_seen].mean(), **TOL)
    np.testing.assert_allclose(mean_pixel_accuracy(t, p, k, ignore), recalls[seen].mean(), **TOL)
    cm = segmentation_confusion_matrix(t, p, k, ignore)
    assert np.array_equal(cm, sk_confusion_matrix(tt, pp, labels=list(range(k))))


def test_absent_class_left_out_of_the_means():
    t = np.array([0, 0, 1, 1])
    p = np.array([0, 1, 1, 1])
    # class 2 never occurs: IoU 0 per class, but the mean is over classes 0 and 1 only
    assert per_class_iou(t, p, 3)[2] == 0.0
    assert mean_iou(t, p, 3) == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-15)
    assert mean_pixel_accuracy(t, p, 3) == pytest.approx((1 / 2 + 1) / 2, abs=1e-15)


def test_everything_ignored_gives_zero_not_nan():
    t = np.full((2, 3), 255)
    p = np.zeros((2, 3), int)
    for fn in (pixel_accuracy, mean_pixel_accuracy, mean_iou):
        assert fn(t, p, 3, ignore_index=255) == 0.0


def test_accumulating_over_batches_equals_one_pass():
    g = np.random.default_rng(0)
    t = g.integers(0, 4, size=(6, 5, 7))
    p = np.where(g.random(t.shape) < 0.3, g.integers(0, 4, size=t.shape), t)
    acc = SegmentationConfusion(4)
    for i in range(0, 6, 2):
        acc.update(torch.as_tensor(t[i : i + 2]), torch.as_tensor(p[i : i + 2]))
    assert np.array_equal(acc.matrix, segmentation_confusion_matrix(t, p, 4))
    assert acc.mean_iou() == mean_iou(t, p, 4)
    other = SegmentationConfusion(4).update(t, p)
    assert np.array_equal(SegmentationConfusion(4).merge(other).matrix, acc.matrix)


def test_scores_are_reduced_by_argmax_over_dim_1():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    t = torch.randint(0, 3, (2, 4, 5), generator=g)
    assert mean_iou(t, scores, 3) == mean_iou(t, scores.argmax(1), 3)
    expected = MulticlassJaccardIndex(3)(scores, t).item()
    assert mean_iou(t, scores, 3) == pytest.approx(expected, rel=1e-6)


def test_metrics_are_order_invariant():
    g = np.random.default_rng(1)
    t = g.integers(0, 3, size=50)
    p = g.integers(0, 3, size=50)
    perm = g.permutation(50)
    assert mean_iou(t, p, 3) == mean_iou(t[perm], p[perm], 3)
    assert mean_pixel_accuracy(t, p, 3) == mean_pixel_accuracy(t[perm], p[perm], 3)


# --- bad input: one test per error ---------------------------------------------------------------


def test_label_at_or_above_num_classes_raises():
    with pytest.raises(ValueError, match=r"y_true labels must lie in \[0, num_classes=3\)"):
        mean_iou([0, 3], [0, 1], 3)


def test_predicted_label_out_of_range_raises():
    with pytest.raises(ValueError, match="y_pred labels must lie"):
        mean_iou([0, 1], [0, 5], 3)


def test_negative_label_other_than_ignore_raises():
    with pytest.raises(ValueError, match="y_true labels"):
        mean_iou([0, -1], [0, 1], 3, ignore_index=255)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        mean_iou(np.zeros((2, 3)), np.zeros((3, 2)), 3)


def test_scores_with_wrong_class_dimension_raise():
    with pytest.raises(ValueError, match="num_classes=3"):
        mean_iou(np.zeros((2, 4, 4)), np.zeros((2, 5, 4, 4)), 3)


def test_non_integral_labels_raise():
    with pytest.raises(ValueError, match="y_true must hold integer class labels"):
        mean_iou([0.5, 1.0], [0, 1], 3)


def test_nan_scores_raise():
    scores = np.zeros((1, 2, 2, 2))
    scores[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="y_pred must be finite"):
        mean_iou(np.zeros((1, 2, 2), int), scores, 2)


def test_num_classes_below_two_raises():
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        mean_iou([0], [0], 1)


def test_num_classes_not_int_raises():
    with pytest.raises(TypeError, match="num_classes must be an int"):
        mean_iou([0], [0], 2.0)


def test_ignore_index_not_int_raises():
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        mean_iou([0], [0], 2, ignore_index="void")


def test_merge_with_other_num_classes_raises():
    with pytest.raises(ValueError, match="num_classes=3, expected 2"):
        SegmentationConfusion(2).merge(SegmentationConfusion(3))


# --- boundary F-score ----------------------------------------------------------------------------


def _slow_boundary_f(t: np.ndarray, p: np.ndarray, k: int, tol: int, ignore=None) -> float:
    """Pixel loops: boundary = a pixel with an 8-neighbour of another class inside the image."""

    def boundary(m: np.ndarray, c: int) -> set:
        out = set()
        h, w = m.shape
        for y in range(h):
            for x in range(w):
                if m[y, x] != c:
                    continue
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < h and 0 <= xx < w and m[yy, xx] != c:
                            out.add((y, x))
        return out

    counts = np.zeros((4, k))
    for ti, pi in zip(t, p):
        for c in range(k):
            bt, bp = boundary(ti, c), boundary(pi, c)
            if ignore is not None:
                bt = {q for q in bt if ti[q] != ignore}
                bp = {q for q in bp if ti[q] != ignore}

            def near(q, s):
                return any(max(abs(q[0] - r[0]), abs(q[1] - r[1])) <= tol for r in s)

            counts[:, c] += [len(bp), sum(near(q, bt) for q in bp), len(bt), sum(near(q, bp) for q in bt)]
    fs = []
    for c in range(k):
        if ignore is not None and c == ignore:
            continue
        npred, mp, ntrue, mt = counts[:, c]
        if npred + ntrue == 0:
            continue
        prec = mp / npred if npred else 0.0
        rec = mt / ntrue if ntrue else 0.0
        fs.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return float(np.mean(fs)) if fs else 1.0


@pytest.mark.parametrize("seed", range(12))
def test_boundary_f_equals_slow_loop(seed):
    g = np.random.default_rng(seed)
    k = int(g.integers(2, 5))
    n, h, w = int(g.integers(1, 3)), int(g.integers(3, 12)), int(g.integers(3, 12))
    # blocky masks so that boundaries are lines, not noise
    t = np.kron(g.integers(0, k, size=(n, h // 2 + 1, w // 2 + 1)), np.ones((1, 2, 2), int))[:, :h, :w]
    p = np.where(g.random(t.shape) < 0.1, g.integers(0, k, size=t.shape), t)
    p = np.roll(p, int(g.integers(-1, 2)), axis=2)
    tol = int(g.integers(0, 3))
    ignore = [None, 0][seed % 2]
    if ignore is not None:
        t = np.where(g.random(t.shape) < 0.1, ignore, t)
    expected = _slow_boundary_f(t, p, k, tol, ignore)
    assert boundary_f1_score(t, p, k, tol, ignore) == pytest.approx(expected, abs=1e-12)


def test_boundary_f_perfect_and_uniform_masks():
    t = np.zeros((8, 8), int)
    t[2:6, 2:6] = 1
    assert boundary_f1_score(t, t, 2, tolerance=0) == 1.0
    # no edge anywhere on either side: perfect agreement by definition
    assert boundary_f1_score(np.zeros((4, 4), int), np.zeros((4, 4), int), 2) == 1.0
    # edges in truth only: F = 0
    assert boundary_f1_score(t, np.zeros((8, 8), int), 2) == 0.0


def test_boundary_f_accumulates_counts():
    g = np.random.default_rng(3)
    t = np.kron(g.integers(0, 3, size=(4, 5, 5)), np.ones((1, 2, 2), int))
    p = np.roll(t, 1, axis=1)
    acc = BoundaryFScore(3, tolerance=1)
    acc.update(t[:2], p[:2]).update(t[2:], p[2:])
    assert acc.compute() == boundary_f1_score(t, p, 3, tolerance=1)


def test_boundary_f_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"y_true must be label masks of shape \(H, W\)"):
        boundary_f1_score(np.zeros(5, int), np.zeros(5, int), 2)


def test_boundary_f_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        boundary_f1_score(np.zeros((3, 4), int), np.zeros((4, 3), int), 2)


def test_boundary_f_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="y_pred labels must lie"):
        boundary_f1_score(np.zeros((3, 3), int), np.full((3, 3), 2), 2)


def test_boundary_f_rejects_negative_tolerance():
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        boundary_f1_score(np.zeros((3, 3), int), np.zeros((3, 3), int), 2, tolerance=-1)


@pytest.mark.parametrize("name", ["deepnotes.metrics.segmentation", "deepnotes.metrics.boundary"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
