"""One time step of the vanilla RNN, LSTM and GRU, written as the equations.

Each function takes the input ``x``, the state and the weights exactly as torch stores them (gates
stacked along the first dimension, in torch's order), so a cell built here and a
``torch.nn.*Cell`` loaded with the same ``state_dict`` compute the same numbers.

Gate order (torch's): LSTM ``i, f, g, o``; GRU ``r, z, n``.

Example
-------
>>> import torch
>>> from deepnotes.sequence.cells import LSTMCell
>>> cell = LSTMCell(3, 4)
>>> h, c = cell(torch.randn(2, 3))
>>> tuple(h.shape), tuple(c.shape)
((2, 4), (2, 4))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_int, check_tensor, check_type

# --------------------------------------------------------------------------- functional core


def rnn_cell(
    x: torch.Tensor,
    h: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: torch.Tensor | None = None,
    b_hh: torch.Tensor | None = None,
    nonlinearity: str = "tanh",
) -> torch.Tensor:
    """Elman step ``h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)``.

    Parameters
    ----------
    x : Tensor[N, F]
    h : Tensor[N, H]
    w_ih : Tensor[H, F];  w_hh : Tensor[H, H];  b_ih, b_hh : Tensor[H] or None
    nonlinearity : ``"tanh"`` or ``"relu"``

    Returns
    -------
    Tensor[N, H]
    """
    pre = _affine(x, w_ih, b_ih) + _affine(h, w_hh, b_hh)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_cell(
    x: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: torch.Tensor | None = None,
    b_hh: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM step (Hochreiter & Schmidhuber, with the forget gate of Gers et al.).

    ``[i, f, g, o] = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh``;
    ``c' = σ(f)·c + σ(i)·tanh(g)``;  ``h' = σ(o)·tanh(c')``.

    Parameters
    ----------
    x : Tensor[N, F]
    state : (h Tensor[N, H], c Tensor[N, H])
    w_ih : Tensor[4H, F];  w_hh : Tensor[4H, H];  b_ih, b_hh : Tensor[4H] or None

    Returns
    -------
    (h' Tensor[N, H], c' Tensor[N, H])
    """
    h, c = state
    return lstm_pointwise(_affine(x, w_ih, b_ih) + _affine(h, w_hh, b_hh), c)


def lstm_pointwise(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The element-wise half of an LSTM step, from the summed pre-activations ``gates[N, 4H]``."""
    # one sigmoid over all four blocks (g's is unused) costs less than three separate kernels
    i, f, _, o = torch.sigmoid(gates).chunk(4, dim=-1)
    g = torch.tanh(gates.chunk(4, dim=-1)[2])
    c_new = f * c + i * g  # the additive cell path: the gradient reaches c through f only
    h_new = o * torch.tanh(c_new)
    return h_new, c_new


def gru_cell(
    x: torch.Tensor,
    h: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: torch.Tensor | None = None,
    b_hh: torch.Tensor | None = None,
) -> torch.Tensor:
    """GRU step (Cho et al.), in torch's variant where ``r`` multiplies ``W_hn h + b_hn``.

    ``r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)``, ``z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)``,
    ``n = tanh(x W_inᵀ + b_in + r·(h W_hnᵀ + b_hn))``, ``h' = (1 − z)·n + z·h``.

    Parameters
    ----------
    x : Tensor[N, F];  h : Tensor[N, H]
    w_ih : Tensor[3H, F];  w_hh : Tensor[3H, H];  b_ih, b_hh : Tensor[3H] or None

    Returns
    -------
    Tensor[N, H]
    """
    return gru_pointwise(_affine(x, w_ih, b_ih), _affine(h, w_hh, b_hh), h)


def gru_pointwise(gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The element-wise half of a GRU step from ``gi = x W_ihᵀ + b_ih`` and ``gh = h W_hhᵀ + b_hh``."""
    hid = h.shape[-1]
    # r and z are adjacent blocks: one add and one sigmoid for both
    r, z = torch.sigmoid(gi[..., : 2 * hid] + gh[..., : 2 * hid]).chunk(2, dim=-1)
    n = torch.tanh(torch.addcmul(gi[..., 2 * hid :], r, gh[..., 2 * hid :]))
    return n + z * (h - n)  # = (1 − z)·n + z·h with one multiply fewer


def _affine(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    if b is None:
        return x @ w.t()
    if x.dim() == 2:
        return torch.addmm(b, x, w.t())
    return x @ w.t() + b


# --------------------------------------------------------------------------- modules

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class _CellBase(nn.Module):
    """Parameters ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` named and shaped as torch's."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, gates: int, device=None, dtype=None):
        super().__init__()
        self.input_size = check_int("input_size", input_size, min=1)
        self.hidden_size = check_int("hidden_size", hidden_size, min=1)
        self.bias = bool(check_type("bias", bias, bool))
        kw = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(gates * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gates * hidden_size, **kw))
            self.bias_hh = nn.Parameter(torch.empty(gates * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch's default: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _check(self, x: torch.Tensor, hx: torch.Tensor | None, name: str = "hx"):
        """Validate ``x`` (Tensor[N, F] or unbatched [F]); returns (x 2-D, was_batched)."""
        check_tensor("input", x, ndim=(1, 2), floating=True)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input must have {self.input_size} features, got shape {tuple(x.shape)}")
        batched = x.dim() == 2
        x2 = x if batched else x.unsqueeze(0)
        if hx is not None:
            check_tensor(name, hx, ndim=x.dim())
            want = (x2.shape[0], self.hidden_size) if batched else (self.hidden_size,)
            if tuple(hx.shape) != want:
                raise ValueError(f"{name} must have shape {want}, got {tuple(hx.shape)}")
        return x2, batched

    def _zeros(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class RNNCell(_CellBase):
    """Elman RNN cell; arguments, parameter names and defaults as ``torch.nn.RNNCell``.

    Input Tensor[N, F] (or [F]), ``hx`` Tensor[N, H] (default zeros); returns Tensor[N, H].
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        x, batched = self._check(input, hx)
        h = self._zeros(x) if hx is None else (hx if batched else hx.unsqueeze(0))
        out = rnn_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity)
        return out if batched else out.squeeze(0)


class LSTMCell(_CellBase):
    """LSTM cell; arguments, parameter names and defaults as ``torch.nn.LSTMCell``.

    Input Tensor[N, F] (or [F]), ``hx = (h, c)`` each Tensor[N, H] (default zeros);
    returns ``(h', c')``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None):
        if hx is not None:
            check_type("hx", hx, (tuple, list))
            if len(hx) != 2:
                raise ValueError(f"hx must be a pair (h, c), got {len(hx)} tensors")
        x, batched = self._check(input, None if hx is None else hx[0], "hx[0]")
        if hx is None:
            h = c = self._zeros(x)
        else:
            self._check(input, hx[1], "hx[1]")
            h, c = (hx[0], hx[1]) if batched else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        h, c = lstm_cell(x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    """GRU cell; arguments, parameter names and defaults as ``torch.nn.GRUCell``.

    Input Tensor[N, F] (or [F]), ``hx`` Tensor[N, H] (default zeros); returns Tensor[N, H].
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        x, batched = self._check(input, hx)
        h = self._zeros(x) if hx is None else (hx if batched else hx.unsqueeze(0))
        out = gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out if batched else out.squeeze(0)
