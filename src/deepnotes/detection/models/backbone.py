"""A small residual backbone shared by the detectors: a stem, then stages that halve the size.

Each stage is a stride-2 3×3 conv followed by one residual block (two 3×3 convs and a skip), all
with batch norm and leaky ReLU (slope 0.1, as in YOLO). :meth:`TinyResNet.forward` returns every
stage's feature map, so a detector can take the last one (YOLOv1) or fuse several (CenterNet).
Sized to train in minutes on a laptop CPU on 128 × 128 images.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_type


class ConvBNAct(nn.Sequential):
    """conv (no bias) → batch norm → leaky ReLU(0.1)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.1),
        )


class ResidualBlock(nn.Module):
    """``x + f(x)`` with ``f`` two 3×3 conv-BN-act layers."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(channels, channels), ConvBNAct(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TinyResNet(nn.Module):
    """Stem (3×3 conv, stride 1) then ``len(widths)`` stages; stage ``i`` has stride ``2**(i+1)``.

    Parameters
    ----------
    in_channels : int
    widths : sequence of int
        Output channels of each stage; ``out_channels`` lists them.
    stem_width : int
    """

    def __init__(self, in_channels: int = 3, widths=(16, 32, 64, 128), stem_width: int = 16):
        super().__init__()
        check_type("widths", widths, (tuple, list))
        if not widths:
            raise ValueError("widths must name at least one stage")
        widths = [check_int(f"widths[{i}]", w, min=1) for i, w in enumerate(widths)]
        self.stem = ConvBNAct(check_int("in_channels", in_channels, min=1), check_int("stem_width", stem_width, min=1))
        stages, c = [], stem_width
        for w in widths:
            stages.append(nn.Sequential(ConvBNAct(c, w, stride=2), ResidualBlock(w)))
            c = w
        self.stages = nn.ModuleList(stages)
        self.out_channels = tuple(widths)
        self.strides = tuple(2 ** (i + 1) for i in range(len(widths)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats
