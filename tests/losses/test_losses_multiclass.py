"""Multi-class losses vs torch, values and gradients in float64, plus hand values."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.core.registry import LOSSES
from deepnotes.losses import (
    MulticlassSVMLoss,
    OneVsRestLoss,
    SoftmaxCrossEntropyLoss,
    multiclass_svm_loss,
    one_vs_rest_loss,
    softmax_cross_entropy,
)
from tests._reference import assert_forward_backward, assert_same_maths

REDUCTIONS = ("none", "mean", "sum")


def _data(n=23, c=5, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    y = torch.randint(0, c, (n,), generator=g)
    return s, y


def _reduce(per, reduction):
    return {"none": per, "mean": per.mean(), "sum": per.sum()}[reduction]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.3, 0.0])
def test_svm_matches_multi_margin_times_c(reduction, margin):
    s, y = _data(seed=1)
    c = s.shape[1]
    assert_forward_backward(
        lambda a: multiclass_svm_loss(a, y, margin, reduction),
        lambda a: _reduce(
            c * F.multi_margin_loss(a, y, margin=margin, reduction="none"), reduction
        ),
        s,
    )


def test_svm_hand_values_and_exact_margin():
    s = torch.tensor([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]], dtype=torch.float64)
    out = multiclass_svm_loss(s, torch.tensor([0, 1, 2]), reduction="none")
    assert_same_maths(out, torch.tensor([2.9, 0.0, 12.9], dtype=torch.float64))
    assert multiclass_svm_loss(s, torch.tensor([0, 1, 2])).item() == pytest.approx(
        15.8 / 3, abs=1e-12
    )
    # a wrong score exactly Δ below the correct one contributes 0
    edge = torch.tensor([[2.0, 1.0, 0.5]], dtype=torch.float64)
    assert multiclass_svm_loss(edge, torch.tensor([0]), reduction="sum").item() == 0.0


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_matches_torch(reduction):
    s, y = _data(seed=2, scale=10.0)
    assert_forward_backward(
        lambda a: softmax_cross_entropy(a, y, reduction),
        lambda a: F.cross_entropy(a, y, reduction=reduction),
        s,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_one_vs_rest_matches_bce_on_one_hot(reduction):
    s, y = _data(seed=3)
    onehot = F.one_hot(y, s.shape[1]).double()
    assert_forward_backward(
        lambda a: one_vs_rest_loss(a, y, reduction),
        lambda a: _reduce(
            F.binary_cross_entropy_with_logits(a, onehot, reduction="none").sum(1), reduction
        ),
        s,
    )


def test_cross_entropy_large_logits_float32():
    s = torch.tensor([[89.0, 0.0, -5.0], [1e4, -1e4, 0.0]])
    out = softmax_cross_entropy(s, torch.tensor([1, 1]), "none")
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, F.cross_entropy(s, torch.tensor([1, 1]), reduction="none"))


def test_uniform_scores_give_ln_c_and_c_minus_1():
    for c in (3, 10, 100):
        s = torch.zeros(4, c, dtype=torch.float64)
        y = torch.arange(4) % c
        assert softmax_cross_entropy(s, y).item() == pytest.approx(math.log(c), abs=1e-12)
        assert multiclass_svm_loss(s, y).item() == c - 1


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=6, max_size=6),
    st.integers(0, 2),
)
def test_finite_and_nonnegative(xs, label):
    s = torch.tensor(xs, dtype=torch.float64).view(2, 3).requires_grad_()
    y = torch.tensor([label, (label + 1) % 3])
    for f in (multiclass_svm_loss, softmax_cross_entropy, one_vs_rest_loss):
        out = f(s, y, reduction="none")
        assert torch.isfinite(out).all() and (out >= 0).all()
        (g,) = torch.autograd.grad(out.sum(), s)
        assert torch.isfinite(g).all()


def test_modules_and_registry():
    s, y = _data(seed=4)
    assert_same_maths(MulticlassSVMLoss(0.5, "sum")(s, y), multiclass_svm_loss(s, y, 0.5, "sum"))
    assert_same_maths(SoftmaxCrossEntropyLoss("none")(s, y), softmax_cross_entropy(s, y, "none"))
    assert_same_maths(OneVsRestLoss()(s, y), one_vs_rest_loss(s, y))
    assert LOSSES.get("multiclass_svm") is MulticlassSVMLoss
    assert LOSSES.get("cross_entropy") is SoftmaxCrossEntropyLoss
    assert LOSSES.get("one_vs_rest") is OneVsRestLoss


def test_errors():
    s, y = _data()
    with pytest.raises(ValueError, match="target"):
        softmax_cross_entropy(s, y[:-1])
    with pytest.raises(ValueError, match="target"):
        multiclass_svm_loss(s, torch.full_like(y, 5))
    with pytest.raises(ValueError, match="target"):
        one_vs_rest_loss(s, torch.full_like(y, -1))
    with pytest.raises(TypeError, match="target"):
        softmax_cross_entropy(s, y.double())
    with pytest.raises(ValueError, match="target"):
        softmax_cross_entropy(s, y[:, None])
    with pytest.raises(ValueError, match="input"):
        softmax_cross_entropy(s[0], y[:1])
    with pytest.raises(ValueError, match="input"):
        softmax_cross_entropy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="margin"):
        multiclass_svm_loss(s, y, margin=-0.1)
    with pytest.raises(ValueError, match="margin"):
        MulticlassSVMLoss(margin=float("nan"))
    with pytest.raises(ValueError, match="reduction"):
        one_vs_rest_loss(s, y, "batchmean")
