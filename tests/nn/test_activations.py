"""Activations against torch.nn.functional / torch.nn: values, gradients, written derivatives."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes import nn as dn
from tests._reference import assert_forward_backward, assert_same_maths

CASES = [
    (dn.sigmoid, torch.sigmoid, dn.Sigmoid(), nn.Sigmoid()),
    (dn.tanh, torch.tanh, dn.Tanh(), nn.Tanh()),
    (dn.relu, F.relu, dn.ReLU(), nn.ReLU()),
    (dn.leaky_relu, F.leaky_relu, dn.LeakyReLU(), nn.LeakyReLU()),
    (lambda x: dn.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2), dn.LeakyReLU(0.2), nn.LeakyReLU(0.2)),
    (dn.elu, F.elu, dn.ELU(), nn.ELU()),
    (lambda x: dn.elu(x, 0.5), lambda x: F.elu(x, 0.5), dn.ELU(0.5), nn.ELU(0.5)),
    (dn.mish, F.mish, dn.Mish(), nn.Mish()),
]
IDS = ["sigmoid", "tanh", "relu", "leaky", "leaky0.2", "elu", "elu0.5", "mish"]


def inputs(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 7, generator=g, dtype=torch.float64) * 4
    x[0, :5] = torch.tensor([0.0, -0.0, 1e-12, -1e-12, 30.0], dtype=torch.float64)  # kinks, tiny, large
    x[1, :3] = torch.tensor([-40.0, 700.0, -700.0], dtype=torch.float64)
    return x


@pytest.mark.parametrize("ours, ref, ours_m, ref_m", CASES, ids=IDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_functional_and_module_match_torch(ours, ref, ours_m, ref_m, seed):
    x = inputs(seed)
    assert_forward_backward(ours, ref, x, seed=seed)
    assert_forward_backward(ours_m, ref_m, x, seed=seed)


@pytest.mark.parametrize("name", list(dn.DERIVATIVES))
def test_written_derivatives_equal_autograd_of_torch(name):
    x = inputs(3).requires_grad_(True)
    ref = getattr(F, name) if name != "sigmoid" and name != "tanh" else getattr(torch, name)
    (g,) = torch.autograd.grad(ref(x).sum(), x)
    assert_same_maths(dn.DERIVATIVES[name](x.detach()), g)


@pytest.mark.parametrize("ours", [dn.sigmoid, dn.tanh, dn.elu, dn.mish, dn.leaky_relu])
def test_gradcheck(ours):
    x = (torch.randn(8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 0.05)
    torch.autograd.gradcheck(ours, (x.requires_grad_(True),))


def test_extreme_and_nan_inputs():
    x = torch.tensor([-1e4, 1e4, float("nan"), float("-inf"), float("inf"), -0.0], dtype=torch.float64)
    for f, r in [(dn.sigmoid, torch.sigmoid), (dn.tanh, torch.tanh), (dn.mish, F.mish), (dn.elu, F.elu),
                 (dn.relu, torch.relu), (dn.leaky_relu, F.leaky_relu)]:
        torch.testing.assert_close(f(x), r(x), equal_nan=True, rtol=1e-7, atol=1e-7)


def maxout_reference(x, linear, out_features, pieces):
    # a slow reference: one Linear per piece, then the elementwise maximum over pieces
    w, b = linear.weight, linear.bias
    best = None
    for k in range(pieces):
        zk = x @ w[k::pieces].T + b[k::pieces]
        best = zk if best is None else torch.maximum(best, zk)
    return best


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_maxout_layer_matches_loop_over_pieces(pieces):
    torch.manual_seed(0)
    layer = dn.Maxout(5, 4, pieces=pieces).double()
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    ref = maxout_reference(x, layer.linear, 4, pieces)
    assert out.shape == (6, 4)
    assert_same_maths(out, ref)
    go = torch.randn_like(out)
    g1 = torch.autograd.grad(out, [x, layer.linear.weight], go)
    g2 = torch.autograd.grad(ref, [x, layer.linear.weight], go)
    for a, b in zip(g1, g2):
        assert_same_maths(a, b)


def test_maxout_parameter_count_and_functional_dim():
    assert sum(p.numel() for p in dn.Maxout(10, 3, pieces=2).parameters()) == 2 * (10 * 3 + 3)
    x = torch.arange(12.0).reshape(2, 6, 1)
    out = dn.maxout(x, 3, dim=1)
    assert out.shape == (2, 2, 1)
    assert out[0, :, 0].tolist() == [2.0, 5.0]


def test_bad_inputs():
    with pytest.raises(TypeError, match="input"):
        dn.relu([1.0, 2.0])
    with pytest.raises(TypeError, match="input"):
        dn.sigmoid(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="negative_slope"):
        dn.leaky_relu(torch.zeros(2), float("inf"))
    with pytest.raises(ValueError, match="alpha"):
        dn.ELU(float("nan"))
    with pytest.raises(ValueError, match="pieces"):
        dn.maxout(torch.zeros(2, 5), 2)
    with pytest.raises(ValueError, match="pieces"):
        dn.Maxout(3, 2, pieces=0)
