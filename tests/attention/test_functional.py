"""Scaled dot-product attention vs ``torch.nn.functional.scaled_dot_product_attention`` (float64)."""

import math

import pytest
import torch
import torch.nn.functional as F

from deepnotes.attention import attention_with_weights, causal_mask, scaled_dot_product_attention
from tests._reference import assert_forward_backward, assert_same_maths

D = torch.float64


def _qkv(seed, batch=(2, 3), L=5, S=7, E=4, Ev=6):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(*batch, L, E, generator=g, dtype=D),
        torch.randn(*batch, S, E, generator=g, dtype=D),
        torch.randn(*batch, S, Ev, generator=g, dtype=D),
    )


@pytest.mark.parametrize("seed", range(3))
def test_plain_matches_torch_values_and_grads(seed):
    q, k, v = _qkv(seed)
    assert_forward_backward(scaled_dot_product_attention, F.scaled_dot_product_attention, q, k, v)


@pytest.mark.parametrize("mask_shape", [(5, 7), (3, 5, 7), (2, 1, 5, 7), (1, 7)])
def test_boolean_mask_matches_torch(mask_shape):
    q, k, v = _qkv(1)
    g = torch.Generator().manual_seed(7)
    mask = torch.rand(mask_shape, generator=g) > 0.4
    mask[..., 0] = True  # every row keeps one key (fully masked rows are tested separately)
    assert_forward_backward(
        lambda a, b, c: scaled_dot_product_attention(a, b, c, attn_mask=mask),
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=mask),
        q, k, v,
    )


def test_additive_mask_matches_torch_and_its_gradient():
    q, k, v = _qkv(2)
    bias = torch.randn(3, 5, 7, dtype=D)
    bias[0, 1, 2:] = float("-inf")
    ours = lambda a, b, c, m: scaled_dot_product_attention(a, b, c, attn_mask=m)  # noqa: E731
    ref = lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m)  # noqa: E731
    # the gradient reaches a learned additive bias (relative position bias): compare it too
    finite = torch.where(torch.isinf(bias), torch.zeros_like(bias), bias)
    assert_forward_backward(ours, ref, q, k, v, finite)
    assert_same_maths(ours(q, k, v, bias), ref(q, k, v, bias))


@pytest.mark.parametrize("L,S", [(5, 5), (5, 7), (7, 5)])
def test_causal_matches_torch(L, S):
    q, k, v = _qkv(3, L=L, S=S)
    assert_forward_backward(
        lambda a, b, c: scaled_dot_product_attention(a, b, c, is_causal=True),
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True),
        q, k, v,
    )


def test_causal_mask_is_lower_triangle_and_output_ignores_the_future():
    assert torch.equal(causal_mask(3, 4), torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool))
    q, k, v = _qkv(4, batch=(1,), L=6, S=6)
    out = scaled_dot_product_attention(q, k, v, is_causal=True)
    v2 = v.clone()
    v2[:, 3:] += 100.0  # changing later values must not move earlier outputs
    k2 = k.clone()
    k2[:, 3:] -= 5.0
    out2 = scaled_dot_product_attention(q, k2, v2, is_causal=True)
    assert torch.equal(out[:, :3], out2[:, :3])


def test_scale_argument_matches_torch():
    q, k, v = _qkv(5)
    assert_same_maths(scaled_dot_product_attention(q, k, v, scale=0.3), F.scaled_dot_product_attention(q, k, v, scale=0.3))


def test_slow_loop_reference():
    """Each output row is Σ_j softmax_j(q·k_j/√d) v_j — written as a loop over query/key pairs."""
    q, k, v = _qkv(6, batch=(1,), L=3, S=4, E=2, Ev=3)
    out = scaled_dot_product_attention(q, k, v)[0]
    for i in range(3):
        e = [math.exp(float(q[0, i] @ k[0, j]) / math.sqrt(2)) for j in range(4)]
        z = sum(e[j] / sum(e) * v[0, j] for j in range(4))
        assert_same_maths(out[i], z)


def test_fully_masked_row_is_zero_like_torch():
    q, k, v = _qkv(1)
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[2] = False
    ours = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(ours[..., 2, :], torch.zeros_like(ours[..., 2, :]))
    assert_same_maths(ours, ref)
    _, w = attention_with_weights(q, k, v, attn_mask=mask)
    assert torch.equal(w[..., 2, :], torch.zeros_like(w[..., 2, :]))
    qq = q.clone().requires_grad_()
    scaled_dot_product_attention(qq, k, v, attn_mask=mask).sum().backward()
    assert torch.isfinite(qq.grad).all()


def test_weights_are_a_distribution():
    q, k, v = _qkv(8)
    _, w = attention_with_weights(q * 30, k, v)  # large logits: still finite and normalized
    assert torch.isfinite(w).all()
    assert_same_maths(w.sum(-1), torch.ones(w.shape[:-1], dtype=D))


# --- dropout: same semantics as torch (inverted dropout on the weights), tested statistically ---


def test_dropout_zero_is_exact():
    q, k, v = _qkv(9)
    torch.manual_seed(0)
    assert torch.equal(scaled_dot_product_attention(q, k, v, dropout_p=0.0), scaled_dot_product_attention(q, k, v))


def test_dropout_one_gives_zeros():
    q, k, v = _qkv(9)
    assert torch.equal(scaled_dot_product_attention(q, k, v, dropout_p=1.0), torch.zeros(2, 3, 5, 6, dtype=D))


def test_dropout_statistics_match_torch():
    """With v = identity the output is the dropped weight matrix: its zero fraction is Binomial(n, p)
    and its mean equals the undropped weights' mean; both for ours and torch, same bounds."""
    p, n_rep = 0.3, 400
    q = torch.randn(n_rep, 4, 8, 3, dtype=D, generator=torch.Generator().manual_seed(0))
    k = torch.randn(n_rep, 4, 8, 3, dtype=D, generator=torch.Generator().manual_seed(1))
    v = torch.eye(8, dtype=D).expand(n_rep, 4, 8, 8)
    exact = scaled_dot_product_attention(q, k, v)
    torch.manual_seed(123)
    ours = scaled_dot_product_attention(q, k, v, dropout_p=p)
    torch.manual_seed(123)
    ref = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    n = exact.numel()
    sd = math.sqrt(p * (1 - p) / n)
    for out in (ours, ref):
        zero_frac = float((out == 0).double().mean())
        assert abs(zero_frac - p) < 5 * sd, zero_frac
        kept = out != 0  # survivors are scaled by 1/(1-p)
        assert_same_maths(out[kept], exact[kept] / (1 - p))
        # unbiased: the mean weight stays 1/S on average (5 standard errors)
        se = float(out.sum(-1).std()) / math.sqrt(out.sum(-1).numel())
        assert abs(float(out.sum(-1).mean()) - 1.0) < 5 * se


# --- bad input ---


def test_mask_of_wrong_shape_raises():
    q, k, v = _qkv(0)
    with pytest.raises(ValueError, match="attn_mask of shape"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(4, 7, dtype=torch.bool))


def test_mask_of_integer_dtype_raises():
    q, k, v = _qkv(0)
    with pytest.raises(TypeError, match="attn_mask must be a bool or floating"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(5, 7, dtype=torch.int64))


def test_mask_with_causal_raises():
    q, k, v = _qkv(0)
    with pytest.raises(ValueError, match="attn_mask must be None when is_causal"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(5, 7, dtype=torch.bool), is_causal=True)


def test_query_key_width_mismatch_raises():
    q, k, v = _qkv(0)
    with pytest.raises(ValueError, match="same last dimension"):
        scaled_dot_product_attention(q, k[..., :3], v)


def test_key_value_length_mismatch_raises():
    q, k, v = _qkv(0)
    with pytest.raises(ValueError, match="same sequence length"):
        scaled_dot_product_attention(q, k, v[..., :6, :])


def test_dropout_out_of_range_raises():
    q, k, v = _qkv(0)
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.5)


def test_one_dimensional_query_raises():
    _, k, v = _qkv(0)
    with pytest.raises(ValueError, match="query must have shape"):
        scaled_dot_product_attention(torch.randn(4, dtype=D), k, v)


def test_integer_query_raises():
    _, k, v = _qkv(0)
    with pytest.raises(TypeError, match="query must be a floating-point"):
        scaled_dot_product_attention(torch.ones(2, 3, 5, 4, dtype=torch.int64), k, v)
