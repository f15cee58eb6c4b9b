"""scikit-learn's input conventions, compared with scikit-learn itself: string labels with
pos_label, columns (n, 1), sample_weight, multiclass ROC AUC / AP, max_fpr, one-class folds,
zero_division (NaN included), and numpy in → numpy out / torch in → torch out."""

import warnings

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from deepnotes.metrics import (
    accuracy,
    average_precision,
    confusion_matrix,
    confusion_matrix_at_thresholds,
    f1_score,
    fbeta_score,
    precision,
    precision_recall_curve,
    recall,
    roc_auc,
    roc_curve,
)

TOL = {"rtol": 1e-12, "atol": 1e-12}
APPROX = {"rel": 1e-12, "abs": 1e-12}
PRF = [
    (precision, skm.precision_score, {}),
    (recall, skm.recall_score, {}),
    (f1_score, skm.f1_score, {}),
    (fbeta_score, skm.fbeta_score, {"beta": 0.5}),
    (fbeta_score, skm.fbeta_score, {"beta": 2.0}),
]


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return fn(*args, **kw)


def _multiclass(seed, n=300, k=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, np.round(proba, 2) / np.round(proba, 2).sum(1, keepdims=True), rng.random(n) * 3


# ------------------------------------------------------------------------- the numbers
def test_zero_division_nan_macro_is_sklearns():
    y, p = [0, 0, 1, 2], [0, 0, 0, 2]
    ours = precision(y, p, average="macro", zero_division=np.nan)
    assert ours == pytest.approx(skm.precision_score(y, p, average="macro", zero_division=np.nan))
    assert ours == pytest.approx(5 / 6)  # (2/3 + 1) / 2: the undefined class is left out


def test_weighted_with_zero_support_is_sklearns():
    y, p = [0, 0], [1, 1]
    for labels in ([1], [2], [1, 2]):
        for zd in (0.0, 1.0, np.nan):
            ours = precision(y, p, labels=labels, average="weighted", zero_division=zd)
            ref = skm.precision_score(y, p, labels=labels, average="weighted", zero_division=zd)
            np.testing.assert_equal(ours, ref)
    assert precision(y, p, labels=[1], average="weighted", zero_division=1.0) == 0.0


@pytest.mark.parametrize(("ours", "ref", "kw"), PRF)
@pytest.mark.parametrize("average", ["micro", "macro", "weighted", None])
@pytest.mark.parametrize("zero_division", [0.0, 1.0, np.nan])
def test_zero_division_semantics(ours, ref, kw, average, zero_division):
    # class 3 never predicted, class 4 never true, labels ask for an absent class 7
    y = np.array([0, 0, 1, 2, 3, 3, 1, 2])
    p = np.array([0, 1, 1, 2, 0, 4, 1, 0])
    for labels in (None, [3, 4, 7], [7]):
        a = ours(y, p, labels=labels, average=average, zero_division=zero_division, **kw)
        b = ref(y, p, labels=labels, average=average, zero_division=zero_division, **kw)
        np.testing.assert_allclose(a, b, **TOL)


def test_zero_division_warn_is_zero_with_a_warning():
    with pytest.warns(UndefinedMetricWarning):
        assert precision([0, 1], [0, 0], zero_division="warn") == 0.0


# -------------------------------------------------------------------------- string labels
@pytest.mark.parametrize(("ours", "ref", "kw"), PRF)
def test_string_labels_with_pos_label(ours, ref, kw):
    rng = np.random.default_rng(0)
    y = rng.choice(np.array(["neg", "pos"]), 80)
    p = np.where(rng.random(80) < 0.7, y, rng.choice(np.array(["neg", "pos"]), 80))
    for pos in ("pos", "neg"):
        assert ours(y, p, pos_label=pos, **kw) == pytest.approx(
            ref(y, p, pos_label=pos, **kw), **{"rel": 1e-12}
        )
    y3 = rng.choice(np.array(["cat", "dog", "eel"]), 80)
    p3 = np.where(rng.random(80) < 0.6, y3, "cat")
    for average in ("macro", "weighted", None):
        np.testing.assert_allclose(
            ours(y3, p3, average=average, **kw), ref(y3, p3, average=average, **kw), **TOL
        )
    with pytest.raises(ValueError, match="pos_label"):
        ours(y, p, **kw)  # the default pos_label=1 is not a label here


def test_string_and_object_labels_confusion_accuracy():
    y = np.array(["b", "a", "c", "a", "b"], dtype=object)
    p = ["a", "a", "c", "b", "b"]
    np.testing.assert_array_equal(confusion_matrix(y, p), skm.confusion_matrix(y, p))
    lab = ["c", "a"]
    np.testing.assert_array_equal(
        confusion_matrix(y, p, labels=lab), skm.confusion_matrix(y, p, labels=lab)
    )
    assert accuracy(y, p) == skm.accuracy_score(y, p)


def test_string_labels_in_curves():
    rng = np.random.default_rng(1)
    y = rng.choice(np.array(["ham", "spam"]), 100)
    s = np.round(rng.normal(size=100) + (y == "spam"), 1)
    for a, b in zip(
        roc_curve(y, s, pos_label="spam"), skm.roc_curve(y, s, pos_label="spam")
    ):
        np.testing.assert_allclose(a, b, **TOL)
    for a, b in zip(
        precision_recall_curve(y, s, pos_label="ham"),
        skm.precision_recall_curve(y, s, pos_label="ham"),
    ):
        np.testing.assert_allclose(a, b, **TOL)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), **APPROX)  # "spam" > "ham"
    assert average_precision(y, s, pos_label="spam") == pytest.approx(
        skm.average_precision_score(y, s, pos_label="spam"), **APPROX
    )


# -------------------------------------------------------------------------- column vectors
def test_column_vectors():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 60)
    s = rng.normal(size=60) + y
    p = (s > 0.5).astype(int)
    yc, sc, pc = y[:, None], s[:, None], p[:, None]
    assert roc_auc(yc, sc) == pytest.approx(skm.roc_auc_score(yc, sc), **APPROX)
    assert average_precision(yc, sc) == pytest.approx(skm.average_precision_score(yc, sc), **APPROX)
    assert f1_score(yc, pc) == pytest.approx(skm.f1_score(yc, pc), **APPROX)
    assert accuracy(yc, pc) == skm.accuracy_score(yc, pc)
    np.testing.assert_array_equal(confusion_matrix(yc, pc), skm.confusion_matrix(yc, pc))
    # torch logits of a one-output model: shape (n, 1)
    logits = torch.from_numpy(s).unsqueeze(1).float()
    assert roc_auc(torch.from_numpy(y), logits) == pytest.approx(
        skm.roc_auc_score(y, logits.numpy()), **APPROX
    )


# -------------------------------------------------------------------------- sample_weight
@pytest.mark.parametrize(("ours", "ref", "kw"), PRF)
@pytest.mark.parametrize("average", ["micro", "macro", "weighted", None])
def test_sample_weight_prf(ours, ref, kw, average):
    y, p = np.random.default_rng(3).integers(0, 4, (2, 120))
    w = np.random.default_rng(4).random(120) * 2
    np.testing.assert_allclose(
        ours(y, p, average=average, sample_weight=w, **kw),
        ref(y, p, average=average, sample_weight=w, **kw),
        **TOL,
    )


def test_sample_weight_confusion_and_accuracy():
    y, p = np.random.default_rng(5).integers(0, 3, (2, 50))
    for w in (np.random.default_rng(6).random(50), np.arange(50), np.ones(50, dtype=bool)):
        ours, ref = confusion_matrix(y, p, sample_weight=w), skm.confusion_matrix(y, p, sample_weight=w)
        assert ours.dtype == ref.dtype
        np.testing.assert_allclose(ours, ref, **TOL)
        for normalize in (True, False) if w.dtype != bool else ():
            assert accuracy(y, p, normalize=normalize, sample_weight=w) == pytest.approx(
                skm.accuracy_score(y, p, normalize=normalize, sample_weight=w), **APPROX
            )


@pytest.mark.parametrize("decimals", [1, None])
def test_sample_weight_curves(decimals):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + y
    s = np.round(s, decimals) if decimals is not None else s
    w = rng.random(200) * 3
    w[:10] = 0.0  # zero weights are dropped, as in scikit-learn
    for drop in (True, False):
        for a, b in zip(
            roc_curve(y, s, sample_weight=w, drop_intermediate=drop),
            skm.roc_curve(y, s, sample_weight=w, drop_intermediate=drop),
        ):
            np.testing.assert_allclose(a, b, **TOL)
        for a, b in zip(
            precision_recall_curve(y, s, sample_weight=w, drop_intermediate=drop),
            skm.precision_recall_curve(y, s, sample_weight=w, drop_intermediate=drop),
        ):
            np.testing.assert_allclose(a, b, **TOL)
    assert roc_auc(y, s, sample_weight=w) == pytest.approx(
        skm.roc_auc_score(y, s, sample_weight=w), **APPROX
    )
    assert average_precision(y, s, sample_weight=w) == pytest.approx(
        skm.average_precision_score(y, s, sample_weight=w), **APPROX
    )
    for a, b in zip(
        confusion_matrix_at_thresholds(y, s, sample_weight=w),
        skm.confusion_matrix_at_thresholds(y, s, sample_weight=w),
    ):
        np.testing.assert_allclose(a, b, **TOL)
    # integer weights count like repeated samples
    wi = rng.integers(0, 4, 200)
    rep = np.repeat(np.arange(200), wi)
    assert roc_auc(y, s, sample_weight=wi) == pytest.approx(roc_auc(y[rep], s[rep]), **APPROX)


# ---------------------------------------------------------------- multiclass / multilabel
@pytest.mark.parametrize("multi_class", ["ovr", "ovo"])
@pytest.mark.parametrize("average", ["macro", "weighted"])
def test_multiclass_roc_auc(multi_class, average):
    y, proba, w = _multiclass(8)
    ours = roc_auc(y, proba, multi_class=multi_class, average=average)
    ref = skm.roc_auc_score(y, proba, multi_class=multi_class, average=average)
    assert ours == pytest.approx(ref, **APPROX)
    # string labels and a labels list naming the columns
    names = np.array(["a", "b", "c", "d"])[y]
    assert roc_auc(names, proba, multi_class=multi_class, average=average) == pytest.approx(ref)
    # a fold where class 3 is absent: labels say which column is which
    keep = y != 3
    ours = roc_auc(y[keep], proba[keep], multi_class=multi_class, average=average, labels=[0, 1, 2, 3])
    ref = skm.roc_auc_score(
        y[keep], proba[keep], multi_class=multi_class, average=average, labels=[0, 1, 2, 3]
    )
    np.testing.assert_allclose(ours, ref, **TOL)
    if multi_class == "ovr":
        for avg in ("micro", None):
            np.testing.assert_allclose(
                roc_auc(y, proba, multi_class="ovr", average=avg, sample_weight=w),
                skm.roc_auc_score(y, proba, multi_class="ovr", average=avg, sample_weight=w),
                **TOL,
            )


@pytest.mark.parametrize("average", ["macro", "weighted", "micro", None])
def test_multiclass_and_multilabel_average_precision(average):
    y, proba, w = _multiclass(9)
    for sw in (None, w):
        np.testing.assert_allclose(
            average_precision(y, proba, average=average, sample_weight=sw),
            skm.average_precision_score(y, proba, average=average, sample_weight=sw),
            **TOL,
        )
    Y = (np.random.default_rng(10).random(proba.shape) < proba + 0.1).astype(int)
    np.testing.assert_allclose(
        average_precision(Y, proba, average=average),
        skm.average_precision_score(Y, proba, average=average),
        **TOL,
    )
    np.testing.assert_allclose(
        roc_auc(Y, proba, average=average, sample_weight=w),
        skm.roc_auc_score(Y, proba, average=average, sample_weight=w),
        **TOL,
    )


@pytest.mark.parametrize("max_fpr", [0.05, 0.3, 0.5, 1.0])
def test_max_fpr_mcclish(max_fpr):
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 150)
    s = np.round(rng.normal(size=150) + y, 1)
    w = rng.random(150)
    for sw in (None, w):
        assert roc_auc(y, s, max_fpr=max_fpr, sample_weight=sw) == pytest.approx(
            skm.roc_auc_score(y, s, max_fpr=max_fpr, sample_weight=sw), **APPROX
        )
    # chance (all scores equal) gives 0.5 and a perfect ranking 1 for every max_fpr
    assert roc_auc(y, np.zeros(150), max_fpr=max_fpr) == pytest.approx(0.5)
    assert roc_auc(y, y.astype(float), max_fpr=max_fpr) == pytest.approx(1.0)


# ------------------------------------------------------------------------ one-class folds
def test_one_class_fold_is_nan_with_a_warning():
    s = np.array([0.1, 0.4, 0.3])
    for y in ([1, 1, 1], [0, 0, 0], ["x", "x", "x"]):
        with pytest.warns(UndefinedMetricWarning):
            ours = roc_auc(y, s)
        with pytest.warns(UndefinedMetricWarning):
            ref = skm.roc_auc_score(y, s)
        assert np.isnan(ours) and np.isnan(ref)
    for y in ([1, 1, 1], [0, 0, 0]):
        with pytest.warns(UndefinedMetricWarning):
            ours = roc_curve(y, s)
        ref = _quiet(skm.roc_curve, y, s)
        for a, b in zip(ours, ref):
            np.testing.assert_allclose(a, b, **TOL)  # NaN where undefined, equal_nan
    with pytest.warns(UndefinedMetricWarning):
        ours = precision_recall_curve([0, 0, 0], s)
    for a, b in zip(ours, _quiet(skm.precision_recall_curve, [0, 0, 0], s)):
        np.testing.assert_allclose(a, b, **TOL)
    with pytest.warns(UndefinedMetricWarning):
        assert average_precision([0, 0, 0], s) == _quiet(skm.average_precision_score, [0, 0, 0], s)
    # ovr macro with a label column that never occurs: NaN, weighted: the class weighs 0
    Y = np.array([[1, 0], [0, 0], [1, 0]])
    S = np.array([[0.2, 0.3], [0.1, 0.5], [0.9, 0.1]])
    for average in ("macro", "weighted", None):
        with pytest.warns(UndefinedMetricWarning):
            ours = roc_auc(Y, S, average=average)
        np.testing.assert_allclose(ours, _quiet(skm.roc_auc_score, Y, S, average=average))


# ---------------------------------------------------------------------------- output kinds
def test_numpy_in_numpy_out_torch_in_torch_out():
    y, p = np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1])
    s = np.array([0.1, 0.9, 0.4, 0.7])
    yb = np.array([0, 1, 0, 1])
    assert isinstance(confusion_matrix(y, p), np.ndarray)
    cm = confusion_matrix(torch.from_numpy(y), torch.from_numpy(p))
    assert isinstance(cm, torch.Tensor) and cm.dtype == torch.int64
    np.testing.assert_array_equal(cm.numpy(), skm.confusion_matrix(y, p))
    per_class = precision(torch.from_numpy(y), torch.from_numpy(p), average=None)
    assert isinstance(per_class, torch.Tensor)
    assert isinstance(precision(y, p, average=None), np.ndarray)
    for curve in (roc_curve, precision_recall_curve):
        assert all(isinstance(a, np.ndarray) for a in curve(yb, s))
        out = curve(torch.from_numpy(yb), torch.from_numpy(s))
        assert all(isinstance(a, torch.Tensor) for a in out)
        for a, b in zip(out, curve(yb, s)):
            np.testing.assert_array_equal(a.numpy(), b)
    assert all(isinstance(a, torch.Tensor) for a in confusion_matrix_at_thresholds(yb, torch.from_numpy(s)))
    assert isinstance(roc_auc(torch.from_numpy(yb), torch.from_numpy(s)), float)


# ----------------------------------------------------------------------------------- errors
def test_error_max_fpr():
    with pytest.raises(ValueError, match="max_fpr"):
        roc_auc([0, 1], [0.1, 0.2], max_fpr=0.0)


def test_error_multiclass_needs_multi_class():
    y, proba, _ = _multiclass(12)
    with pytest.raises(ValueError, match="multi_class"):
        roc_auc(y, proba)


def test_error_multiclass_rows_must_sum_to_one():
    y, proba, _ = _multiclass(13)
    with pytest.raises(ValueError, match="sum to 1"):
        roc_auc(y, proba * 2, multi_class="ovr")


def test_error_ovo_with_sample_weight():
    y, proba, w = _multiclass(14)
    with pytest.raises(ValueError, match="sample_weight"):
        roc_auc(y, proba, multi_class="ovo", sample_weight=w)


def test_error_multiclass_columns_mismatch():
    y, proba, _ = _multiclass(15)
    with pytest.raises(ValueError, match="columns"):
        roc_auc(y, proba[:, :3] / proba[:, :3].sum(1, keepdims=True), multi_class="ovr")


def test_error_sample_weight_shape_and_sign():
    with pytest.raises(ValueError, match="sample_weight"):
        accuracy([0, 1], [0, 1], sample_weight=[1.0])
    with pytest.raises(ValueError, match="sample_weight"):
        roc_auc([0, 1], [0.1, 0.2], sample_weight=[1.0, -1.0])


def test_error_mixed_label_types():
    with pytest.raises(ValueError, match="mix"):
        f1_score(np.array(["a", 1], dtype=object), ["a", "a"], pos_label="a")


def test_error_average_precision_multiclass_pos_label():
    y, proba, _ = _multiclass(16)
    with pytest.raises(ValueError, match="pos_label"):
        average_precision(y, proba, pos_label=2)


def test_sample_weight_regression():
    from deepnotes.metrics import mae, mape, rmse

    rng = np.random.default_rng(17)
    for shape in ((80,), (80, 3)):
        yt = rng.normal(size=shape) + 3.0
        yp = yt + rng.normal(size=shape)
        w = rng.random(80) * 2
        assert mae(yt, yp, sample_weight=w) == pytest.approx(
            skm.mean_absolute_error(yt, yp, sample_weight=w), **APPROX
        )
        assert rmse(yt, yp, sample_weight=w) == pytest.approx(
            skm.root_mean_squared_error(yt, yp, sample_weight=w), **APPROX
        )
        assert mape(yt, yp, sample_weight=w) == pytest.approx(
            skm.mean_absolute_percentage_error(yt, yp, sample_weight=w), **APPROX
        )
    with pytest.raises(ValueError, match="sample_weight"):
        mae([1.0, 2.0], [1.0, 2.0], sample_weight=[0.0, 0.0])
