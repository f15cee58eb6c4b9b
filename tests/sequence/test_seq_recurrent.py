"""Our RNN / LSTM / GRU (cells and multi-layer) against torch's with copied weights, float64."""

import pytest
import torch

from deepnotes.sequence import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from tests._reference import assert_iterative, assert_same_maths

D = torch.float64


def _pair(ours_cls, ref_cls, *args, **kw):
    torch.manual_seed(0)
    ref = ref_cls(*args, dtype=D, **kw)
    ours = ours_cls(*args, dtype=D, **kw)
    ours.load_state_dict(ref.state_dict())  # strict: names and shapes must match torch's
    return ours, ref


def _flat(out):
    """Flatten (output, state) structures into a list of tensors."""
    if isinstance(out, torch.Tensor):
        return [out]
    res = []
    for o in out:
        res += _flat(o)
    return res


def _compare(ours, ref, inputs, tol=assert_same_maths):
    """Outputs, states and gradients w.r.t. inputs and every parameter agree."""
    def run(m):
        leaves = [t.detach().clone().requires_grad_(True) for t in _flat(inputs)]
        it = iter(leaves)
        args = _rebuild(inputs, it)
        outs = _flat(m(*args))
        g = torch.Generator().manual_seed(1)
        loss = sum((o * torch.randn(o.shape, generator=g, dtype=D)).sum() for o in outs)
        params = [p for _, p in sorted(m.named_parameters())]
        grads = torch.autograd.grad(loss, leaves + params)
        return [o.detach() for o in outs], grads

    o1, g1 = run(ours)
    o2, g2 = run(ref)
    assert len(o1) == len(o2) and len(g1) == len(g2)
    for a, b in zip(o1, o2):
        tol(a, b)
    for a, b in zip(g1, g2):
        tol(a, b)


def _rebuild(struct, it):
    if isinstance(struct, torch.Tensor):
        return next(it)
    return type(struct)(_rebuild(s, it) for s in struct)


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


# ----------------------------------------------------------------------------- cells

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_cells_match_torch(kind, bias):
    if kind.startswith("rnn"):
        ours, ref = _pair(RNNCell, torch.nn.RNNCell, 5, 7, bias=bias, nonlinearity=kind[4:])
        state = _x(3, 7, seed=2)
    elif kind == "lstm":
        ours, ref = _pair(LSTMCell, torch.nn.LSTMCell, 5, 7, bias=bias)
        state = (_x(3, 7, seed=2), _x(3, 7, seed=3))
    else:
        ours, ref = _pair(GRUCell, torch.nn.GRUCell, 5, 7, bias=bias)
        state = _x(3, 7, seed=2)
    _compare(ours, ref, (_x(3, 5), state))
    _compare(ours, ref, (_x(3, 5),))  # default zero state
    _compare(ours, ref, (_x(5, seed=4),))  # unbatched


def test_cell_errors():
    cell = LSTMCell(4, 3, dtype=D)
    with pytest.raises(ValueError, match="input"):
        cell(_x(2, 5))
    with pytest.raises(ValueError, match="input"):
        cell(_x(2, 3, 4))
    with pytest.raises(ValueError, match=r"hx\[1\]"):
        cell(_x(2, 4), (_x(2, 3), _x(3, 3)))
    with pytest.raises(ValueError, match="hx"):
        cell(_x(2, 4), (_x(2, 3),))
    with pytest.raises(ValueError, match="hx"):
        GRUCell(4, 3, dtype=D)(_x(2, 4), _x(2, 4))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(4, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        GRUCell(4, 0)


# ----------------------------------------------------------------------------- multi-layer

CONFIGS = [
    {},
    {"num_layers": 2},
    {"bidirectional": True},
    {"num_layers": 3, "bidirectional": True, "batch_first": True},
    {"bias": False, "num_layers": 2},
    {"dropout": 0.5, "num_layers": 2},  # compared in eval mode below; no effect there
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
@pytest.mark.parametrize("mode", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_multilayer_matches_torch(mode, cfg):
    kw = dict(cfg)
    if mode.startswith("rnn"):
        ours, ref = _pair(RNN, torch.nn.RNN, 4, 6, nonlinearity=mode[4:], **kw)
    elif mode == "lstm":
        ours, ref = _pair(LSTM, torch.nn.LSTM, 4, 6, **kw)
    else:
        ours, ref = _pair(GRU, torch.nn.GRU, 4, 6, **kw)
    ours.eval()
    ref.eval()
    n_dir = 2 if kw.get("bidirectional") else 1
    rows = kw.get("num_layers", 1) * n_dir
    x = _x(3, 7, 4) if kw.get("batch_first") else _x(7, 3, 4)
    h0 = _x(rows, 3, 6, seed=5)
    state = (h0, _x(rows, 3, 6, seed=6)) if mode == "lstm" else h0
    _compare(ours, ref, (x, state))
    _compare(ours, ref, (x,))
    _compare(ours, ref, (_x(7, 4, seed=7),))  # unbatched (T, F)


def test_lstm_projection_matches_torch():
    ours, ref = _pair(LSTM, torch.nn.LSTM, 4, 6, num_layers=2, proj_size=3, bidirectional=True)
    state = (_x(4, 2, 3, seed=1), _x(4, 2, 6, seed=2))
    _compare(ours, ref, (_x(5, 2, 4), state))


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_long_sequence_iterative_tier(mode):
    # 200 steps: rounding differences compound along the recurrence, hence the iterative tier
    cls = {"rnn": (RNN, torch.nn.RNN), "lstm": (LSTM, torch.nn.LSTM), "gru": (GRU, torch.nn.GRU)}[mode]
    ours, ref = _pair(*cls, 3, 8, num_layers=2)
    _compare(ours, ref, (_x(200, 2, 3),), tol=assert_iterative)


def test_state_dict_names_equal_torch():
    for ours_cls, ref_cls, kw in [(LSTM, torch.nn.LSTM, {"proj_size": 2}), (GRU, torch.nn.GRU, {}),
                                  (RNN, torch.nn.RNN, {})]:
        ours = ours_cls(3, 5, num_layers=2, bidirectional=True, **kw)
        ref = ref_cls(3, 5, num_layers=2, bidirectional=True, **kw)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
        ref.load_state_dict(ours.state_dict())  # and back the other way


def test_default_init_range():
    m = LSTM(3, 16)
    for p in m.parameters():
        assert float(p.detach().abs().max()) <= 0.25  # U(-1/sqrt(16), 1/sqrt(16)) as torch


def test_dropout_between_layers_p1_zeroes_next_layer_input():
    torch.manual_seed(0)
    m = GRU(3, 4, num_layers=2, dropout=1.0, dtype=D).train()
    out, h_n = m(_x(6, 2, 3))
    # layer 1 sees only zeros: run a single-layer GRU with layer 1's weights on zeros
    single = GRU(4, 4, dtype=D)
    single.load_state_dict({k.replace("l1", "l0"): v for k, v in m.state_dict().items() if k.endswith("l1")})
    ref_out, _ = single(torch.zeros(6, 2, 4, dtype=D))
    assert_same_maths(out, ref_out)
    m.eval()  # eval: no dropout, equals torch with the same weights
    ref = torch.nn.GRU(3, 4, num_layers=2, dropout=1.0, dtype=D).eval()
    ref.load_state_dict(m.state_dict())
    assert_same_maths(m(_x(6, 2, 3))[0], ref(_x(6, 2, 3))[0])


def test_dropout_between_layers_rate():
    torch.manual_seed(0)
    m = RNN(1, 200, num_layers=2, dropout=0.3, nonlinearity="relu", dtype=D).train()
    with torch.no_grad():
        for k, p in m.named_parameters():
            p.copy_(torch.eye(*p.shape, dtype=D) if k == "weight_ih_l1" else torch.zeros_like(p))
        m.weight_ih_l0.fill_(1.0)
        out, _ = m(torch.ones(5, 40, 1, dtype=D))
    # layer 1 copies layer 0's (dropped, rescaled) output: each unit is 0 or 1/(1-p)
    zeros = int((out == 0).sum())
    n = out.numel()
    mean, sd = n * 0.3, (n * 0.3 * 0.7) ** 0.5
    assert abs(zeros - mean) < 5 * sd
    assert_same_maths(out[out != 0], torch.full_like(out[out != 0], 1 / 0.7))


def test_multilayer_errors():
    m = LSTM(4, 3, num_layers=2, dtype=D)
    with pytest.raises(ValueError, match="input"):
        m(_x(5, 2, 3))  # wrong feature size
    with pytest.raises(ValueError, match="input"):
        m(_x(5, 2, 4, 1))  # wrong rank
    with pytest.raises(ValueError, match="input"):
        m(_x(0, 2, 4))  # no time step
    with pytest.raises(ValueError, match=r"hx\[0\]"):
        m(_x(5, 2, 4), (_x(1, 2, 3), _x(2, 2, 3)))
    with pytest.raises(ValueError, match=r"hx\[1\]"):
        m(_x(5, 2, 4), (_x(2, 2, 3), _x(2, 3, 3)))
    with pytest.raises(ValueError, match="hx"):
        m(_x(5, 2, 4), (_x(2, 2, 3),))
    with pytest.raises(ValueError, match="hx"):
        GRU(4, 3, dtype=D)(_x(5, 2, 4), _x(1, 2, 4))
    with pytest.raises(ValueError, match="hx"):
        GRU(4, 3, dtype=D)(_x(5, 2, 4), torch.zeros(1, 2, 3))  # float32 state for float64 input
    with pytest.raises(TypeError, match="input"):
        GRU(4, 3)(torch.zeros(5, 2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="dropout"):
        LSTM(4, 3, dropout=1.5)
    with pytest.raises(ValueError, match="dropout"):
        LSTM(4, 3, dropout=-0.1)
    with pytest.raises(ValueError, match="proj_size"):
        LSTM(4, 3, proj_size=3)
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(4, 3, nonlinearity="gelu")
    with pytest.raises(ValueError, match="num_layers"):
        RNN(4, 3, num_layers=0)
