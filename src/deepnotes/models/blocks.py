"""Small building blocks shared by the Inception-family models."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Module):
    """Conv (no bias: the BN shift replaces it) → BatchNorm (eps 1e-3, as in the Inception papers) → ReLU.

    Attribute names ``conv`` and ``bn`` match torchvision's ``BasicConv2d``.
    """

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def init_inception_weights(model: nn.Module) -> None:
    """Normal weights kept within ±2σ (σ = 0.1 for convs, 0.01 for linear layers), BN at (1, 0).

    Draws beyond 2σ are folded back with ``fmod`` — the same support as a truncated normal at a
    fraction of the cost of ``trunc_normal_``'s inverse-erf sampling (seconds on large models).
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            std = 0.01 if isinstance(m, nn.Linear) else 0.1
            with torch.no_grad():
                m.weight.normal_().fmod_(2.0).mul_(std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
