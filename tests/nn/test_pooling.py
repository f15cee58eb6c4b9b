"""Pooling, unpooling, adaptive/SPP, GAP and LRN against torch (float64 values and gradients)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.nn.lrn import LocalResponseNorm, local_response_norm
from deepnotes.nn.pooling import (
    GlobalAvgPool2d,
    MaxPool2d,
    MaxUnpool2d,
    SpatialPyramidPooling,
    adaptive_pool2d,
    avg_pool2d,
    global_avg_pool2d,
    max_pool2d,
    max_unpool2d,
    spatial_pyramid_pool,
)
from tests._reference import assert_forward_backward, assert_same_maths

D = torch.float64
pool_args = dict(
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    s=st.one_of(st.none(), st.integers(1, 3)),
    p=st.integers(0, 2),
    seed=st.integers(0, 999),
)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(**pool_args)
def test_max_pool_matches_torch(k, s, p, seed):
    p = min(p, k[0] // 2, k[1] // 2)
    x = torch.randn(2, 3, 9, 8, generator=torch.Generator().manual_seed(seed), dtype=D)
    assert_forward_backward(lambda x: max_pool2d(x, k, s, p), lambda x: F.max_pool2d(x, k, s, p), x)
    _, idx = max_pool2d(x, k, s, p, return_indices=True)
    assert torch.equal(idx, F.max_pool2d(x, k, s, p, return_indices=True)[1])


@settings(max_examples=40, derandomize=True, deadline=None)
@given(**pool_args, include=st.booleans())
def test_avg_pool_matches_torch(k, s, p, seed, include):
    p = min(p, k[0] // 2, k[1] // 2)
    x = torch.randn(2, 3, 9, 8, generator=torch.Generator().manual_seed(seed), dtype=D)
    assert_forward_backward(
        lambda x: avg_pool2d(x, k, s, p, include), lambda x: F.avg_pool2d(x, k, s, p, count_include_pad=include), x
    )


def test_overlapping_pool_alexnet_geometry():
    x = torch.randn(1, 2, 55, 55, dtype=D)
    out = MaxPool2d(3, 2)(x)
    assert out.shape == (1, 2, 27, 27)
    assert_same_maths(out, F.max_pool2d(x, 3, 2))


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 3, 0)])
def test_max_unpool_matches_torch(k, s, p):
    x = torch.randn(2, 3, 10, 9, dtype=D)
    out, idx = max_pool2d(x, k, s, p, return_indices=True)
    size = (10, 9)
    assert_forward_backward(
        lambda v: max_unpool2d(v, idx, k, s, p, size), lambda v: F.max_unpool2d(v, idx, k, s, p, size), out
    )
    assert_same_maths(MaxUnpool2d(k, s, p)(out, idx, size), F.max_unpool2d(out, idx, k, s, p, size))


@settings(max_examples=30, derandomize=True, deadline=None)
@given(h=st.integers(1, 11), w=st.integers(1, 11), bh=st.integers(1, 5), bw=st.integers(1, 5), seed=st.integers(0, 99))
def test_adaptive_pool_matches_torch(h, w, bh, bw, seed):
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(seed), dtype=D)
    assert_forward_backward(lambda x: adaptive_pool2d(x, (bh, bw)), lambda x: F.adaptive_max_pool2d(x, (bh, bw)), x)
    assert_forward_backward(
        lambda x: adaptive_pool2d(x, (bh, bw), "avg"), lambda x: F.adaptive_avg_pool2d(x, (bh, bw)), x
    )


def test_spp_fixed_length_and_reference():
    spp = SpatialPyramidPooling((4, 2, 1))
    for h, w in [(4, 4), (13, 17), (32, 9)]:
        x = torch.randn(2, 5, h, w, dtype=D)
        out = spp(x)
        assert out.shape == (2, spp.output_size(5)) == (2, 5 * 21)
        ref = torch.cat([F.adaptive_max_pool2d(x, n).flatten(1) for n in (4, 2, 1)], 1)
        assert_same_maths(out, ref)
    with pytest.raises(ValueError, match="levels"):
        spatial_pyramid_pool(torch.randn(1, 1, 4, 4), levels=())
    with pytest.raises(ValueError, match="levels"):
        SpatialPyramidPooling(levels=(4, 0))
    with pytest.raises(ValueError, match="mode"):
        SpatialPyramidPooling(mode="median")


def test_global_avg_pool():
    x = torch.randn(2, 3, 5, 4, dtype=D)
    assert_forward_backward(global_avg_pool2d, lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1), x)
    assert_same_maths(GlobalAvgPool2d()(x), x.mean((2, 3)))
    with pytest.raises(ValueError, match="input"):
        global_avg_pool2d(torch.randn(2, 3, 0, 4))


@settings(max_examples=30, derandomize=True, deadline=None)
@given(size=st.integers(1, 7), alpha=st.floats(1e-4, 1.0), beta=st.floats(0.1, 1.5), k=st.floats(0.5, 3.0),
       ndim=st.sampled_from([3, 4, 5]), seed=st.integers(0, 99))
def test_lrn_matches_torch(size, alpha, beta, k, ndim, seed):
    shape = (2, 6, 4, 3, 2)[:ndim]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)
    assert_forward_backward(
        lambda x: local_response_norm(x, size, alpha, beta, k), lambda x: F.local_response_norm(x, size, alpha, beta, k), x
    )


def test_lrn_module_matches_torch_module():
    x = torch.randn(2, 8, 5, 5, dtype=D)
    assert_same_maths(LocalResponseNorm(5, 1e-4, 0.75, 2.0)(x), torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)(x))
    with pytest.raises(ValueError, match="size"):
        LocalResponseNorm(0)
    with pytest.raises(ValueError, match="input"):
        local_response_norm(torch.randn(3, 4), 2)


def test_pool_errors():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="kernel_size"):
        max_pool2d(x, 5)
    with pytest.raises(ValueError, match="padding"):
        max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="input"):
        avg_pool2d(torch.randn(4, 4), 2)
    with pytest.raises(ValueError, match="stride"):
        max_pool2d(x, 2, stride=0)
    out, idx = max_pool2d(x, 2, return_indices=True)
    with pytest.raises(ValueError, match="indices"):
        max_unpool2d(out, idx[..., :1], 2)
    with pytest.raises(ValueError, match="indices"):
        max_unpool2d(out, idx + 100, 2)
    with pytest.raises(ValueError, match="output_size"):
        adaptive_pool2d(x, 0)
