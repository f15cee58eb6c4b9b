"""Positional encodings: attention is permutation-equivariant, so order must be added to the tokens.

- **Sinusoidal** (fixed): ``PE[pos, 2i] = sin(pos / 10000^(2i/d))``, ``PE[pos, 2i+1] = cos(pos / 10000^(2i/d))``.
  Each pair of channels is a rotation at its own frequency, so ``PE[pos + k]`` is a fixed linear map
  of ``PE[pos]`` for every offset ``k``.
- **Learned**: one free vector per position (ViT's ``pos_embedding``), initialized ``N(0, 0.02²)``.

Both modules add the encoding to ``x (Tensor[N, L, d])`` (``batch_first``) or ``(L, N, d)``.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor


def sinusoidal_encoding(length: int, d_model: int, base: float = 10000.0, dtype=torch.float32) -> torch.Tensor:
    """The ``(length, d_model)`` table of sine/cosine encodings (odd ``d_model``: the last cosine is dropped).

    Example
    -------
    >>> pe = sinusoidal_encoding(3, 4)
    >>> pe[0]
    tensor([0., 1., 0., 1.])
    """
    length = check_int("length", length, min=0)
    d_model = check_int("d_model", d_model, min=1)
    base = check_float("base", base, min=0.0, min_inclusive=False)
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = pos / base ** (two_i / d_model)  # pos / 10000^(2i/d)
    pe = torch.empty(length, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.to(dtype)


def _check_x(x: torch.Tensor, d_model: int, max_len: int, batch_first: bool) -> int:
    check_tensor("x", x, ndim=3, floating=True)
    if x.shape[-1] != d_model:
        raise ValueError(f"x must have d_model = {d_model} features in its last dimension, got shape {tuple(x.shape)}")
    length = x.shape[1] if batch_first else x.shape[0]
    if length > max_len:
        raise ValueError(f"x has {length} positions, more than max_len = {max_len}")
    return length


class SinusoidalPositionalEncoding(nn.Module):
    """``x + PE[:L]`` with the fixed table of :func:`sinusoidal_encoding` (a non-persistent buffer)."""

    def __init__(self, d_model: int, max_len: int = 5000, base: float = 10000.0, batch_first: bool = True):
        super().__init__()
        self.d_model = check_int("d_model", d_model, min=1)
        self.max_len = check_int("max_len", max_len, min=1)
        self.batch_first = bool(batch_first)
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model, base), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = _check_x(x, self.d_model, self.max_len, self.batch_first)
        pe = self.pe[:length].to(x.dtype)
        return x + (pe if self.batch_first else pe.unsqueeze(1))


class LearnedPositionalEncoding(nn.Module):
    """``x + P[:L]`` with a learned table ``P (Tensor[1, max_len, d_model])`` (``pos_embedding``)."""

    def __init__(self, max_len: int, d_model: int, std: float = 0.02, batch_first: bool = True):
        super().__init__()
        self.d_model = check_int("d_model", d_model, min=1)
        self.max_len = check_int("max_len", max_len, min=1)
        self.batch_first = bool(batch_first)
        # N(0, 0.02²) as BERT and torchvision's ViT
        self.pos_embedding = nn.Parameter(torch.empty(1, max_len, d_model).normal_(std=check_float("std", std, min=0.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = _check_x(x, self.d_model, self.max_len, self.batch_first)
        p = self.pos_embedding[:, :length]
        return x + (p if self.batch_first else p.transpose(0, 1))
