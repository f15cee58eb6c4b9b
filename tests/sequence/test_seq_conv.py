"""Causal/dilated convolution, TCN causality and receptive field, 2-D text CNN."""

import pytest
import torch
import torch.nn.functional as F

from deepnotes.sequence import TCN, CausalConv1d, TextCNN, causal_conv1d, tcn_receptive_field
from tests._reference import assert_forward_backward, assert_same_maths

D = torch.float64


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


@pytest.mark.parametrize("k,d", [(1, 1), (2, 1), (3, 2), (3, 4), (5, 3)])
def test_causal_conv_matches_padded_conv_then_chomp(k, d):
    # reference: torch's symmetric padding (k-1)·d on both sides, then drop the last (k-1)·d outputs
    w, b = _x(4, 3, k, seed=1), _x(4, seed=2)

    def reference(x, w, b):
        y = F.conv1d(x, w, b, padding=(k - 1) * d, dilation=d)
        return y[..., : x.shape[-1]]

    assert_forward_backward(lambda x, w, b: causal_conv1d(x, w, b, d), reference, _x(2, 3, 9), w, b)
    layer = CausalConv1d(3, 4, k, dilation=d).double()
    assert layer(_x(2, 3, 9)).shape == (2, 4, 9)


def test_tcn_is_causal():
    torch.manual_seed(0)
    tcn = TCN(3, [8, 8, 8], kernel_size=3).double()
    x = _x(2, 3, 40).requires_grad_(True)
    y = tcn(x)
    for t in (0, 7, 20, 39):
        (g,) = torch.autograd.grad(y[:, :, t].sum(), x, retain_graph=True)
        assert torch.count_nonzero(g[:, :, t + 1 :]) == 0  # nothing after t
    x2 = x.detach().clone()
    x2[:, :, 25:] += 100.0
    assert torch.equal(tcn(x2)[:, :, :25], y.detach()[:, :, :25])  # changing the future leaves the past


@pytest.mark.parametrize("k,levels", [(2, 1), (2, 4), (3, 3), (5, 2)])
def test_receptive_field_formula_matches_gradient_support(k, levels):
    torch.manual_seed(1)
    tcn = TCN(1, [4] * levels, kernel_size=k).double()
    with torch.no_grad():  # positive weights so no gradient cancels by chance; biases keep ReLUs open
        for p in tcn.parameters():
            p.copy_(p.abs() + 0.1)
    T = 100
    x = torch.rand(1, 1, T, dtype=D, requires_grad=True)
    (g,) = torch.autograd.grad(tcn(x)[0, :, -1].sum(), x)
    seen = int(torch.count_nonzero(g))
    assert seen == tcn_receptive_field(k, levels) == tcn.receptive_field
    assert tcn_receptive_field(2, 0) == 1
    assert tcn_receptive_field(3, 2, convs_per_block=1) == 1 + 2 * 3


def test_text_cnn_convolution_is_window_dot_kernel():
    torch.manual_seed(0)
    m = TextCNN(6, 3, kernel_heights=(2, 3), num_filters=4, dropout=0.0).double()
    x = _x(2, 7, 6)
    # slow reference: each feature is max_t relu(<flatten(x[t:t+h]), flatten(W)> + b)
    feats = []
    for conv, h in zip(m.convs, (2, 3)):
        w = conv.weight.detach().reshape(4, -1)
        windows = torch.stack([x[:, t : t + h].reshape(2, -1) for t in range(7 - h + 1)], 1)
        feats.append(torch.relu(windows @ w.t() + conv.bias.detach()).amax(1))
    ref = m.fc(torch.cat(feats, 1))
    assert_same_maths(m(x), ref)
    ids = TextCNN(5, 2, kernel_heights=(2,), num_filters=3, vocab_size=11)(torch.randint(0, 11, (4, 9)))
    assert ids.shape == (4, 2)


def test_conv_errors():
    with pytest.raises(ValueError, match="x"):
        causal_conv1d(_x(3, 9), _x(4, 3, 2))
    with pytest.raises(ValueError, match="dilation"):
        causal_conv1d(_x(1, 3, 9), _x(4, 3, 2), dilation=0)
    with pytest.raises(ValueError, match="num_channels"):
        TCN(3, [])
    with pytest.raises(ValueError, match="kernel_size"):
        tcn_receptive_field(0, 2)
    m = TextCNN(6, 3, kernel_heights=(2, 4), num_filters=4)
    with pytest.raises(ValueError, match="x"):
        m(torch.zeros(2, 3, 6))  # shorter than the tallest filter
    with pytest.raises(ValueError, match="x"):
        m(torch.zeros(2, 5, 7))
    with pytest.raises(ValueError, match="kernel_heights"):
        TextCNN(6, 3, kernel_heights=())
