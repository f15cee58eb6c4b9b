"""Conv arithmetic against what torch layers actually do (shapes, parameter counts, gradient support)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from deepnotes.nn.calculators import (
    conv_layer_table,
    conv_output_size,
    conv_params,
    min_input_size,
    padding_for,
    receptive_field,
    same_padding,
)


@settings(max_examples=50, derandomize=True, deadline=None)
@given(size=st.integers(1, 20), k=st.integers(1, 5), s=st.integers(1, 4), p=st.integers(0, 2), d=st.integers(1, 3))
def test_output_size_matches_conv2d(size, k, s, p, d):
    if d * (k - 1) + 1 > size + 2 * p:
        with pytest.raises(ValueError, match="kernel_size"):
            conv_output_size(size, k, s, p, d)
        return
    out = nn.Conv2d(1, 1, k, s, p, d)(torch.zeros(1, 1, size, size))
    assert conv_output_size(size, k, s, p, d) == out.shape[-1]


@settings(max_examples=50, derandomize=True, deadline=None)
@given(size=st.integers(2, 20), k=st.integers(2, 5), s=st.integers(1, 4), p=st.integers(0, 2), ceil=st.booleans())
def test_output_size_matches_maxpool(size, k, s, p, ceil):
    p = min(p, k // 2)
    if k > size + 2 * p:
        return
    out = nn.MaxPool2d(k, s, p, ceil_mode=ceil)(torch.zeros(1, 1, size, size))
    assert conv_output_size(size, k, s, p, ceil_mode=ceil) == out.shape[-1]


@pytest.mark.parametrize("cin,cout,k,groups,bias", [(3, 16, 5, 1, True), (4, 8, (3, 1), 2, False), (6, 6, 3, 6, True)])
def test_params_match_conv2d(cin, cout, k, groups, bias):
    ref = sum(p.numel() for p in nn.Conv2d(cin, cout, k, groups=groups, bias=bias).parameters())
    assert conv_params(cin, cout, k, groups, bias) == ref


def _measured_rf(model: nn.Module, size: int) -> int:
    # receptive field = extent of the input pixels with a nonzero gradient for one central output
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0)
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    y = model.double()(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize(
    "layers",
    [
        [nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)],
        [nn.Conv2d(1, 1, 3, dilation=1), nn.ReLU(), nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, 3, dilation=4)],
        # average pooling: same geometry as max pooling, but its gradient reaches every input
        [nn.Conv2d(1, 1, 5, stride=2), nn.AvgPool2d(3, 2), nn.Conv2d(1, 1, 3)],
        [nn.Conv2d(1, 1, 7, stride=2, padding=3), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, padding=1)],
    ],
)
def test_receptive_field_matches_gradient_support(layers):
    model = nn.Sequential(*layers)
    assert receptive_field(list(model))["size"] == _measured_rf(model, 64)


def test_receptive_field_tuples_and_dicts():
    assert receptive_field([(3, 1), (3, 1), (3, 1)])["size"] == 7
    assert receptive_field([{"kernel_size": 3, "dilation": 2}])["size"] == 5
    assert receptive_field([nn.MaxPool2d(3, 2), nn.Conv2d(1, 1, 3)]) == receptive_field([(3, 2), (3, 1)])
    rf = receptive_field([(11, 4), (3, 2)])
    assert (rf["size"], rf["jump"]) == (19, 8)
    with pytest.raises(TypeError, match="layers"):
        receptive_field([(3,)])
    with pytest.raises(TypeError, match="layers"):
        receptive_field("3x3")


def test_same_and_valid_padding_keep_torch_shapes():
    for k in (1, 2, 3, 4, 5):
        for d in (1, 2):
            left, right = same_padding(k, d)
            assert left + right == d * (k - 1)
            x = torch.zeros(1, 1, 9, 9)
            out = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (left, right, left, right)), torch.ones(1, 1, k, k), dilation=d)
            assert out.shape[-1] == 9
    assert padding_for("valid", 5) == (0, 0)
    assert padding_for("same", 5) == (2, 2)
    with pytest.raises(ValueError, match="mode"):
        padding_for("full", 3)


def test_layer_table_alexnet_first_layers():
    rows = conv_layer_table(
        (3, 227, 227),
        [
            {"type": "conv", "out_channels": 96, "kernel_size": 11, "stride": 4},
            {"type": "pool", "kernel_size": 3, "stride": 2},
        ],
    )
    ref = nn.Sequential(nn.Conv2d(3, 96, 11, 4), nn.MaxPool2d(3, 2))
    x = torch.zeros(1, 3, 227, 227)
    assert rows[0]["out_shape"] == tuple(ref[0](x).shape[1:]) == (96, 55, 55)
    assert rows[1]["out_shape"] == tuple(ref(x).shape[1:]) == (96, 27, 27)
    assert rows[0]["params"] == sum(p.numel() for p in ref[0].parameters())
    assert rows[1]["params"] == 0
    with pytest.raises(ValueError, match="in_shape"):
        conv_layer_table((227, 227), [])
    with pytest.raises(ValueError, match="type"):
        conv_layer_table((3, 8, 8), [{"type": "fc", "kernel_size": 1}])


def test_min_input_size_is_tight():
    layers = [(11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 2, 0)]
    m = min_input_size(layers)
    model = nn.Sequential(nn.Conv2d(1, 1, 11, 4, 2), nn.MaxPool2d(3, 2), nn.Conv2d(1, 1, 5, padding=2),
                          nn.MaxPool2d(3, 2), nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(3, 2))
    assert model(torch.zeros(1, 1, m, m)).shape[-1] == 1
    with pytest.raises(RuntimeError):
        model(torch.zeros(1, 1, m - 1, m - 1))


def test_calculator_errors():
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(10, 3, stride=0)
    with pytest.raises(ValueError, match="kernel_size"):
        conv_output_size(4, 7, padding=1)
    with pytest.raises(ValueError, match="groups"):
        conv_params(3, 16, 3, groups=2)
    with pytest.raises(TypeError, match="in_channels"):
        conv_params(3.0, 16, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        conv_params(3, 16, (3, 3, 3))
