"""Gradient clipping vs torch.nn.utils, truncated BPTT vs a slow explicit reference."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.sequence import LSTM, clip_grad_norm_, clip_grad_value_, detach_state, truncated_bptt
from tests._reference import assert_same_maths

D = torch.float64


def _params_with_grads(seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    ps = []
    for s in shapes:
        p = torch.nn.Parameter(torch.randn(s, generator=g, dtype=D))
        p.grad = torch.randn(s, generator=g, dtype=D) * scale
        ps.append(p)
    ps.append(torch.nn.Parameter(torch.zeros(2, dtype=D)))  # no grad: ignored
    return ps


def _clone(ps):
    out = []
    for p in ps:
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = None if p.grad is None else p.grad.clone()
        out.append(q)
    return out


@settings(max_examples=40, derandomize=True, deadline=None)
@given(seed=st.integers(0, 10**6), max_norm=st.floats(0.0, 20.0), scale=st.floats(0.01, 10.0),
       norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]))
def test_clip_grad_norm_matches_torch(seed, max_norm, scale, norm_type):
    ours = _params_with_grads(seed, scale)
    ref = _clone(ours)
    t1 = clip_grad_norm_(ours, max_norm, norm_type)
    t2 = torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type)
    assert_same_maths(t1, t2)
    for a, b in zip(ours, ref):
        if b.grad is None:
            assert a.grad is None
        else:
            assert_same_maths(a.grad, b.grad)


def test_clip_grad_norm_edge_cases():
    # exactly at the threshold: torch's 1e-6 guard scales by max_norm / (norm + 1e-6) < 1
    p = torch.nn.Parameter(torch.zeros(2, dtype=D))
    p.grad = torch.tensor([3.0, 4.0], dtype=D)
    q = _clone([p])
    clip_grad_norm_(p, 5.0)
    torch.nn.utils.clip_grad_norm_(q, 5.0)
    assert_same_maths(p.grad, q[0].grad)
    assert float(clip_grad_norm_([torch.nn.Parameter(torch.zeros(1))], 1.0)) == 0.0  # no grads
    p.grad = torch.tensor([math.inf, 1.0], dtype=D)
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError, match="max_norm"):
            clip_grad_norm_(p, bad)
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_(p, 1.0, norm_type=0.0)
    with pytest.raises(TypeError, match="max_norm"):
        clip_grad_norm_(p, "1")


@settings(max_examples=25, derandomize=True, deadline=None)
@given(seed=st.integers(0, 10**6), clip=st.floats(0.0, 3.0))
def test_clip_grad_value_matches_torch(seed, clip):
    ours = _params_with_grads(seed)
    ref = _clone(ours)
    clip_grad_value_(ours, clip)
    torch.nn.utils.clip_grad_value_(ref, clip)
    for a, b in zip(ours, ref):
        if b.grad is not None:
            assert torch.equal(a.grad, b.grad)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(ours, -0.5)


def _model_and_data(seed=0):
    torch.manual_seed(seed)
    model = LSTM(3, 4, batch_first=True, dtype=D)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(2, 10, 3, generator=g, dtype=D)
    y = torch.randn(2, 10, 4, generator=g, dtype=D)
    return model, x, y


def _mse(out, tgt):
    return ((out - tgt) ** 2).mean()


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("k", [1, 3, 4, 10])
def test_truncated_bptt_gradient_equals_explicit_reference(k):
    model, x, y = _model_and_data()
    losses, state = truncated_bptt(model, x, y, _mse, None, k)
    ours = _grads(model)

    # slow reference: a hand loop over single steps; the state is cut every k steps
    ref_model, _, _ = _model_and_data()
    h = torch.zeros(1, 2, 4, dtype=D)
    c = torch.zeros(1, 2, 4, dtype=D)
    ref_losses, total = [], 0.0
    for s in range(0, 10, k):
        outs = []
        for t in range(s, min(s + k, 10)):
            o, (h, c) = ref_model(x[:, t : t + 1], (h, c))
            outs.append(o)
        loss = _mse(torch.cat(outs, 1), y[:, s : s + k])
        ref_losses.append(float(loss.detach()))
        total = total + loss
        h, c = h.detach(), c.detach()
    total.backward()
    for a, b in zip(ours, _grads(ref_model)):
        assert_same_maths(a, b)
    assert_same_maths(torch.tensor(losses), torch.tensor(ref_losses))
    assert not state[0].requires_grad and not state[1].requires_grad
    assert len(losses) == math.ceil(10 / k)


def test_full_bptt_when_k_covers_sequence_and_truncation_changes_gradient():
    model, x, y = _model_and_data()
    truncated_bptt(model, x, y, _mse, None, 10)
    full = _grads(model)
    ref, _, _ = _model_and_data()
    _mse(ref(x)[0], y).backward()
    for a, b in zip(full, _grads(ref)):
        assert_same_maths(a, b)
    cut, _, _ = _model_and_data()
    truncated_bptt(cut, x, y, _mse, None, 2)
    assert not torch.allclose(_grads(cut)[1], full[1])  # W_hh sees fewer paths when truncated


def test_truncated_bptt_steps_and_clips():
    model, x, y = _model_and_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    losses, _ = truncated_bptt(model, x, y, _mse, opt, 5, max_norm=1e-3)
    assert len(losses) == 2
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)]).norm()
    assert 0 < float(moved) <= 2 * 0.1 * 1e-3 * (1 + 1e-9)  # two steps, each at most lr · max_norm


def test_truncated_bptt_errors():
    model, x, y = _model_and_data()
    with pytest.raises(ValueError, match="k"):
        truncated_bptt(model, x, y, _mse, None, 0)
    with pytest.raises(ValueError, match="inputs"):
        truncated_bptt(model, x[0], y, _mse, None, 2)
    with pytest.raises(ValueError, match="targets"):
        truncated_bptt(model, x, y[:, :5], _mse, None, 2)
    with pytest.raises(TypeError, match="loss_fn"):
        truncated_bptt(model, x, y, "mse", None, 2)
    with pytest.raises(TypeError, match="state"):
        detach_state("h")
    assert detach_state(None) is None
