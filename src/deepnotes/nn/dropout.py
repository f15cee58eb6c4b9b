"""Dropout written out: inverted dropout, channel dropout and DropConnect.

Inverted dropout zeroes each unit with probability ``p`` at training time and scales the survivors
by ``1 / (1 - p)``, so the expected activation is unchanged and evaluation needs no rescaling.
The masks are drawn as ``empty(...).bernoulli_(1 - p)`` from ``generator`` (the global torch
generator when ``None``), which is exactly how torch draws them: with the same seed our layers and
``torch.nn.Dropout`` / ``Dropout2d`` give bit-identical outputs.

``p`` must lie in ``[0, 1)``: at ``p = 1`` every unit is dropped and the ``1 / (1 - p)`` scale is
undefined (torch returns zeros there; we refuse it as a configuration error).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor, check_type


def _check_p(p: float) -> float:
    return check_float("p", p, min=0.0, max=1.0, max_inclusive=False)


def _keep_mask(shape, p: float, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Bernoulli(1 - p) mask already divided by ``1 - p`` (the inverted-dropout scale)."""
    noise = torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(1.0 - p, generator=generator)
    return noise.div_(1.0 - p)


def dropout(
    input: torch.Tensor, p: float = 0.5, training: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Inverted dropout, element-wise.

    Parameters
    ----------
    input : Tensor[*]
        Any shape, floating point.
    p : float in [0, 1)
        Probability of zeroing an element.
    training : bool
        Identity when ``False`` or when ``p == 0``.
    generator : torch.Generator, optional
        Source of the mask (the global generator when ``None``).

    Returns
    -------
    Tensor[*]
        ``input * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` i.i.d.

    Examples
    --------
    >>> import torch
    >>> dropout(torch.ones(3), p=0.0).tolist()
    [1.0, 1.0, 1.0]
    """
    p = _check_p(p)
    check_tensor("input", input, floating=True)
    if not training or p == 0.0:
        return input
    return input * _keep_mask(input.shape, p, input, generator)


def dropout2d(
    input: torch.Tensor, p: float = 0.5, training: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Channel dropout: zero whole feature maps of ``input (N, C, H, W)`` or ``(C, H, W)``.

    Neighbouring pixels of a conv map are strongly correlated, so dropping single pixels barely
    regularizes; dropping whole channels does. One Bernoulli draw per ``(n, c)``.
    """
    p = _check_p(p)
    check_tensor("input", input, ndim=(3, 4), floating=True)
    if not training or p == 0.0:
        return input
    # unbatched (C, H, W): one draw per channel, like torch
    shape = (*input.shape[:-2], 1, 1)
    return input * _keep_mask(shape, p, input, generator)


class Dropout(nn.Module):
    """Inverted dropout (``torch.nn.Dropout``'s arguments; ``generator`` is ours)."""

    def __init__(self, p: float = 0.5, inplace: bool = False, generator: torch.Generator | None = None):
        super().__init__()
        self.p = _check_p(p)
        self.inplace = check_type("inplace", inplace, bool)  # accepted for signature parity
        self.generator = generator

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return dropout(input, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Channel dropout for conv maps (``torch.nn.Dropout2d``)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return dropout2d(input, self.p, self.training, self.generator)


class DropConnectLinear(nn.Linear):
    """A linear layer whose *weights* are dropped (DropConnect, Wan et al. 2013).

    At training time one mask ``M ~ Bernoulli(1 - p)`` of the weight's shape ``(out, in)`` is drawn
    per forward pass and ``y = x (W ⊙ M)ᵀ / (1 - p) + b``; at evaluation ``y = x Wᵀ + b`` (the
    inverted scaling keeps the expectation of the pre-activation equal). The bias is not dropped.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    p : float in [0, 1)
    generator : torch.Generator, optional
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        p: float = 0.5,
        generator: torch.Generator | None = None,
        device=None,
        dtype=None,
    ):
        check_int("in_features", in_features, min=1)
        check_int("out_features", out_features, min=1)
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.p = _check_p(p)
        self.generator = generator

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if self.training and self.p > 0.0:
            weight = weight * _keep_mask(weight.shape, self.p, weight, self.generator)
        return F.linear(input, weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"
