"""conv2d_im2col / conv_transpose2d_col2im against F.conv2d / F.conv_transpose2d (float64, values and grads)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.nn.conv import (
    Col2imConvTranspose2d,
    Im2colConv2d,
    conv2d_im2col,
    conv_transpose2d_col2im,
)
from tests._reference import assert_forward_backward, assert_same_maths

D = torch.float64


@settings(max_examples=30, derandomize=True, deadline=None)
@given(
    groups=st.sampled_from([1, 2]),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 2)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    bias=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_conv2d_matches_torch(groups, k, stride, padding, dilation, bias, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 8, 7, generator=g, dtype=D)
    w = torch.randn(6, 4 // groups, *k, generator=g, dtype=D)
    b = torch.randn(6, generator=g, dtype=D) if bias else None
    ins = (x, w) if b is None else (x, w, b)

    def ours(x, w, b=None):
        return conv2d_im2col(x, w, b, stride, padding, dilation, groups)

    def ref(x, w, b=None):
        return F.conv2d(x, w, b, stride, padding, dilation, groups)

    assert_forward_backward(ours, ref, *ins)


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's own note about a padded copy
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_conv2d_string_padding(padding, k):
    g = torch.Generator().manual_seed(k)
    x, w = torch.randn(1, 3, 6, 5, generator=g, dtype=D), torch.randn(2, 3, k, k, generator=g, dtype=D)
    assert_forward_backward(
        lambda x, w: conv2d_im2col(x, w, padding=padding, dilation=2 if k < 4 else 1),
        lambda x, w: F.conv2d(x, w, padding=padding, dilation=2 if k < 4 else 1),
        x,
        w,
    )


@settings(max_examples=30, derandomize=True, deadline=None)
@given(
    groups=st.sampled_from([1, 2]),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.integers(1, 3),
    padding=st.integers(0, 1),
    dilation=st.integers(1, 2),
    seed=st.integers(0, 1000),
)
def test_conv_transpose_matches_torch(groups, k, stride, padding, dilation, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 5, 4, generator=g, dtype=D)
    w = torch.randn(4, 3, *k, generator=g, dtype=D)
    b = torch.randn(3 * groups, generator=g, dtype=D)
    op = stride - 1 if stride > 1 else 0
    assert_forward_backward(
        lambda x, w, b: conv_transpose2d_col2im(x, w, b, stride, padding, op, groups, dilation),
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, op, groups, dilation),
        x,
        w,
        b,
    )


def test_transpose_is_adjoint_of_conv():
    # <conv(x), y> == <x, conv_transpose(y)> for the same weight: the defining property of col2im
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(2, 3, 9, 9, generator=g, dtype=D), torch.randn(5, 3, 3, 3, generator=g, dtype=D)
    y = torch.randn(2, 5, 4, 4, generator=g, dtype=D)
    lhs = (conv2d_im2col(x, w, stride=2, padding=0) * y).sum()
    rhs = (x * conv_transpose2d_col2im(y, w, stride=2, padding=0)).sum()
    assert_same_maths(lhs, rhs)


def test_modules_match_torch_layers():
    torch.manual_seed(0)
    ours, ref = Im2colConv2d(4, 6, 3, stride=2, padding=1, groups=2).double(), torch.nn.Conv2d(4, 6, 3).double()
    x = torch.randn(2, 4, 7, 7, dtype=D)
    assert_same_maths(ours(x), F.conv2d(x, ours.weight, ours.bias, 2, 1, 1, 2))
    assert ref.weight.shape == (6, 4, 3, 3)
    t = Col2imConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1).double()
    assert_same_maths(t(x), F.conv_transpose2d(x, t.weight, t.bias, 2, 1, 1))
    with pytest.raises(ValueError, match="output_size"):
        t(x, output_size=(14, 14))


def test_conv_errors():
    x, w = torch.randn(1, 4, 5, 5), torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match="weight"):
        conv2d_im2col(x, torch.randn(2, 4, 7, 7))  # kernel larger than the padded input
    assert conv2d_im2col(x, torch.randn(2, 4, 7, 7), padding=1).shape == (1, 2, 1, 1)
    with pytest.raises(ValueError, match="weight"):
        conv2d_im2col(x, torch.randn(2, 3, 3, 3))  # wrong channel count
    with pytest.raises(ValueError, match="groups"):
        conv2d_im2col(x, torch.randn(2, 4, 3, 3), groups=3)
    with pytest.raises(ValueError, match="bias"):
        conv2d_im2col(x, w, torch.randn(3))
    with pytest.raises(ValueError, match="padding"):
        conv2d_im2col(x, w, padding="full")
    with pytest.raises(ValueError, match="stride"):
        conv2d_im2col(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="stride"):
        conv2d_im2col(x, w, stride=0)
    with pytest.raises(ValueError, match="input"):
        conv2d_im2col(torch.randn(4, 5, 5), w)
    with pytest.raises(TypeError, match="input"):
        conv2d_im2col(torch.ones(1, 4, 5, 5, dtype=torch.int64), w)
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose2d_col2im(x, torch.randn(4, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="padding"):
        conv_transpose2d_col2im(torch.randn(1, 4, 1, 1), torch.randn(4, 2, 1, 1), padding=1)
