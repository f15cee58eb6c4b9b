"""Binary losses vs torch / scikit-learn, values and gradients in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import hinge_loss as sk_hinge
from sklearn.metrics import zero_one_loss as sk_zero_one

from deepnotes.core.registry import LOSSES
from deepnotes.losses import (
    BCEWithLogitsLoss,
    HingeLoss,
    LogisticLoss,
    binary_cross_entropy,
    hinge_loss,
    logistic_loss,
    zero_one_loss,
)
from tests._reference import assert_forward_backward, assert_same_maths

REDUCTIONS = ("none", "mean", "sum")


def _data(n=37, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 2, (n,), generator=g) * 2 - 1
    return s, y


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_torch(reduction):
    s, y = _data()
    t = torch.rand(s.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for target in (t, (y > 0).double()):
        assert_forward_backward(
            lambda a, b: binary_cross_entropy(a, b, reduction),
            lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction),
            s,
            target,
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_logistic_loss_is_bce_with_01_targets(reduction):
    s, y = _data(seed=2)
    assert_forward_backward(
        lambda a: logistic_loss(a, y, reduction),
        lambda a: F.binary_cross_entropy_with_logits(a, (y + 1).double() / 2, reduction=reduction),
        s,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hinge_matches_scaled_multi_margin(reduction):
    # 2 · multi_margin_loss on the scores (−s/2, s/2) is max(0, 1 − y s)
    s, y = _data(seed=3)

    def ref(a):
        per = 2 * F.multi_margin_loss(
            torch.stack([-a / 2, a / 2], 1), (y + 1) // 2, reduction="none"
        )
        return {"none": per, "mean": per.mean(), "sum": per.sum()}[reduction]

    assert_forward_backward(lambda a: hinge_loss(a, y, reduction=reduction), ref, s)


def test_hinge_mean_matches_sklearn_and_hand_values():
    s, y = _data(seed=4)
    assert_same_maths(hinge_loss(s, y).item(), sk_hinge(y.numpy(), s.numpy()))
    # inputs exactly on the margin and on the boundary
    out = hinge_loss(
        torch.tensor([1.0, 0.0, -1.0, 2.5]), torch.tensor([1, 1, 1, -1]), reduction="none"
    )
    assert out.tolist() == [0.0, 1.0, 2.0, 3.5]
    assert hinge_loss(torch.tensor([0.5]), torch.tensor([1]), margin=0.0).item() == 0.0


def test_zero_one_matches_sklearn_and_boundary():
    s, y = _data(seed=5)
    pred = torch.where(s > 0, 1, -1)
    assert zero_one_loss(s, y).item() == pytest.approx(
        sk_zero_one(y.numpy(), pred.numpy()), abs=1e-15
    )
    assert zero_one_loss(s, y, "sum").item() == sk_zero_one(
        y.numpy(), pred.numpy(), normalize=False
    )
    # s = 0 is predicted −1
    assert zero_one_loss(torch.zeros(2), torch.tensor([1, -1]), "none").tolist() == [1.0, 0.0]
    assert not zero_one_loss(s.requires_grad_(), y).requires_grad


def test_bce_stable_and_nonzero_gradient_for_confident_mistakes():
    x = torch.tensor([1e4, -1e4, 1e4, -1e4], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    loss = binary_cross_entropy(x, t, "none")
    assert loss.tolist() == [1e4, 1e4, 0.0, 0.0]
    loss.sum().backward()
    assert x.grad.tolist() == [1.0, -1.0, 0.0, 0.0]
    # the same in float32, where naive log(sigmoid) gives inf
    x32 = torch.tensor([-1e4, 88.0, 200.0], requires_grad=True)
    out = binary_cross_entropy(x32, torch.tensor([1.0, 0.0, 0.0]), "none")
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x32.grad).all() and x32.grad[0] == -1.0


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=8),
    st.floats(0.0, 1.0),
)
def test_bce_finite_and_bounded_below(xs, t):
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    loss = binary_cross_entropy(x, torch.full_like(x, t), "none")
    assert torch.isfinite(loss).all() and (loss >= -1e-9 * (1 + x.abs())).all()
    loss.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad.abs() <= 1).all()


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=8), st.booleans())
def test_margin_losses_nonnegative_and_ordered(xs, positive):
    x = torch.tensor(xs, dtype=torch.float64)
    y = torch.full(x.shape, 1 if positive else -1)
    z, h, lg = (f(x, y, reduction="none") for f in (zero_one_loss, hinge_loss, logistic_loss))
    assert ((z == 0) | (z == 1)).all()
    # hinge is a convex upper bound of the 0-1 loss; the logistic loss in bits is too
    assert (h >= z).all() and (lg / np.log(2) >= z - 1e-12).all() and (lg >= 0).all()


def test_modules_and_registry():
    s, y = _data(seed=6)
    t = (y > 0).double()
    assert_same_maths(BCEWithLogitsLoss("sum")(s, t), binary_cross_entropy(s, t, "sum"))
    assert_same_maths(HingeLoss(margin=0.5)(s, y), hinge_loss(s, y, margin=0.5))
    assert_same_maths(LogisticLoss("none")(s, y), logistic_loss(s, y, "none"))
    assert LOSSES.get("bce_with_logits") is BCEWithLogitsLoss
    assert LOSSES.get("hinge") is HingeLoss
    assert LOSSES.create("hinge", reduction="none")(s, y).shape == s.shape


def test_errors():
    s, y = _data()
    with pytest.raises(ValueError, match="reduction"):
        hinge_loss(s, y, reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        BCEWithLogitsLoss("avg")
    with pytest.raises(ValueError, match="target"):
        hinge_loss(s, (y > 0).long())  # 0/1 labels where ±1 are required
    with pytest.raises(ValueError, match="target"):
        zero_one_loss(s, y[:-1])
    with pytest.raises(ValueError, match="target"):
        logistic_loss(s, y * 2)
    with pytest.raises(ValueError, match="target"):
        binary_cross_entropy(s, y.double())  # −1 is outside [0, 1]
    with pytest.raises(ValueError, match="target"):
        binary_cross_entropy(s, torch.full_like(s, float("nan")))
    with pytest.raises(ValueError, match="margin"):
        hinge_loss(s, y, margin=-1.0)
    with pytest.raises(ValueError, match="margin"):
        HingeLoss(margin=-1.0)
    with pytest.raises(ValueError, match="input"):
        hinge_loss(torch.zeros(0), torch.zeros(0))
    with pytest.raises(TypeError, match="input"):
        binary_cross_entropy(y, y)
    with pytest.raises(TypeError, match="target"):
        binary_cross_entropy(s, y.numpy())
