"""MultiheadAttention vs ``torch.nn.MultiheadAttention`` with the same weights (float64, values and grads)."""

import itertools

import pytest
import torch
from torch import nn

from deepnotes.attention import MultiheadAttention
from tests._reference import assert_same_maths

D = torch.float64
E, H, L, S, N = 12, 3, 5, 6, 4


def _pair(seed=0, **kw):
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(E, H, dtype=D, **kw)
    with torch.no_grad():  # non-zero biases, so that a wrong bias slice would show
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = MultiheadAttention(E, H, dtype=D, **kw)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _inputs(seed, batch_first, kdim=E, vdim=E, unbatched=False):
    g = torch.Generator().manual_seed(seed)

    def make(n, c):
        if unbatched:
            return torch.randn(n, c, generator=g, dtype=D)
        return torch.randn(N, n, c, generator=g, dtype=D) if batch_first else torch.randn(n, N, c, generator=g, dtype=D)

    return make(L, E), make(S, kdim), make(S, vdim)


def _compare(ours, ref, q, k, v, **call):
    leaves = [[t.clone().requires_grad_() for t in (q, k, v)] for _ in range(2)]
    o1, w1 = ours(*leaves[0], **call)
    o2, w2 = ref(*leaves[1], **call)
    assert_same_maths(o1, o2)
    if w2 is None:
        assert w1 is None
    else:
        assert_same_maths(w1, w2)
    go = torch.randn_like(o2)
    loss1 = (o1 * go).sum() + (0 if w1 is None else (w1 * w1).sum())
    loss2 = (o2 * go).sum() + (0 if w2 is None else (w2 * w2).sum())
    g1 = torch.autograd.grad(loss1, leaves[0] + list(ours.parameters()))
    g2 = torch.autograd.grad(loss2, leaves[1] + list(ref.parameters()))
    for a, b in zip(g1, g2):
        assert_same_maths(a, b)


def test_state_dict_keys_equal_torch():
    for kw in ({}, {"bias": False}, {"add_bias_kv": True}, {"kdim": 5, "vdim": 7}):
        ours, ref = _pair(**kw)
        assert list(ours.state_dict()) == list(ref.state_dict())
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]


@pytest.mark.parametrize(
    "batch_first,need_weights,average", list(itertools.product([False, True], [True, False], [True, False]))
)
def test_self_and_cross_attention_match(batch_first, need_weights, average):
    ours, ref = _pair(batch_first=batch_first)
    q, k, v = _inputs(1, batch_first)
    _compare(ours, ref, q, k, v, need_weights=need_weights, average_attn_weights=average)
    _compare(ours, ref, q, q, q, need_weights=need_weights, average_attn_weights=average)


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_masks_match(kind, batch_first):
    ours, ref = _pair(batch_first=batch_first)
    q, k, v = _inputs(2, batch_first)
    g = torch.Generator().manual_seed(3)
    kpm = torch.zeros(N, S, dtype=torch.bool)
    kpm[0, 4:] = True
    kpm[2, 1] = True
    am2 = torch.rand(L, S, generator=g) > 0.7
    am2[:, 0] = False  # key 0 stays visible to every query: no fully masked row
    am3 = torch.rand(N * H, L, S, generator=g) > 0.7
    am3[..., 0] = False
    if kind == "float":
        kpm = torch.zeros(N, S, dtype=D).masked_fill(kpm, float("-inf"))
        am2 = torch.randn(L, S, generator=g, dtype=D)
        am3 = torch.randn(N * H, L, S, generator=g, dtype=D).masked_fill(am3, float("-inf"))
    for call in (
        {"key_padding_mask": kpm},
        {"attn_mask": am2},
        {"attn_mask": am3},
        {"attn_mask": am2, "key_padding_mask": kpm, "average_attn_weights": False},
        {"attn_mask": am3, "key_padding_mask": kpm, "need_weights": False},
    ):
        _compare(ours, ref, q, k, v, **call)


def test_causal_hint_matches():
    ours, ref = _pair(batch_first=True)
    q, _, _ = _inputs(4, True)
    mask = nn.Transformer.generate_square_subsequent_mask(L, dtype=D)
    _compare(ours, ref, q, q, q, attn_mask=mask, is_causal=True, need_weights=False)
    _compare(ours, ref, q, q, q, attn_mask=mask, is_causal=True)


@pytest.mark.parametrize("kw", [{"bias": False}, {"add_bias_kv": True}, {"add_zero_attn": True},
                                {"add_bias_kv": True, "add_zero_attn": True}, {"kdim": 5, "vdim": 7}])
def test_options_match(kw):
    ours, ref = _pair(batch_first=True, **kw)
    q, k, v = _inputs(5, True, kdim=kw.get("kdim", E), vdim=kw.get("vdim", E))
    kpm = torch.zeros(N, S, dtype=torch.bool)
    kpm[1, 3:] = True
    am = torch.zeros(L, S, dtype=torch.bool)
    am[2, 1:3] = True
    _compare(ours, ref, q, k, v)
    _compare(ours, ref, q, k, v, key_padding_mask=kpm, attn_mask=am, average_attn_weights=False)


def test_unbatched_matches():
    ours, ref = _pair()
    q, k, v = _inputs(6, False, unbatched=True)
    kpm = torch.tensor([False, False, True, False, False, False])
    _compare(ours, ref, q, k, v)
    _compare(ours, ref, q, k, v, key_padding_mask=kpm, average_attn_weights=False)


def test_fully_masked_query_gives_bias_not_nan():
    """torch returns NaN for a sequence whose keys are all padding; ours returns zero weights."""
    ours, ref = _pair(batch_first=True)
    q, k, v = _inputs(7, True)
    kpm = torch.zeros(N, S, dtype=torch.bool)
    kpm[1] = True
    out, w = ours(q, k, v, key_padding_mask=kpm)
    ref_out, _ = ref(q, k, v, key_padding_mask=kpm)
    assert torch.isnan(ref_out[1]).all()
    assert torch.equal(w[1], torch.zeros_like(w[1]))
    assert_same_maths(out[1], ours.out_proj.bias.expand(L, E))
    assert_same_maths(out[[0, 2, 3]], ref_out[[0, 2, 3]])


def test_dropout_is_train_only_and_matches_torch_statistics():
    ours, ref = _pair(batch_first=True, dropout=0.5)
    q, k, v = _inputs(8, True)
    ours.eval()
    ref.eval()
    _compare(ours, ref, q, k, v)
    ours.train()
    torch.manual_seed(0)
    _, w = ours(q, k, v, average_attn_weights=False)
    frac = float((w == 0).double().mean())  # 480 weights, Binomial(480, 0.5): sd ≈ 0.023
    assert abs(frac - 0.5) < 0.12
    ours.eval()
    _, w_eval = ours(q, k, v, average_attn_weights=False)
    kept = w != 0  # survivors are the evaluation weights scaled by 1 / (1 - p)
    assert_same_maths(w[kept] * 0.5, w_eval[kept])


def test_default_init_follows_torch():
    torch.manual_seed(0)
    m = MultiheadAttention(64, 4)
    assert torch.equal(m.in_proj_bias, torch.zeros(192)) and torch.equal(m.out_proj.bias, torch.zeros(64))
    bound = (6 / (64 + 192)) ** 0.5  # Xavier-uniform over the stacked (3E, E) matrix
    assert float(m.in_proj_weight.detach().abs().max()) <= bound


# --- bad input ---


def test_embed_dim_not_divisible_raises():
    with pytest.raises(ValueError, match=r"embed_dim \(10\) must be divisible by num_heads \(3\)"):
        MultiheadAttention(10, 3)


def test_attn_mask_wrong_shape_raises():
    ours, _ = _pair(batch_first=True)
    q, k, v = _inputs(0, True)
    with pytest.raises(ValueError, match="attn_mask must have shape"):
        ours(q, k, v, attn_mask=torch.zeros(L, S + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask must have shape"):
        ours(q, k, v, attn_mask=torch.zeros(N, L, S, dtype=torch.bool))


def test_key_padding_mask_wrong_shape_raises():
    ours, _ = _pair(batch_first=True)
    q, k, v = _inputs(0, True)
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        ours(q, k, v, key_padding_mask=torch.zeros(N, S - 1, dtype=torch.bool))


def test_integer_mask_raises():
    ours, _ = _pair(batch_first=True)
    q, k, v = _inputs(0, True)
    with pytest.raises(TypeError, match="key_padding_mask must be a bool or floating"):
        ours(q, k, v, key_padding_mask=torch.zeros(N, S, dtype=torch.int64))


def test_wrong_feature_size_raises():
    ours, _ = _pair(batch_first=True)
    q, k, v = _inputs(0, True)
    with pytest.raises(ValueError, match="query must have 12 features"):
        ours(q[..., :5], k, v)


def test_batch_size_mismatch_raises():
    ours, _ = _pair(batch_first=True)
    q, k, v = _inputs(0, True)
    with pytest.raises(ValueError, match="same batch size"):
        ours(q, k[:2], v[:2])


def test_is_causal_without_mask_raises():
    ours, _ = _pair(batch_first=True)
    q, k, v = _inputs(0, True)
    with pytest.raises(ValueError, match="attn_mask must be given when is_causal"):
        ours(q, q, q, is_causal=True)
