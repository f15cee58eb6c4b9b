"""Sequences as grids: a 2-D convolutional classifier over (tokens × embedding) and a TCN.

* :class:`TextCNN` (Kim, 2014): the sequence is an image of height ``T`` (tokens) and width ``E``
  (embedding); each filter spans ``h`` tokens and the *whole* embedding, so it slides along time
  only. ReLU, max over time, concatenation over filter heights, dropout, linear head.
* :class:`TCN` (Bai, Kolter & Koltun, 2018): causal 1-D convolutions (left padding
  ``(k − 1)·d`` so the output at ``t`` sees inputs ``≤ t`` only), dilation doubling per block,
  two convolutions per residual block. Receptive field: :func:`tcn_receptive_field`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_int, check_probability, check_tensor, check_type


def causal_conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, dilation: int = 1
) -> torch.Tensor:
    """Causal dilated 1-D convolution: ``y[t] = b + Σ_j W[:, :, j] · x[t − (k−1−j)·d]`` (zeros before 0).

    Parameters
    ----------
    x : Tensor[N, C_in, T];  weight : Tensor[C_out, C_in, k];  bias : Tensor[C_out] or None
    dilation : d >= 1

    Returns
    -------
    Tensor[N, C_out, T] — same length as the input; ``y[..., t]`` depends on ``x[..., :t+1]`` only.
    """
    check_tensor("x", x, ndim=3, floating=True)
    dilation = check_int("dilation", dilation, min=1)
    # pad on the left only: the past is zero, the future is never read
    return F.conv1d(F.pad(x, ((weight.shape[-1] - 1) * dilation, 0)), weight, bias, dilation=dilation)


class CausalConv1d(nn.Conv1d):
    """``nn.Conv1d`` (same parameters) computing :func:`causal_conv1d`; output length = input length."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return causal_conv1d(x, self.weight, self.bias, self.dilation[0])


def tcn_receptive_field(kernel_size: int, num_levels: int, convs_per_block: int = 2) -> int:
    """Number of input steps the last output of a TCN sees: ``1 + c·(k − 1)·(2^L − 1)``.

    Block ``i`` has dilation ``2^i`` and ``c`` causal convolutions, each adding ``(k − 1)·2^i`` steps
    of history; summing over ``i < L`` gives the formula.
    """
    k = check_int("kernel_size", kernel_size, min=1)
    levels = check_int("num_levels", num_levels, min=0)
    c = check_int("convs_per_block", convs_per_block, min=1)
    return 1 + c * (k - 1) * (2**levels - 1)


class TemporalBlock(nn.Module):
    """Two causal dilated convolutions with ReLU and dropout, plus a residual (1×1 conv if widths differ)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float = 0.0):
        super().__init__()
        self.conv1 = CausalConv1d(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = CausalConv1d(out_channels, out_channels, kernel_size, dilation)
        self.dropout = nn.Dropout(check_probability("dropout", dropout))
        self.downsample = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dropout(torch.relu(self.conv1(x)))
        y = self.dropout(torch.relu(self.conv2(y)))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + skip)


class TCN(nn.Module):
    """Temporal convolutional network: a stack of :class:`TemporalBlock` with dilations 1, 2, 4, ….

    Parameters
    ----------
    num_inputs : input channels F
    num_channels : widths of the blocks (one block per entry)
    kernel_size : k >= 1
    dropout : dropout inside each block

    ``forward(x)``: Tensor[N, F, T] → Tensor[N, num_channels[-1], T], causal in ``T``.
    """

    def __init__(self, num_inputs: int, num_channels, kernel_size: int = 2, dropout: float = 0.0):
        super().__init__()
        check_int("num_inputs", num_inputs, min=1)
        check_type("num_channels", num_channels, (list, tuple))
        if not num_channels:
            raise ValueError("num_channels must list at least one block width")
        widths = [check_int(f"num_channels[{i}]", c, min=1) for i, c in enumerate(num_channels)]
        self.kernel_size = check_int("kernel_size", kernel_size, min=1)
        blocks, prev = [], num_inputs
        for i, w in enumerate(widths):
            blocks.append(TemporalBlock(prev, w, kernel_size, 2**i, dropout))
            prev = w
        self.blocks = nn.Sequential(*blocks)

    @property
    def receptive_field(self) -> int:
        return tcn_receptive_field(self.kernel_size, len(self.blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=3, floating=True)
        return self.blocks(x)


class TextCNN(nn.Module):
    """2-D convolution over a (tokens × embedding) grid, max over time, linear head (Kim, 2014).

    Parameters
    ----------
    embed_dim : E, the width of the grid
    num_classes : output size
    kernel_heights : filter heights in tokens (each filter spans the whole embedding)
    num_filters : filters per height
    dropout : before the head
    vocab_size : if given, inputs are token ids Tensor[N, T] embedded by an ``nn.Embedding``

    ``forward(x)``: Tensor[N, T, E] (or ids Tensor[N, T]) → Tensor[N, num_classes]. ``T`` must be at
    least ``max(kernel_heights)``.
    """

    def __init__(self, embed_dim: int, num_classes: int, kernel_heights=(3, 4, 5), num_filters: int = 100,
                 dropout: float = 0.5, vocab_size: int | None = None):
        super().__init__()
        self.embed_dim = check_int("embed_dim", embed_dim, min=1)
        check_type("kernel_heights", kernel_heights, (list, tuple))
        if not kernel_heights:
            raise ValueError("kernel_heights must not be empty")
        self.kernel_heights = tuple(check_int(f"kernel_heights[{i}]", h, min=1) for i, h in enumerate(kernel_heights))
        nf = check_int("num_filters", num_filters, min=1)
        self.embedding = None if vocab_size is None else nn.Embedding(check_int("vocab_size", vocab_size, min=1),
                                                                      embed_dim)
        self.convs = nn.ModuleList(nn.Conv2d(1, nf, (h, embed_dim)) for h in self.kernel_heights)
        self.dropout = nn.Dropout(check_probability("dropout", dropout))
        self.fc = nn.Linear(nf * len(self.kernel_heights), check_int("num_classes", num_classes, min=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            check_tensor("x", x, ndim=2)
            x = self.embedding(x)
        check_tensor("x", x, ndim=3, floating=True)
        if x.shape[-1] != self.embed_dim:
            raise ValueError(f"x must have {self.embed_dim} features (last dim), got shape {tuple(x.shape)}")
        if x.shape[1] < max(self.kernel_heights):
            raise ValueError(f"x must have at least {max(self.kernel_heights)} time steps, got {x.shape[1]}")
        grid = x.unsqueeze(1)  # (N, 1, T, E): one-channel image
        # each map is (N, nf, T - h + 1, 1); max over time keeps the strongest n-gram match per filter
        pooled = [torch.relu(conv(grid)).squeeze(3).amax(dim=2) for conv in self.convs]
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))
