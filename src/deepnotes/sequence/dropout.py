"""Dropout for recurrent networks: variational (locked) dropout and zoneout.

Ordinary dropout draws a new mask at every time step; applied to the recurrent connection it
erases the memory a little more at each step. The two remedies here:

* **variational dropout** (Gal & Ghahramani, 2016): one mask per *sequence*, shared by every time
  step, applied to the feed-forward connections (the input of a layer, between layers, before the
  output head). Kept units are scaled by ``1/(1 − p)`` so evaluation is the identity.
* **zoneout** (Krueger et al., 2017): instead of zeroing a unit, keep its *previous* value:
  ``h_t = m·h_{t−1} + (1 − m)·h̃_t`` with ``m ~ Bernoulli(p)`` per unit and step. At evaluation the
  mask is replaced by its expectation, ``h_t = p·h_{t−1} + (1 − p)·h̃_t``, as in the paper.

``p = 1``: variational dropout returns zeros (torch's ``dropout`` convention); zoneout keeps the
initial state forever. ``p = 0``: both are the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_probability, check_tensor, check_type
from deepnotes.sequence.cells import GRUCell, LSTMCell, RNNCell


def variational_dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    batch_first: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Dropout with one mask per sequence, shared across time.

    Parameters
    ----------
    x : Tensor[T, N, F] (``batch_first``: Tensor[N, T, F])
    p : probability of dropping a unit, in [0, 1]
    training : when False, returns ``x`` unchanged
    generator : optional ``torch.Generator`` for the mask

    Returns
    -------
    Tensor of the shape of ``x``: ``x · m / (1 − p)`` with ``m`` Tensor[1, N, F] (``[N, 1, F]``),
    ``m ~ Bernoulli(1 − p)``; zeros when ``p = 1``.
    """
    check_tensor("x", x, ndim=3, floating=True)
    p = check_probability("p", p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return torch.zeros_like(x)
    shape = (x.shape[0], 1, x.shape[2]) if batch_first else (1, x.shape[1], x.shape[2])
    keep = torch.rand(shape, generator=generator, dtype=x.dtype, device=x.device) >= p
    return x * keep.to(x.dtype) / (1.0 - p)


class VariationalDropout(nn.Module):
    """Module form of :func:`variational_dropout` (a.k.a. locked dropout); identity in ``eval()``."""

    def __init__(self, p: float = 0.5, batch_first: bool = False):
        super().__init__()
        self.p = check_probability("p", p)
        self.batch_first = bool(check_type("batch_first", batch_first, bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return variational_dropout(x, self.p, self.training, self.batch_first)

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_first={self.batch_first}"


def zoneout(
    prev: torch.Tensor,
    new: torch.Tensor,
    p: float,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mix the previous and the new state: keep each unit's previous value with probability ``p``.

    Parameters
    ----------
    prev, new : Tensor[N, H] (same shape)
    p : zoneout probability in [0, 1]
    training : False uses the expectation ``p·prev + (1 − p)·new``

    Returns
    -------
    Tensor[N, H]
    """
    check_tensor("prev", prev, floating=True)
    check_tensor("new", new, floating=True)
    if prev.shape != new.shape:
        raise ValueError(f"prev and new must have the same shape, got {tuple(prev.shape)} and {tuple(new.shape)}")
    p = check_probability("p", p)
    if p == 0.0:
        return new
    if p == 1.0:
        return prev
    if not training:
        return torch.lerp(new, prev, p)
    keep_prev = torch.rand(new.shape, generator=generator, dtype=new.dtype, device=new.device) < p
    return torch.where(keep_prev, prev, new)


class ZoneoutRNN(nn.Module):
    """A single-layer recurrent network whose cell is wrapped in zoneout, unrolled over time.

    Parameters
    ----------
    cell : :class:`~deepnotes.sequence.RNNCell`, :class:`~deepnotes.sequence.GRUCell` or
        :class:`~deepnotes.sequence.LSTMCell`
    zoneout_h : zoneout probability of the hidden state
    zoneout_c : zoneout probability of the LSTM cell state (ignored by other cells)
    batch_first : input Tensor[N, T, F] instead of Tensor[T, N, F]

    ``forward(input, hx=None)`` returns ``output`` Tensor[T, N, H] (or [N, T, H]) and the final state
    (``(h, c)`` for an LSTM cell). With both probabilities 0 this is exactly the plain unrolled cell.
    """

    def __init__(self, cell: nn.Module, zoneout_h: float = 0.1, zoneout_c: float = 0.0, batch_first: bool = False):
        super().__init__()
        check_type("cell", cell, (RNNCell, GRUCell, LSTMCell))
        self.cell = cell
        self.zoneout_h = check_probability("zoneout_h", zoneout_h)
        self.zoneout_c = check_probability("zoneout_c", zoneout_c)
        self.batch_first = bool(check_type("batch_first", batch_first, bool))

    def forward(self, input: torch.Tensor, hx=None):
        check_tensor("input", input, ndim=3, floating=True)
        x = input.transpose(0, 1) if self.batch_first else input
        lstm = isinstance(self.cell, LSTMCell)
        n, hid = x.shape[1], self.cell.hidden_size
        if hx is None:
            zeros = x.new_zeros(n, hid)
            hx = (zeros, zeros) if lstm else zeros
        outs = []
        for t in range(x.shape[0]):
            new = self.cell(x[t], hx)
            if lstm:
                hx = (zoneout(hx[0], new[0], self.zoneout_h, self.training),
                      zoneout(hx[1], new[1], self.zoneout_c, self.training))
                outs.append(hx[0])
            else:
                hx = zoneout(hx, new, self.zoneout_h, self.training)
                outs.append(hx)
        out = torch.stack(outs)
        return (out.transpose(0, 1) if self.batch_first else out), hx
