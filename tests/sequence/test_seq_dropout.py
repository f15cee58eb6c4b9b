"""Variational dropout and zoneout: statistics, exact p = 0 / p = 1 behaviour, eval mode."""

import pytest
import torch

from deepnotes.sequence import (
    GRUCell,
    LSTMCell,
    RNNCell,
    VariationalDropout,
    ZoneoutRNN,
    variational_dropout,
    zoneout,
)
from tests._reference import assert_same_maths

D = torch.float64


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


@pytest.mark.parametrize("batch_first", [False, True])
def test_variational_mask_shared_over_time(batch_first):
    x = torch.ones(20, 30, 40, dtype=D)  # time axis is 0, or 1 if batch_first
    y = variational_dropout(x, 0.4, batch_first=batch_first, generator=torch.Generator().manual_seed(0))
    time_axis = 1 if batch_first else 0
    first = y.select(time_axis, 0).unsqueeze(time_axis)
    assert torch.equal(y, first.expand_as(y))  # the same mask at every step
    assert set(torch.unique(y).tolist()) <= {0.0, 1 / 0.6}


def test_variational_keep_rate_binomial():
    x = torch.ones(5, 200, 100, dtype=D)
    p = 0.3
    y = variational_dropout(x, p, generator=torch.Generator().manual_seed(1))
    dropped = int((y[0] == 0).sum())
    n = 200 * 100
    assert abs(dropped - n * p) < 5 * (n * p * (1 - p)) ** 0.5  # 5 sigma on a fixed seed
    assert abs(float(y.mean()) - 1.0) < 0.05  # inverted scaling keeps the expectation


def test_variational_p0_p1_eval_and_gradient():
    x = _x(4, 3, 5)
    assert torch.equal(variational_dropout(x, 0.0), x)
    assert torch.equal(variational_dropout(x, 1.0), torch.zeros_like(x))
    assert torch.equal(variational_dropout(x, 0.7, training=False), x)
    m = VariationalDropout(0.5).eval()
    assert torch.equal(m(x), x)
    leaf = x.clone().requires_grad_(True)
    y = variational_dropout(leaf, 0.5, generator=torch.Generator().manual_seed(3))
    y.sum().backward()
    assert_same_maths(leaf.grad, (y.detach() / x) )  # gradient = mask / (1 - p)


def test_variational_errors():
    with pytest.raises(ValueError, match="p"):
        variational_dropout(_x(2, 2, 2), 1.5)
    with pytest.raises(ValueError, match="p"):
        VariationalDropout(-0.1)
    with pytest.raises(ValueError, match="x"):
        variational_dropout(_x(2, 2), 0.5)


def test_zoneout_function():
    prev, new = _x(300, 50), _x(300, 50, seed=1)
    assert torch.equal(zoneout(prev, new, 0.0), new)
    assert torch.equal(zoneout(prev, new, 1.0), prev)
    assert_same_maths(zoneout(prev, new, 0.25, training=False), 0.25 * prev + 0.75 * new)
    out = zoneout(prev, new, 0.25, generator=torch.Generator().manual_seed(0))
    kept = out == prev
    assert torch.equal(out[~kept], new[~kept])  # every unit is exactly one of the two
    n = prev.numel()
    assert abs(int(kept.sum()) - 0.25 * n) < 5 * (n * 0.25 * 0.75) ** 0.5
    with pytest.raises(ValueError, match="p"):
        zoneout(prev, new, 1.01)
    with pytest.raises(ValueError, match="prev"):
        zoneout(prev[:3], new, 0.5)


def test_zoneout_rnn_p0_equals_torch_lstm():
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 5, dtype=D)
    cell = LSTMCell(3, 5, dtype=D)
    cell.load_state_dict({k[:-3]: v for k, v in ref.state_dict().items()})  # weight_ih_l0 -> weight_ih
    m = ZoneoutRNN(cell, 0.0, 0.0).train()
    x = _x(7, 2, 3)
    out, (h, c) = m(x)
    r_out, (r_h, r_c) = ref(x)
    assert_same_maths(out, r_out)
    assert_same_maths(h, r_h[0])
    assert_same_maths(c, r_c[0])


@pytest.mark.parametrize("cell", [RNNCell(3, 4, dtype=D), GRUCell(3, 4, dtype=D), LSTMCell(3, 4, dtype=D)])
def test_zoneout_rnn_p1_keeps_initial_state_and_eval_is_expectation(cell):
    lstm = isinstance(cell, LSTMCell)
    h0 = _x(2, 4, seed=5)
    hx = (h0, _x(2, 4, seed=6)) if lstm else h0
    x = _x(6, 2, 3)
    out, last = ZoneoutRNN(cell, 1.0, 1.0).train()(x, hx)
    assert torch.equal(out, h0.expand(6, 2, 4))
    # eval: h_t = p h_{t-1} + (1 - p) cell(x_t, h_{t-1}) — a slow loop as the reference
    p = 0.3
    out, _ = ZoneoutRNN(cell, p, p).eval()(x, hx)
    state = hx
    for t in range(6):
        new = cell(x[t], state)
        if lstm:
            state = (p * state[0] + (1 - p) * new[0], p * state[1] + (1 - p) * new[1])
            h = state[0]
        else:
            state = h = p * state + (1 - p) * new
        assert_same_maths(out[t], h)


def test_zoneout_rnn_errors():
    with pytest.raises(TypeError, match="cell"):
        ZoneoutRNN(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="zoneout_h"):
        ZoneoutRNN(GRUCell(2, 2), zoneout_h=2.0)
    with pytest.raises(ValueError, match="input"):
        ZoneoutRNN(GRUCell(2, 2))(torch.zeros(3, 2))
