"""Hand-written BPTT for LSTM / GRU layers: gradcheck and agreement with the autograd loops."""

import pytest
import torch

from deepnotes.sequence.explicit_bptt import (
    gru_layer,
    gru_layer_autograd,
    lstm_layer,
    lstm_layer_autograd,
    rnn_layer,
    rnn_layer_autograd,
)
from tests._reference import assert_same_maths

D = torch.float64


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def _lstm_inputs(T=6, N=3, H=4):
    return [_x(T, N, 4 * H), _x(N, H, seed=1), _x(N, H, seed=2), 0.5 * _x(4 * H, H, seed=3)]


def _gru_inputs(T=6, N=3, H=4, bias=True):
    return [_x(T, N, 3 * H), _x(N, H, seed=1), 0.5 * _x(3 * H, H, seed=2), _x(3 * H, seed=3) if bias else None]


def _leaves(inputs):
    return [None if t is None else t.clone().requires_grad_(True) for t in inputs]


def _rnn_inputs(T=6, N=3, H=4):
    return [_x(T, N, H), _x(N, H, seed=1), 0.5 * _x(H, H, seed=3)]


@pytest.mark.parametrize("nl", ["tanh", "relu"])
def test_rnn_gradcheck_and_agreement(nl):
    assert torch.autograd.gradcheck(lambda *a: rnn_layer(*a, nl), _leaves(_rnn_inputs(T=4, N=2, H=3)))
    _agree(lambda *a: rnn_layer(*a, nl), lambda *a: rnn_layer_autograd(*a, nl), _rnn_inputs(T=30, N=5, H=7))


def test_lstm_gradcheck():
    assert torch.autograd.gradcheck(lstm_layer, _leaves(_lstm_inputs(T=4, N=2, H=3)))


@pytest.mark.parametrize("bias", [True, False])
def test_gru_gradcheck(bias):
    assert torch.autograd.gradcheck(gru_layer, _leaves(_gru_inputs(T=4, N=2, H=3, bias=bias)))


def _agree(fast, slow, inputs):
    results = []
    for fn in (fast, slow):
        leaves = _leaves(inputs)
        outs = fn(*leaves)
        g = torch.Generator().manual_seed(9)
        # weight every output, including the final states, so each backward input is exercised
        loss = sum((o * torch.randn(o.shape, generator=g, dtype=D)).sum() for o in outs)
        diff = [t for t in leaves if t is not None]
        results.append(([o.detach() for o in outs], torch.autograd.grad(loss, diff)))
    for a, b in zip(results[0][0] + list(results[0][1]), results[1][0] + list(results[1][1])):
        assert_same_maths(a, b)


def test_lstm_fast_equals_autograd_loop():
    _agree(lstm_layer, lstm_layer_autograd, _lstm_inputs(T=30, N=5, H=7))


@pytest.mark.parametrize("bias", [True, False])
def test_gru_fast_equals_autograd_loop(bias):
    _agree(gru_layer, gru_layer_autograd, _gru_inputs(T=30, N=5, H=7, bias=bias))


def test_single_step_and_outputs_only():
    # T = 1, and a loss on the outputs only (the final-state gradients arrive as zeros)
    for fast, slow, inp in ((rnn_layer, rnn_layer_autograd, _rnn_inputs(T=1)),
                            (lstm_layer, lstm_layer_autograd, _lstm_inputs(T=1)),
                            (gru_layer, gru_layer_autograd, _gru_inputs(T=1))):
        a, b = _leaves(inp), _leaves(inp)
        fast(*a)[0].sum().backward()
        slow(*b)[0].sum().backward()
        for x, y in zip(a, b):
            if x is not None:
                assert_same_maths(x.grad, y.grad)
