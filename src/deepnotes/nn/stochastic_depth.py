"""Stochastic depth: drop a whole residual branch per sample (Huang et al. 2016).

A block computes ``x + f(x)``; stochastic depth replaces ``f(x)`` by ``f(x) · b / (1 - p)`` with
``b ~ Bernoulli(1 - p)`` drawn once per sample (``mode="row"``) or once per batch
(``mode="batch"``), so in expectation the network is the full one and evaluation uses every block.
Same arguments and the same draw order as ``torchvision.ops.stochastic_depth``: with the same seed
the two are bit-identical.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_float, check_tensor


def stochastic_depth(
    input: torch.Tensor, p: float, mode: str, training: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero whole rows (or the whole batch) of ``input (N, *)`` with probability ``p``.

    Parameters
    ----------
    input : Tensor[N, *]
        The residual branch's output.
    p : float in [0, 1]
        Drop probability; ``p = 1`` always drops (returns zeros, nothing to rescale).
    mode : {"row", "batch"}
    training : bool
        Identity when ``False`` or ``p == 0``.
    generator : torch.Generator, optional

    Returns
    -------
    Tensor[N, *]
    """
    p = check_float("p", p, min=0.0, max=1.0)
    mode = check_choice("mode", mode, ("batch", "row"))
    check_tensor("input", input, floating=True)
    if not training or p == 0.0:
        return input
    survival = 1.0 - p
    size = [input.shape[0]] + [1] * (input.dim() - 1) if mode == "row" else [1] * input.dim()
    noise = torch.empty(size, dtype=input.dtype, device=input.device).bernoulli_(survival, generator=generator)
    if survival > 0.0:
        noise.div_(survival)
    return input * noise


class StochasticDepth(nn.Module):
    """Module form of :func:`stochastic_depth` (``torchvision.ops.StochasticDepth``)."""

    def __init__(self, p: float, mode: str, generator: torch.Generator | None = None):
        super().__init__()
        self.p = check_float("p", p, min=0.0, max=1.0)
        self.mode = check_choice("mode", mode, ("batch", "row"))
        self.generator = generator

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(input, self.p, self.mode, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
