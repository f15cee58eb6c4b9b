"""Regression losses vs torch.nn.functional, values and gradients in float64."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.core.registry import LOSSES
from deepnotes.losses import (
    AbsoluteLoss,
    SmoothL1Loss,
    SquaredLoss,
    absolute_loss,
    smooth_l1_loss,
    squared_loss,
)
from tests._reference import assert_forward_backward, assert_same_maths

REDUCTIONS = ("none", "mean", "sum")


def _data(shape=(7, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(shape, generator=g, dtype=torch.float64) * 2,
        torch.randn(shape, generator=g, dtype=torch.float64) * 2,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_squared_and_absolute_match_torch(reduction):
    x, t = _data()
    assert_forward_backward(
        lambda a, b: squared_loss(a, b, reduction),
        lambda a, b: F.mse_loss(a, b, reduction=reduction),
        x,
        t,
    )
    assert_forward_backward(
        lambda a, b: absolute_loss(a, b, reduction),
        lambda a, b: F.l1_loss(a, b, reduction=reduction),
        x,
        t,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.25, 3.0, 0.0])
def test_smooth_l1_matches_torch(reduction, beta):
    x, t = _data(seed=1)
    assert_forward_backward(
        lambda a, b: smooth_l1_loss(a, b, reduction, beta),
        lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
        x,
        t,
    )


def test_smooth_l1_on_the_boundary_and_at_zero():
    # |d| = β exactly, and d = 0 where the L1 gradient is 0 in torch
    x = torch.tensor([1.0, -1.0, 0.0, 0.5], dtype=torch.float64)
    t = torch.zeros(4, dtype=torch.float64)
    assert_forward_backward(
        lambda a, b: smooth_l1_loss(a, b, "none"),
        lambda a, b: F.smooth_l1_loss(a, b, reduction="none"),
        x,
        t,
    )
    assert_forward_backward(
        lambda a, b: absolute_loss(a, b, "none"),
        lambda a, b: F.l1_loss(a, b, reduction="none"),
        x,
        t,
    )
    assert smooth_l1_loss(x, t, "none").tolist() == [0.5, 0.5, 0.0, 0.125]


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=8), st.floats(0, 10))
def test_bounds(xs, beta):
    x = torch.tensor(xs, dtype=torch.float64)
    t = torch.zeros_like(x)
    sq, ab, sm = (
        squared_loss(x, t, "none"),
        absolute_loss(x, t, "none"),
        smooth_l1_loss(x, t, "none", beta),
    )
    assert (sm >= 0).all() and (sm <= ab + 1e-9).all() and (ab >= 0).all() and (sq >= 0).all()


def test_modules_and_registry():
    x, t = _data(seed=2)
    assert_same_maths(SquaredLoss("sum")(x, t), squared_loss(x, t, "sum"))
    assert_same_maths(AbsoluteLoss("none")(x, t), absolute_loss(x, t, "none"))
    assert_same_maths(SmoothL1Loss(beta=0.5)(x, t), smooth_l1_loss(x, t, beta=0.5))
    for name, cls in (("mse", SquaredLoss), ("l1", AbsoluteLoss), ("smooth_l1", SmoothL1Loss)):
        assert LOSSES.get(name) is cls


def test_errors():
    x, t = _data()
    with pytest.raises(ValueError, match="target"):
        squared_loss(x, t[:, :1])  # no silent broadcasting
    with pytest.raises(ValueError, match="beta"):
        smooth_l1_loss(x, t, beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        SmoothL1Loss(beta=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        absolute_loss(x, t, "median")
    with pytest.raises(ValueError, match="input"):
        absolute_loss(torch.zeros(0), torch.zeros(0))
    with pytest.raises(TypeError, match="input"):
        squared_loss(torch.ones(3, dtype=torch.long), torch.ones(3))
