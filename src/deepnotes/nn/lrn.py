"""Local response normalization (AlexNet): each activation divided by the energy of its neighbours
across channels.

``b_c = a_c / (k + α/n · Σ_{c' ∈ window(c)} a_{c'}²)^β`` with a window of ``n = size`` channels
centred on ``c`` (``size // 2`` before, ``(size − 1) // 2`` after, zeros beyond the edges) —
the same convention as ``torch.nn.LocalResponseNorm``, which divides α by ``size``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor


def local_response_norm(
    input: torch.Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> torch.Tensor:
    """Local response normalization over channels.

    Parameters
    ----------
    input : Tensor[N, C, *]
        At least 3 dimensions; channels are dimension 1.
    size : int
        Number of neighbouring channels in the window (AlexNet: 5).
    alpha, beta, k : float
        AlexNet used ``k=2, α=1e-4, β=0.75``; defaults follow torch.

    Returns
    -------
    Tensor of the same shape as ``input``.
    """
    check_tensor("input", input, ndim=tuple(range(3, 9)), floating=True)
    size = check_int("size", size, min=1)
    alpha = check_float("alpha", alpha)
    beta = check_float("beta", beta)
    k = check_float("k", k)
    sq = (input * input).movedim(1, -1)  # channels last so F.pad pads them
    sq = F.pad(sq, (size // 2, (size - 1) // 2))
    energy = sq.unfold(-1, size, 1).sum(-1).movedim(-1, 1)  # Σ over each channel window
    return input / (k + alpha / size * energy).pow(beta)


class LocalResponseNorm(nn.Module):
    """Module form of :func:`local_response_norm` with ``torch.nn.LocalResponseNorm``'s signature."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = check_int("size", size, min=1)
        self.alpha, self.beta, self.k = check_float("alpha", alpha), check_float("beta", beta), check_float("k", k)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
