"""deform_conv2d / DeformConv2d against torchvision.ops (float64 values and gradients incl. offsets, mask)."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.nn.deform import DeformConv2d, deform_conv2d
from tests._reference import assert_forward_backward, assert_same_maths

D = torch.float64


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.integers(1, 2),
    padding=st.integers(0, 1),
    dilation=st.integers(1, 2),
    groups=st.sampled_from([1, 2]),
    offset_groups=st.sampled_from([1, 2]),
    use_mask=st.booleans(),
    scale=st.sampled_from([0.5, 3.0]),
    seed=st.integers(0, 999),
)
def test_matches_torchvision(k, stride, padding, dilation, groups, offset_groups, use_mask, scale, seed):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = 2, 4, 6, 5
    oh = (h + 2 * padding - dilation * (k[0] - 1) - 1) // stride + 1
    ow = (w + 2 * padding - dilation * (k[1] - 1) - 1) // stride + 1
    x = torch.randn(n, c, h, w, generator=g, dtype=D)
    # large offsets push samples outside the image: exercises the zero-border rule
    off = torch.randn(n, 2 * offset_groups * k[0] * k[1], oh, ow, generator=g, dtype=D) * scale
    wt = torch.randn(6, c // groups, *k, generator=g, dtype=D)
    b = torch.randn(6, generator=g, dtype=D)
    ins = [x, off, wt, b]
    if use_mask:
        ins.append(torch.rand(n, offset_groups * k[0] * k[1], oh, ow, generator=g, dtype=D))

    def ours(x, off, wt, b, m=None):
        return deform_conv2d(x, off, wt, b, stride, padding, dilation, m)

    def ref(x, off, wt, b, m=None):
        return torchvision.ops.deform_conv2d(x, off, wt, b, stride, padding, dilation, m)

    assert_forward_backward(ours, ref, *ins)


def test_zero_offsets_equal_conv2d():
    x, wt = torch.randn(2, 3, 7, 7, dtype=D), torch.randn(4, 3, 3, 3, dtype=D)
    off = torch.zeros(2, 18, 4, 4, dtype=D)
    assert_same_maths(deform_conv2d(x, off, wt, stride=2, padding=1), F.conv2d(x, wt, stride=2, padding=1))


def test_integer_shift_equals_shifted_conv():
    # an offset of exactly +1 column on every tap is a convolution of the image shifted left
    x, wt = torch.randn(1, 2, 6, 6, dtype=D), torch.randn(3, 2, 3, 3, dtype=D)
    off = torch.zeros(1, 18, 4, 4, dtype=D)
    off[:, 1::2] = 1.0
    shifted = F.pad(x[..., 1:], (0, 1))
    assert_same_maths(deform_conv2d(x, off, wt), F.conv2d(shifted, wt))


def test_module_matches_torchvision_module():
    torch.manual_seed(0)
    ours = DeformConv2d(4, 6, 3, stride=1, padding=1, groups=2).double()
    ref = torchvision.ops.DeformConv2d(4, 6, 3, stride=1, padding=1, groups=2).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4, 5, 5, dtype=D)
    off = torch.randn(2, 18, 5, 5, dtype=D)
    mask = torch.rand(2, 9, 5, 5, dtype=D)
    assert_same_maths(ours(x, off, mask), ref(x, off, mask))
    assert ours.weight.shape == ref.weight.shape


def test_deform_errors():
    x, wt = torch.randn(1, 4, 5, 5), torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match="offset"):
        deform_conv2d(x, torch.zeros(1, 17, 3, 3), wt)  # not a multiple of 2·K
    with pytest.raises(ValueError, match="offset"):
        deform_conv2d(x, torch.zeros(1, 18, 4, 4), wt)  # wrong spatial size
    with pytest.raises(ValueError, match="offset"):
        deform_conv2d(x, torch.zeros(1, 54, 3, 3), wt)  # 3 offset groups do not divide 4 channels
    with pytest.raises(ValueError, match="mask"):
        deform_conv2d(x, torch.zeros(1, 18, 3, 3), wt, mask=torch.ones(1, 8, 3, 3))
    with pytest.raises(ValueError, match="weight"):
        deform_conv2d(x, torch.zeros(1, 98, 1, 1), torch.randn(2, 4, 7, 7))
    with pytest.raises(ValueError, match="weight"):
        deform_conv2d(x, torch.zeros(1, 18, 3, 3), torch.randn(2, 3, 3, 3))
    with pytest.raises(ValueError, match="bias"):
        deform_conv2d(x, torch.zeros(1, 18, 3, 3), wt, torch.zeros(3))
    with pytest.raises(ValueError, match="groups"):
        DeformConv2d(4, 6, 3, groups=4)


def test_infinite_and_nan_offsets_read_zero_like_torchvision():
    """Offsets of ±inf gave NaN (inf − floor(inf)); torchvision samples 0 there."""
    import torchvision

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 6, 6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    off = torch.randn(2, 18, 4, 4, generator=g, dtype=torch.float64)
    off[0, 0, 0, 0], off[0, 3, 1, 2], off[1, 5, 2, 2] = float("inf"), float("-inf"), float("inf")
    off[1, 8, 3, 3] = float("nan")
    off.requires_grad_(True)
    ours = deform_conv2d(x, off, w)
    ref = torchvision.ops.deform_conv2d(x, off, w)
    assert bool(torch.isfinite(ours).all())
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    go = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad(ours, (x, w, off), go)
    ref_grads = torch.autograd.grad(ref, (x, w, off), go)
    for a, b in zip(grads[:2], ref_grads[:2]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # offsets: torchvision's gradient is NaN for the other coordinate of a non-finite offset;
    # the sample reads 0 wherever that coordinate lies, so ours is 0 there (and equal elsewhere)
    a, b = grads[2], ref_grads[2]
    assert bool(torch.isfinite(a).all())
    odd = torch.isnan(b)
    assert int(odd.sum()) == 4 and bool((a[odd] == 0).all())
    torch.testing.assert_close(a[~odd], b[~odd], rtol=1e-10, atol=1e-12)
