"""Multi-layer ``RNN``, ``LSTM`` and ``GRU`` unrolled over time in Python, one step at a time.

The constructor arguments, parameter names (``weight_ih_l0``, ``weight_hh_l0_reverse``, ...),
shapes and initial values' distribution are those of ``torch.nn.RNN/LSTM/GRU``, so
``ours.load_state_dict(theirs.state_dict())`` works and both then compute the same outputs, final
states and gradients. The same weights are used at every time step (weight sharing over time);
backpropagation through time is autograd running backwards through the unrolled loop.

Speed: the input-to-hidden product does not depend on the previous step, so it is computed for
all time steps in one matrix product before the loop; only ``h W_hhᵀ`` and the element-wise gate
maths stay inside the loop. RNN, LSTM (without projection) and GRU layers backpropagate through
time with the hand-written recurrence of :mod:`deepnotes.sequence.explicit_bptt`; only the
projected LSTM lets autograd run backwards through the loop. Packed (variable-length) sequences are not supported: pad and read
the outputs at each sequence's own last step instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_choice, check_float, check_int, check_tensor, check_type
from deepnotes.sequence.cells import GATES, lstm_pointwise
from deepnotes.sequence.explicit_bptt import gru_layer, lstm_layer, rnn_layer

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _project(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``x W_ᵀ + b`` for every time step in one matrix product: Tensor[T, N, F] → Tensor[T, N, G·H]."""
    if b is None:
        return x @ w.t()
    return torch.addmm(b, x.flatten(0, 1), w.t()).view(x.shape[0], x.shape[1], -1)


class _RNNBase(nn.Module):
    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.mode = mode
        self.input_size = check_int("input_size", input_size, min=1)
        self.hidden_size = check_int("hidden_size", hidden_size, min=1)
        self.num_layers = check_int("num_layers", num_layers, min=1)
        self.bias = bool(check_type("bias", bias, bool))
        self.batch_first = bool(check_type("batch_first", batch_first, bool))
        self.dropout = check_float("dropout", dropout, min=0.0, max=1.0)
        self.bidirectional = bool(check_type("bidirectional", bidirectional, bool))
        self.proj_size = check_int("proj_size", proj_size, min=0)
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size is only supported by LSTM")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size must be smaller than hidden_size ({hidden_size}), got {proj_size}")
        gates = GATES[mode]
        out = proj_size or hidden_size
        kw = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out * self.num_directions
            for sfx in self._suffixes():
                name = f"l{layer}{sfx}"
                self.register_parameter(f"weight_ih_{name}", nn.Parameter(torch.empty(gates * hidden_size, layer_in, **kw)))
                self.register_parameter(f"weight_hh_{name}", nn.Parameter(torch.empty(gates * hidden_size, out, **kw)))
                if bias:
                    self.register_parameter(f"bias_ih_{name}", nn.Parameter(torch.empty(gates * hidden_size, **kw)))
                    self.register_parameter(f"bias_hh_{name}", nn.Parameter(torch.empty(gates * hidden_size, **kw)))
                if proj_size:
                    self.register_parameter(f"weight_hr_{name}", nn.Parameter(torch.empty(proj_size, hidden_size, **kw)))
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def reset_parameters(self) -> None:
        # torch's default: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _weights(self, layer: int, sfx: str):
        name = f"l{layer}{sfx}"
        get = lambda k: getattr(self, f"{k}_{name}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")

    # ------------------------------------------------------------------ input checking
    def _check_input(self, input: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Returns the input as Tensor[T, N, F] and whether it was batched."""
        check_tensor("input", input, ndim=(2, 3), floating=True)
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input must have {self.input_size} features (last dim), got shape {tuple(input.shape)}")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[0] == 0:
            raise ValueError("input must have at least one time step")
        return x, batched

    def _check_state(self, name: str, h: torch.Tensor, size: int, n: int, batched: bool, ref: torch.Tensor):
        check_tensor(name, h, ndim=3 if batched else 2, floating=True)
        rows = self.num_layers * self.num_directions
        want = (rows, n, size) if batched else (rows, size)
        if tuple(h.shape) != want:
            raise ValueError(f"{name} must have shape {want}, got {tuple(h.shape)}")
        if h.dtype != ref.dtype:
            raise ValueError(f"{name} must have dtype {ref.dtype} like input, got {h.dtype}")
        return h if batched else h.unsqueeze(1)

    # ------------------------------------------------------------------ forward
    def forward(self, input: torch.Tensor, hx: State | None = None):
        """Run the network over a sequence.

        Parameters
        ----------
        input : Tensor[T, N, F] (``batch_first``: Tensor[N, T, F]), or unbatched Tensor[T, F]
        hx : initial state, Tensor[L·D, N, H_out] (LSTM: a pair ``(h_0, c_0)``, ``c_0`` Tensor[L·D, N, H]);
            unbatched without the N axis; default zeros. ``D`` is 2 if bidirectional, ``H_out`` is
            ``proj_size`` if set else ``hidden_size``.

        Returns
        -------
        output : Tensor[T, N, D·H_out] (``batch_first``: Tensor[N, T, D·H_out]) — last layer, every step
        h_n : Tensor[L·D, N, H_out] (LSTM: ``(h_n, c_n)``) — every layer and direction, last step
        """
        x, batched = self._check_input(input)
        n = x.shape[1]
        out_size = self.proj_size or self.hidden_size
        rows = self.num_layers * self.num_directions
        lstm = self.mode == "LSTM"
        if hx is None:
            h0 = x.new_zeros(rows, n, out_size)
            c0 = x.new_zeros(rows, n, self.hidden_size) if lstm else None
        elif lstm:
            check_type("hx", hx, (tuple, list))
            if len(hx) != 2:
                raise ValueError(f"hx must be a pair (h_0, c_0) for LSTM, got {len(hx)} tensors")
            h0 = self._check_state("hx[0]", hx[0], out_size, n, batched, x)
            c0 = self._check_state("hx[1]", hx[1], self.hidden_size, n, batched, x)
        else:
            h0, c0 = self._check_state("hx", hx, out_size, n, batched, x), None

        h_last, c_last = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(self._suffixes()):
                row = layer * self.num_directions + d
                state = (h0[row], c0[row]) if lstm else h0[row]
                y, state = self._run_direction(layer_in, state, self._weights(layer, sfx), reverse=d == 1)
                outs.append(y)
                if lstm:
                    h_last.append(state[0])
                    c_last.append(state[1])
                else:
                    h_last.append(state)
            layer_in = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)  # between layers only, as torch

        output = layer_in
        h_n = torch.stack(h_last)
        c_n = torch.stack(c_last) if lstm else None
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, ((h_n, c_n) if lstm else h_n)

    def _run_direction(self, x: torch.Tensor, state: State, weights, reverse: bool):
        """Unroll one layer in one direction over ``x`` Tensor[T, N, F]; returns (Tensor[T, N, H_out], state)."""
        w_ih, w_hh, b_ih, b_hh, w_hr = weights
        if reverse:  # the reverse direction is the forward recurrence on the time-reversed sequence
            y, state = self._run_direction(x.flip(0), state, weights, reverse=False)
            return y.flip(0), state
        if self.mode == "GRU":
            # b_hh stays inside the loop: r multiplies (h W_hnᵀ + b_hn), so it cannot be folded into b_ih
            gi = _project(x, w_ih, b_ih)
            y, h = gru_layer(gi, state, w_hh, b_hh)
            return y, h
        # RNN and LSTM: both biases add before any nonlinearity, so fold them into one projection
        xw = _project(x, w_ih, None if b_ih is None else b_ih + b_hh)
        if self.mode == "LSTM" and w_hr is None:
            y, h, c = lstm_layer(xw, state[0], state[1], w_hh)
            return y, (h, c)
        if self.mode != "LSTM":
            return rnn_layer(xw, state, w_hh, "tanh" if self.mode == "RNN_TANH" else "relu")
        # LSTM with a projection: the plain loop, autograd does the BPTT
        w_hh_t = w_hh.t()
        outs: list[torch.Tensor] = []
        h, c = state
        for t in range(x.shape[0]):
            h, c = lstm_pointwise(torch.addmm(xw[t], h, w_hh_t), c)
            h = h @ w_hr.t()
            outs.append(h)
        return torch.stack(outs), (h, c)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        for k, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                           ("bidirectional", False)):
            if getattr(self, k) != default:
                s += f", {k}={getattr(self, k)}"
        return s


class RNN(_RNNBase):
    """Multi-layer Elman RNN ``h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)``.

    Same arguments and defaults as ``torch.nn.RNN``: ``input_size, hidden_size, num_layers=1,
    nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0, bidirectional=False``.
    See :meth:`_RNNBase.forward` for shapes.

    Example
    -------
    >>> import torch
    >>> rnn = RNN(3, 5, num_layers=2, batch_first=True)
    >>> out, h_n = rnn(torch.randn(4, 7, 3))
    >>> tuple(out.shape), tuple(h_n.shape)
    ((4, 7, 5), (2, 4, 5))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None):
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, 0, device, dtype)


class LSTM(_RNNBase):
    """Multi-layer LSTM; same arguments and defaults as ``torch.nn.LSTM`` (including ``proj_size``).

    Returns ``output, (h_n, c_n)``. See :meth:`_RNNBase.forward` for shapes.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)


class GRU(_RNNBase):
    """Multi-layer GRU; same arguments and defaults as ``torch.nn.GRU``. Returns ``output, h_n``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)
