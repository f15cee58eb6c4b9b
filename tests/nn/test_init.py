"""Initialization schemes against torch.nn.init: fans, gains, identical draws, statistics."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepnotes.nn import init as ours

SHAPES = [(7, 5), (16, 3, 3, 3), (4, 6, 5), (1, 1)]
NONLIN = [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
          ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None), ("conv_transpose3d", None)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_equal_torch(shape):
    t = torch.empty(shape)
    assert ours.calculate_fan_in_and_fan_out(t) == nn.init._calculate_fan_in_and_fan_out(t)


@pytest.mark.parametrize("name, param", NONLIN)
def test_gains_equal_torch(name, param):
    assert ours.calculate_gain(name, param) == pytest.approx(nn.init.calculate_gain(name, param), rel=1e-15)


PAIRS = [
    (lambda t, g: ours.xavier_uniform_(t, gain=1.7, generator=g),
     lambda t, g: nn.init.xavier_uniform_(t, gain=1.7, generator=g)),
    (lambda t, g: ours.xavier_normal_(t, gain=0.5, generator=g),
     lambda t, g: nn.init.xavier_normal_(t, gain=0.5, generator=g)),
    (lambda t, g: ours.kaiming_uniform_(t, generator=g),
     lambda t, g: nn.init.kaiming_uniform_(t, generator=g)),
    (lambda t, g: ours.kaiming_uniform_(t, a=0.3, mode="fan_out", generator=g),
     lambda t, g: nn.init.kaiming_uniform_(t, a=0.3, mode="fan_out", generator=g)),
    (lambda t, g: ours.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=g),
     lambda t, g: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=g)),
    (lambda t, g: ours.kaiming_normal_(t, nonlinearity="tanh", generator=g),
     lambda t, g: nn.init.kaiming_normal_(t, nonlinearity="tanh", generator=g)),
    (lambda t, g: ours.small_random_(t, generator=g),
     lambda t, g: t.copy_(0.01 * torch.randn(t.shape, generator=g, dtype=t.dtype))),
    (lambda t, g: ours.large_random_(t, generator=g),
     lambda t, g: nn.init.normal_(t, 0.0, 1.0, generator=g)),
    (lambda t, g: ours.constant_(t, 0.3), lambda t, g: nn.init.constant_(t, 0.3)),
    (lambda t, g: ours.zeros_(t), lambda t, g: nn.init.zeros_(t)),
]


@pytest.mark.parametrize("pair", range(len(PAIRS)))
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_same_generator_gives_torchs_draws(pair, shape):
    mine, ref = PAIRS[pair]
    a = torch.empty(shape, dtype=torch.float64)
    b = torch.empty(shape, dtype=torch.float64)
    out = mine(a, torch.Generator().manual_seed(5))
    ref(b, torch.Generator().manual_seed(5))
    assert out is a  # in place
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


# statistical checks on a 400 x 500 tensor (200,000 draws): the sample std of a scheme lies
# within 1% of its target (the standard error of a sample std is std / sqrt(2n) ~ 0.16%),
# and the sample mean within 5 standard errors of 0
@pytest.mark.parametrize(
    "fn, kw, target",
    [
        (ours.xavier_normal_, {}, math.sqrt(2 / 900)),
        (ours.xavier_uniform_, {"gain": 5 / 3}, 5 / 3 * math.sqrt(2 / 900)),
        (ours.kaiming_normal_, {"nonlinearity": "relu"}, math.sqrt(2 / 500)),
        (ours.kaiming_uniform_, {"nonlinearity": "relu", "mode": "fan_out"}, math.sqrt(2 / 400)),
        (ours.small_random_, {}, 0.01),
        (ours.large_random_, {}, 1.0),
    ],
)
def test_sample_statistics(fn, kw, target):
    t = torch.empty(400, 500, dtype=torch.float64)
    fn(t, generator=torch.Generator().manual_seed(0), **kw)
    n = t.numel()
    assert abs(t.std().item() / target - 1) < 0.01
    assert abs(t.mean().item()) < 5 * target / math.sqrt(n)
    if "uniform" in fn.__name__:
        bound = math.sqrt(3) * target
        assert t.abs().max().item() <= bound
        assert t.abs().max().item() > 0.999 * bound


def test_init_module_applies_to_every_weight_and_bias():
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Conv1d(5, 4, 3), nn.BatchNorm1d(4))
    ref = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Conv1d(5, 4, 3), nn.BatchNorm1d(4))
    ours.init_module(model, "xavier_uniform", nonlinearity="tanh", bias=0.1,
                     generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    for m in (ref[0], ref[2]):
        nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("tanh"), generator=g)
        nn.init.constant_(m.bias, 0.1)
    nn.init.constant_(ref[3].bias, 0.1)
    for a, b in zip(model.state_dict().values(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    ours.init_module(model, "zeros")
    assert all(p.abs().sum() == 0 for n, p in model.named_parameters() if n != "3.weight")
    ours.init_module(model, "he_normal", mode="fan_out", nonlinearity="relu")
    assert model[0].weight.std() > 0


def test_empty_tensor_is_left_alone():
    t = torch.empty(0, 3)
    assert ours.kaiming_uniform_(t) is t
    assert ours.xavier_normal_(torch.empty(0, 3)).numel() == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="nonlinearity"):
        ours.calculate_gain("swish")
    with pytest.raises(ValueError, match="nonlinearity"):
        ours.kaiming_normal_(torch.empty(3, 3), nonlinearity="gelu")
    with pytest.raises(TypeError, match="param"):
        ours.calculate_gain("leaky_relu", "big")
    with pytest.raises(ValueError, match="tensor"):
        ours.xavier_uniform_(torch.empty(5))
    with pytest.raises(ValueError, match="mode"):
        ours.kaiming_uniform_(torch.empty(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="gain"):
        ours.xavier_normal_(torch.empty(3, 3), gain=-1.0)
    with pytest.raises(ValueError, match="scheme"):
        ours.init_module(nn.Linear(2, 2), "orthogonal")
    with pytest.raises(TypeError, match="module"):
        ours.init_module(torch.empty(2, 2), "zeros")
    with pytest.raises(TypeError, match="tensor"):
        ours.zeros_([0.0, 1.0])
    with pytest.raises(ValueError, match="val"):
        ours.constant_(torch.empty(2), float("nan"))
    with pytest.raises(ValueError, match="scale"):
        ours.small_random_(torch.empty(2), scale=-0.01)
