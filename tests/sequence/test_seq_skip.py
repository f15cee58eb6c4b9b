"""SkipRNN: reduces to torch.nn.RNN when the skip edge is zero or of length 1; gradcheck; slower decay."""

import pytest
import torch

from deepnotes.sequence import SkipRNN
from tests._reference import assert_forward_backward

D = torch.float64


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def _torch_rnn(m, extra_hh):
    ref = torch.nn.RNN(m.weight_ih.shape[1], m.hidden_size, nonlinearity=m.nonlinearity, dtype=D)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(m.weight_ih)
        ref.weight_hh_l0.copy_(m.weight_hh + extra_hh)
        ref.bias_ih_l0.copy_(m.bias_ih)
        ref.bias_hh_l0.copy_(m.bias_hh)
    return ref


@pytest.mark.parametrize("nl", ["tanh", "relu"])
def test_zero_skip_weight_is_torch_rnn(nl):
    torch.manual_seed(0)
    m = SkipRNN(3, 5, skip=4, nonlinearity=nl).double()
    with torch.no_grad():
        m.weight_skip.zero_()
    ref = _torch_rnn(m, 0.0)
    assert_forward_backward(lambda x, h: m(x, h)[0], lambda x, h: ref(x, h.unsqueeze(0))[0], _x(9, 2, 3), _x(2, 5, seed=1))


def test_skip_one_is_torch_rnn_with_summed_weights():
    torch.manual_seed(1)
    m = SkipRNN(3, 5, skip=1).double()
    ref = _torch_rnn(m, m.weight_skip.detach())
    assert_forward_backward(lambda x: m(x)[0], lambda x: ref(x)[0], _x(9, 2, 3))


def test_gradcheck_and_before_start_is_h0():
    torch.manual_seed(2)
    m = SkipRNN(2, 3, skip=3).double()
    x, h0 = _x(7, 2, 2).requires_grad_(True), _x(2, 3, seed=1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, h: m(x, h)[0], (x, h0))
    # step 0 and step 2 both read h_{t-3} from before the start, i.e. h_0
    out, _ = m(x, h0)
    step0 = torch.tanh(x[0] @ m.weight_ih.t() + m.bias_ih + m.bias_hh + h0 @ (m.weight_hh + m.weight_skip).t())
    torch.testing.assert_close(out[0], step0, rtol=1e-7, atol=1e-7)


def test_skip_edges_slow_the_gradient_decay():
    torch.manual_seed(3)
    x = _x(60, 16, 4).requires_grad_(True)
    norms = {}
    for d in (1, 10):
        torch.manual_seed(3)
        m = SkipRNN(4, 32, skip=d).double()
        (g,) = torch.autograd.grad(m(x)[0][-1].sum(), x)
        norms[d] = float(g[0].norm())  # the first step, 59 steps back
    assert norms[10] > 1e3 * norms[1]


def test_skip_errors():
    with pytest.raises(ValueError, match="skip"):
        SkipRNN(2, 3, skip=0)
    m = SkipRNN(2, 3)
    with pytest.raises(ValueError, match="input"):
        m(torch.zeros(4, 2, 5))
    with pytest.raises(ValueError, match="input"):
        m(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="hx"):
        m(torch.zeros(4, 2, 2), torch.zeros(3, 3))
