"""RoI Align, PS-RoI Align, RoI Pool, RoI SPP and RoI warping against torchvision.ops (float64)."""

import importlib

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from deepnotes.detection import roi_common
from deepnotes.detection.roi_align import PSRoIAlign, RoIAlign, ps_roi_align, roi_align
from deepnotes.detection.roi_pool import RoIPool, roi_pool, roi_spatial_pyramid_pool
from deepnotes.detection.roi_warp import roi_warp
from deepnotes.nn import spatial_pyramid_pool

roi_align_module = importlib.import_module("deepnotes.detection.roi_align")
TIGHT = {"rtol": 1e-7, "atol": 1e-7}


def _data(seed, n=2, c=6, h=13, w=17, k=40, span=26.0, dtype=torch.float64):
    """Features and RoIs; boxes spill over every border and include tiny and zero-size ones."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g, dtype=dtype, requires_grad=True)
    xy = torch.rand(k, 2, generator=g, dtype=dtype) * span - 5
    wh = torch.rand(k, 2, generator=g, dtype=dtype) * span * 0.7
    wh[:3] = torch.tensor([[0.0, 0.0], [0.3, 0.2], [1.0, 0.0]], dtype=dtype)
    rois = torch.cat([torch.randint(0, n, (k, 1), generator=g).to(dtype), xy, xy + wh], 1)
    return x, rois


def _grads(out, x, seed=0):
    g = torch.Generator().manual_seed(seed + 100)
    w = torch.randn(out.shape, generator=g, dtype=out.dtype)
    return torch.autograd.grad((out * w).sum(), x)[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize(("output_size", "scale"), [(3, 1.0), ((2, 4), 0.5), (7, 0.7)])
def test_roi_align_equals_torchvision(seed, aligned, sampling_ratio, output_size, scale):
    x, rois = _data(seed)
    ref = torchvision.ops.roi_align(x, rois, output_size, scale, sampling_ratio, aligned)
    ours = roi_align(x, rois, output_size, scale, sampling_ratio, aligned)
    assert_close(ours, ref, **TIGHT)
    assert_close(_grads(ours, x, seed), _grads(ref, x, seed), **TIGHT)


def test_roi_align_samples_on_exact_borders():
    """Samples exactly at -1, 0, H-1 and H: the reference's border rules decide each one."""
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    edges = [[-1.5, -1.5, -0.5, -0.5], [3.5, 3.5, 4.5, 4.5], [5.5, 4.5, 6.5, 5.5], [-2.0, -2.0, 8.0, 7.0],
             [0.0, 0.0, 0.0, 0.0], [4.0, 5.0, 6.0, 5.0], [-1.0, -1.0, 6.0, 5.0]]
    boxes = [torch.tensor(edges, dtype=torch.float64)]
    for aligned in (False, True):
        for sr in (1, 2, -1):
            ref = torchvision.ops.roi_align(x, boxes, 2, 1.0, sr, aligned)
            ours = roi_align(x, boxes, 2, 1.0, sr, aligned)
            assert_close(ours, ref, **TIGHT)
            assert_close(_grads(ours, x), _grads(ref, x), **TIGHT)


def test_roi_align_list_and_tensor_boxes_agree_and_chunking_changes_nothing(monkeypatch):
    x, rois = _data(3)
    boxes = [rois[rois[:, 0] == i, 1:] for i in range(2)]
    order = torch.cat([torch.nonzero(rois[:, 0] == i).flatten() for i in range(2)])
    full = roi_align(x, rois, 3, 0.5, 2)
    assert_close(roi_align(x, boxes, 3, 0.5, 2), full[order], rtol=0, atol=0)
    monkeypatch.setattr(roi_align_module, "roi_chunks", lambda k, cost: roi_common.roi_chunks(k, cost, budget=1))
    assert_close(roi_align(x, rois, 3, 0.5, 2), full, **TIGHT)
    assert_close(RoIAlign(3, 0.5, 2)(x, rois), full, **TIGHT)


def test_roi_align_float32_and_empty():
    x, rois = _data(4, dtype=torch.float32)
    assert_close(roi_align(x, rois, 4, 0.8), torchvision.ops.roi_align(x, rois, 4, 0.8), rtol=1e-5, atol=1e-5)
    empty = roi_align(x, torch.zeros(0, 5), 4)
    assert empty.shape == (0, 6, 4, 4) and empty.dtype == torch.float32
    assert roi_align(x, [torch.zeros(0, 4), torch.zeros(0, 4)], (2, 3)).shape == (0, 6, 2, 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2])
@pytest.mark.parametrize(("output_size", "channels"), [(3, 18), ((2, 3), 12)])
def test_ps_roi_align_equals_torchvision(seed, sampling_ratio, output_size, channels):
    x, rois = _data(seed, c=channels)
    rois = rois[3:]  # zero-size RoIs: torchvision divides 0 by a sample count of 0 (NaN)
    ref = torchvision.ops.ps_roi_align(x, rois, output_size, 0.7, sampling_ratio)
    ours = ps_roi_align(x, rois, output_size, 0.7, sampling_ratio)
    assert_close(ours, ref, **TIGHT)
    assert_close(_grads(ours, x, seed), _grads(ref, x, seed), **TIGHT)
    assert_close(PSRoIAlign(output_size, 0.7, sampling_ratio)(x, rois), ref, **TIGHT)


def test_ps_roi_align_zero_size_roi_is_zero_not_nan():
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    out = ps_roi_align(x, torch.tensor([[0, 2.0, 2.0, 2.0, 2.0]], dtype=torch.float64), 2)
    assert torch.equal(out, torch.zeros(1, 1, 2, 2, dtype=torch.float64))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("output_size", "scale"), [(3, 1.0), ((2, 5), 0.5), (7, 0.7), (1, 2.0)])
def test_roi_pool_equals_torchvision(seed, output_size, scale):
    x, rois = _data(seed)
    ref = torchvision.ops.roi_pool(x, rois, output_size, scale)
    ours = roi_pool(x, rois, output_size, scale)
    assert_close(ours, ref, rtol=0, atol=0)
    assert_close(_grads(ours, x, seed), _grads(ref, x, seed), **TIGHT)
    assert_close(RoIPool(output_size, scale)(x, rois), ref, rtol=0, atol=0)


def test_roi_pool_ties_send_the_gradient_to_the_first_maximum():
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 3, (1, 3, 9, 9), generator=g).to(torch.float64).requires_grad_()
    rois = torch.tensor([[0, 0, 0, 8, 8], [0, 1.5, 2.5, 7.5, 6.5], [0, 2, 2, 2, 2]], dtype=torch.float64)
    ref = torchvision.ops.roi_pool(x, rois, 3)
    ours = roi_pool(x, rois, 3)
    assert torch.equal(ours, ref)
    assert_close(_grads(ours, x), _grads(ref, x), **TIGHT)  # a wrong tie pick would be off by O(1)


def test_roi_pool_half_coordinates_round_away_from_zero():
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    rois = torch.tensor([[0, 0.5, 1.5, 2.5, 4.5], [0, 2.5, 0.5, 5.5, 3.5]], dtype=torch.float64)
    assert torch.equal(roi_pool(x, rois, 2), torchvision.ops.roi_pool(x, rois, 2))


def test_roi_spatial_pyramid_pool():
    x, rois = _data(6)
    ours = roi_spatial_pyramid_pool(x, rois, levels=(4, 2, 1), spatial_scale=0.5)
    ref = torch.cat([torchvision.ops.roi_pool(x, rois, lv, 0.5).flatten(1) for lv in (4, 2, 1)], 1)
    assert_close(ours, ref, rtol=0, atol=0)
    whole = torch.tensor([[0, 0, 0, 16.0, 12.0], [1, 0, 0, 16.0, 12.0]], dtype=torch.float64)
    assert_close(roi_spatial_pyramid_pool(x, whole), spatial_pyramid_pool(x), rtol=0, atol=0)


def test_roi_warp_equals_roi_align_with_one_centred_sample_and_differentiates_boxes():
    x, rois = _data(7)
    ref = torchvision.ops.roi_align(x, rois, (3, 4), 0.6, 1, True)
    ours = roi_warp(x, rois, (3, 4), 0.6)
    assert_close(ours, ref, **TIGHT)
    assert_close(_grads(ours, x), _grads(ref, x), **TIGHT)
    # away from pixel-grid crossings the map is smooth in the box: gradcheck input and boxes together
    xs = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[0.31, 0.77, 4.43, 4.21], [1.13, 0.52, 5.27, 3.64]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, b: roi_warp(f, [b], (2, 3)), (xs, boxes))
    _, gb = torch.autograd.grad(roi_warp(xs, [boxes], 2).sum(), (xs, boxes))
    assert bool((gb != 0).any())


def _bad_cases():
    x = torch.randn(2, 4, 6, 6)
    ok = torch.tensor([[0, 0.0, 0.0, 3.0, 3.0]])
    return [
        ((x, torch.zeros(3, 4), 2), ValueError, "boxes"),
        ((x, [torch.zeros(3, 5)], 2), ValueError, r"boxes\[0\]"),
        ((x, torch.tensor([[0, 3.0, 0.0, 1.0, 3.0]]), 2), ValueError, "x2 >= x1"),
        ((x, torch.tensor([[0, 0.0, float("nan"), 1.0, 3.0]]), 2), ValueError, "finite"),
        ((x, torch.tensor([[2, 0.0, 0.0, 1.0, 3.0]]), 2), ValueError, "batch"),
        ((x, torch.tensor([[0.5, 0.0, 0.0, 1.0, 3.0]]), 2), ValueError, "batch"),
        ((x, ok, 0), ValueError, "output_size"),
        ((x, ok, (2, 2, 2)), ValueError, "output_size"),
        ((x, ok, 2, 0.0), ValueError, "spatial_scale"),
        ((x[0], ok, 2), ValueError, "input"),
        ((x.long(), ok, 2), TypeError, "input"),
        ((x, "boxes", 2), TypeError, "boxes"),
    ]


@pytest.mark.parametrize("op", [roi_align, roi_pool, roi_warp])
@pytest.mark.parametrize(("args", "exc", "word"), _bad_cases())
def test_bad_input(op, args, exc, word):
    with pytest.raises(exc, match=word):
        op(*args)


def test_bad_input_specific_arguments():
    x, ok = torch.randn(1, 8, 6, 6), torch.tensor([[0, 0.0, 0.0, 3.0, 3.0]])
    with pytest.raises(TypeError, match="aligned"):
        roi_align(x, ok, 2, aligned=1)
    with pytest.raises(TypeError, match="sampling_ratio"):
        roi_align(x, ok, 2, sampling_ratio=1.5)
    with pytest.raises(ValueError, match="channels"):
        ps_roi_align(x, ok, 3)
    with pytest.raises(ValueError, match="levels"):
        roi_spatial_pyramid_pool(x, ok, levels=())


_box = st.tuples(*[st.floats(0, 1) for _ in range(4)])


@settings(derandomize=True, deadline=None, max_examples=40)
@given(boxes=st.lists(_box, min_size=1, max_size=6), c=st.floats(-5, 5), aligned=st.booleans(),
       sampling_ratio=st.sampled_from([-1, 1, 2]), a=st.floats(-2, 2), b=st.floats(-2, 2))
def test_roi_align_properties(boxes, c, aligned, sampling_ratio, a, b):
    """Bilinear weights of every bin sum to 1 inside the map; RoI Align is linear in the features."""
    h, w = 7, 9
    u = torch.tensor(boxes, dtype=torch.float64)
    x1, x2 = torch.minimum(u[:, 0], u[:, 2]) * (w - 1), torch.maximum(u[:, 0], u[:, 2]) * (w - 1)
    y1, y2 = torch.minimum(u[:, 1], u[:, 3]) * (h - 1), torch.maximum(u[:, 1], u[:, 3]) * (h - 1)
    rois = [torch.stack([x1, y1, x2, y2], 1)]
    const = torch.full((1, 2, h, w), c, dtype=torch.float64)
    out = roi_align(const, rois, 3, 1.0, sampling_ratio, aligned)
    off = 0.5 if aligned else 0.0  # the extent as the op computes it (a tiny box can round to 0)
    zero_size = (((x2 - off) - (x1 - off)) == 0) | (((y2 - off) - (y1 - off)) == 0)
    no_samples = zero_size & aligned & (sampling_ratio <= 0)  # adaptive grid of 0 samples → 0
    expect = (~no_samples).to(torch.float64).mul(c).view(-1, 1, 1, 1).expand_as(out)
    assert_close(out, expect, rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(len(boxes))
    f1, f2 = torch.randn(2, 1, 2, h, w, generator=g, dtype=torch.float64)
    lin = roi_align(a * f1 + b * f2, rois, 3, 1.0, sampling_ratio, aligned)
    assert_close(lin, a * roi_align(f1, rois, 3, 1.0, sampling_ratio, aligned)
                 + b * roi_align(f2, rois, 3, 1.0, sampling_ratio, aligned), rtol=1e-9, atol=1e-9)
    pooled = roi_pool(const, rois, 3)
    assert bool(((pooled == c) | (pooled == 0)).all()) and bool((pooled == c).any())
