"""Skip connections through time: an Elman RNN that also reads its state from ``skip`` steps back.

``h_t = act(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh + h_{t−d} W_skipᵀ)`` (NARX-style recurrence,
Lin, Horne, Tiňo & Giles, 1996). A gradient that must travel ``k`` steps back can take the skip
edges, crossing about ``k / d`` Jacobians instead of ``k``, so it shrinks (or grows) far less.
States before the sequence start are the initial state ``h_0``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_int, check_tensor, check_type


class SkipRNN(nn.Module):
    """Single-layer RNN with an extra recurrent edge from ``h_{t−skip}``.

    Parameters
    ----------
    input_size, hidden_size : F and H
    skip : d >= 1, the length of the skip edge (``d = 1`` doubles the ordinary edge)
    nonlinearity : ``"tanh"`` or ``"relu"``
    batch_first : input Tensor[N, T, F] instead of Tensor[T, N, F]

    ``forward(input, hx=None)``: ``hx`` Tensor[N, H] (default zeros); returns
    ``output`` Tensor[T, N, H] (or [N, T, H]) and ``h_T`` Tensor[N, H]. Parameters are those of
    ``torch.nn.RNNCell`` (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``) plus
    ``weight_skip`` Tensor[H, H], all ``U(−1/√H, 1/√H)`` like torch's.
    """

    def __init__(self, input_size: int, hidden_size: int, skip: int = 2, nonlinearity: str = "tanh",
                 batch_first: bool = False):
        super().__init__()
        f = self.input_size = check_int("input_size", input_size, min=1)
        h = self.hidden_size = check_int("hidden_size", hidden_size, min=1)
        self.skip = check_int("skip", skip, min=1)
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        self.batch_first = bool(check_type("batch_first", batch_first, bool))
        self.weight_ih = nn.Parameter(torch.empty(h, f))
        self.weight_hh = nn.Parameter(torch.empty(h, h))
        self.weight_skip = nn.Parameter(torch.empty(h, h))
        self.bias_ih = nn.Parameter(torch.empty(h))
        self.bias_hh = nn.Parameter(torch.empty(h))
        bound = 1.0 / math.sqrt(h)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None):
        check_tensor("input", input, ndim=3, floating=True)
        if input.shape[-1] != self.weight_ih.shape[1]:
            raise ValueError(f"input must have {self.weight_ih.shape[1]} features, got shape {tuple(input.shape)}")
        x = input.transpose(0, 1) if self.batch_first else input
        n = x.shape[1]
        if hx is None:
            hx = x.new_zeros(n, self.hidden_size)
        check_tensor("hx", hx, ndim=2)
        if tuple(hx.shape) != (n, self.hidden_size):
            raise ValueError(f"hx must have shape {(n, self.hidden_size)}, got {tuple(hx.shape)}")
        act = torch.tanh if self.nonlinearity == "tanh" else torch.relu
        xw = x @ self.weight_ih.t() + (self.bias_ih + self.bias_hh)  # all steps in one product
        history = [hx] * self.skip  # h_{t−d} … h_{t−1}; before the start everything is h_0
        for t in range(x.shape[0]):
            h = act(xw[t] + history[-1] @ self.weight_hh.t() + history[-self.skip] @ self.weight_skip.t())
            history.append(h)
        out = torch.stack(history[self.skip :])
        return (out.transpose(0, 1) if self.batch_first else out), out[-1]
