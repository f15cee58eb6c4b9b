"""TransformerEncoderLayer vs ``torch.nn.TransformerEncoderLayer`` (copied weights, float64) and the
positional encodings against their formulas written as loops."""

import math

import pytest
import torch
from torch import nn

from deepnotes.attention import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    TransformerEncoderLayer,
    sinusoidal_encoding,
)
from tests._reference import assert_same_maths

D = torch.float64


def _pair(**kw):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(16, 4, dim_feedforward=24, dtype=D, **kw)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = TransformerEncoderLayer(16, 4, dim_feedforward=24, dtype=D, **kw)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_torch(norm_first, activation, batch_first):
    ours, ref = _pair(norm_first=norm_first, activation=activation, batch_first=batch_first)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.eval()
    ref.eval()  # dropout off; torch's fast path needs no_grad, so with grads it runs the same maths
    x = torch.randn(3, 7, 16, dtype=D) if batch_first else torch.randn(7, 3, 16, dtype=D)
    kpm = torch.zeros(3, 7, dtype=D)
    kpm[1, 5:] = float("-inf")  # float like the causal mask (torch warns on mixed mask types)
    mask = nn.Transformer.generate_square_subsequent_mask(7, dtype=D)
    for call in ({}, {"src_key_padding_mask": kpm}, {"src_mask": mask, "is_causal": True},
                 {"src_mask": mask, "src_key_padding_mask": kpm}):
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        o1, o2 = ours(x1, **call), ref(x2, **call)
        assert_same_maths(o1, o2)
        go = torch.randn_like(o2)
        g1 = torch.autograd.grad((o1 * go).sum(), [x1, *ours.parameters()])
        g2 = torch.autograd.grad((o2 * go).sum(), [x2, *ref.parameters()])
        for a, b in zip(g1, g2):
            assert_same_maths(a, b)


def test_encoder_layer_no_grad_fast_path_agrees():
    """Under no_grad in eval mode torch takes its fused fast path: still equal."""
    ours, ref = _pair(batch_first=True, norm_first=True)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 5, 16, dtype=D)
    with torch.no_grad():
        assert_same_maths(ours(x), ref(x))


def test_encoder_layer_unbatched_matches():
    ours, ref = _pair()
    ours.eval()
    ref.eval()
    x = torch.randn(6, 16, dtype=D)
    assert_same_maths(ours(x), ref(x))


def test_encoder_dropout_active_in_training():
    ours, _ = _pair(dropout=0.5, batch_first=True)
    x = torch.randn(2, 5, 16, dtype=D)
    torch.manual_seed(0)
    a = ours(x)
    b = ours(x)
    assert not torch.equal(a, b)
    ours.eval()
    assert torch.equal(ours(x), ours(x))


def test_encoder_bad_activation_raises():
    with pytest.raises(ValueError, match="activation must be one of"):
        TransformerEncoderLayer(8, 2, activation="tanh")


def test_encoder_bad_heads_raises():
    with pytest.raises(ValueError, match="embed_dim .* divisible by num_heads"):
        TransformerEncoderLayer(10, 4)


@pytest.mark.parametrize("d", [6, 5])
def test_sinusoidal_table_matches_the_formula_in_a_loop(d):
    pe = sinusoidal_encoding(11, d, dtype=D)
    assert pe.shape == (11, d)
    for pos in range(11):
        for c in range(d):  # channel c uses frequency index i = c // 2: sin on even, cos on odd
            angle = pos / 10000 ** (2 * (c // 2) / d)
            want = math.sin(angle) if c % 2 == 0 else math.cos(angle)
            assert pe[pos, c] == pytest.approx(want, abs=1e-14)


def test_sinusoidal_offset_is_a_rotation():
    """PE[pos + k] = R_k PE[pos] with R_k block-diagonal rotations independent of pos."""
    d, k = 8, 3
    pe = sinusoidal_encoding(20, d, dtype=D)
    w = 1.0 / 10000 ** (torch.arange(0, d, 2, dtype=D) / d)
    c, s = torch.cos(k * w), torch.sin(k * w)
    shifted = torch.empty_like(pe[:-k])
    shifted[:, 0::2] = pe[:-k, 0::2] * c + pe[:-k, 1::2] * s
    shifted[:, 1::2] = pe[:-k, 1::2] * c - pe[:-k, 0::2] * s
    assert_same_maths(shifted, pe[k:])


@pytest.mark.parametrize("batch_first", [True, False])
def test_positional_modules_add_their_table(batch_first):
    x = torch.randn(2, 5, 6, dtype=D) if batch_first else torch.randn(5, 2, 6, dtype=D)
    sin = SinusoidalPositionalEncoding(6, max_len=10, batch_first=batch_first)
    table = sinusoidal_encoding(5, 6, dtype=D)
    expected = x + (table if batch_first else table.unsqueeze(1))
    assert_same_maths(sin(x), expected)
    assert list(sin.state_dict()) == []  # fixed, not saved
    learned = LearnedPositionalEncoding(10, 6, batch_first=batch_first).double()
    p = learned.pos_embedding[0, :5]
    assert_same_maths(learned(x), x + (p if batch_first else p.unsqueeze(1)))
    learned(x).sum().backward()
    assert torch.equal(learned.pos_embedding.grad[0, 5:], torch.zeros(5, 6, dtype=D))  # unused positions
    assert (learned.pos_embedding.grad[0, :5] != 0).all()


def test_positional_too_long_raises():
    with pytest.raises(ValueError, match="more than max_len = 4"):
        SinusoidalPositionalEncoding(6, max_len=4)(torch.randn(1, 5, 6))
    with pytest.raises(ValueError, match="d_model = 6"):
        LearnedPositionalEncoding(4, 6)(torch.randn(1, 3, 5))
