"""Building blocks shared by the segmentation models: conv units, separable convs, a VGG-style
encoder with an ``output_stride``, bilinear-initialised upsampling, and the model base class.

The encoder is VGG-like (stages of 3x3 conv–BN–ReLU, each followed by a 2x2 max-pool) and small
enough to train on a CPU. With ``output_stride`` below 32 the last stages keep their resolution:
their pooling is dropped and their convolutions are dilated instead (rate 2, then 4), which is
DeepLab's atrous trick — the receptive field keeps growing as if the pooling were there, but the
feature map is not downsampled. Batch norm is used throughout (the original FCN, SegNet and
DeepLab v1/v2 have none; it makes short CPU training reliable).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_choice, check_int

__all__ = [
    "Encoder",
    "SegmentationModel",
    "SeparableConv2d",
    "bilinear_kernel",
    "conv_bn_relu",
    "resize_to",
]


def conv_bn_relu(cin: int, cout: int, kernel_size: int = 3, dilation: int = 1) -> nn.Sequential:
    """``kernel_size`` conv ('same' padding, dilated by ``dilation``), batch norm, ReLU."""
    pad = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SeparableConv2d(nn.Sequential):
    """Depthwise-separable conv: a per-channel ``k x k`` (dilated) conv, then a 1x1 pointwise conv.

    Weights: ``C·k² + C·C'`` instead of ``C·C'·k²`` for a full conv — the saving DeepLab v3+ (after
    Xception) uses in its ASPP and decoder. Each part is followed by batch norm and ReLU.
    """

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, dilation: int = 1):
        pad = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(cin, cin, kernel_size, padding=pad, dilation=dilation, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """Weights ``(C, 1, 2f, 2f)`` making a grouped transposed conv of stride ``f`` bilinear upsampling
    (FCN initialises its learnable upsampling this way)."""
    size = 2 * factor - factor % 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    r = torch.arange(size, dtype=torch.float32)
    w1 = 1 - (r - center).abs() / factor
    return (w1[:, None] * w1[None, :]).expand(channels, 1, size, size).clone()


def resize_to(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize of a feature map to ``size`` (no-op when already that size)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class Encoder(nn.Module):
    """Five VGG-style stages; ``forward`` returns the feature map after each stage.

    Parameters
    ----------
    in_channels : int
    width : int
        Channels of the first stage; the stages have ``w, 2w, 4w, 8w, 8w``.
    convs : tuple of 5 ints
        3x3 convs per stage.
    output_stride : 8, 16 or 32
        Total downsampling. Stages past it keep their resolution and dilate their convs.

    Stage ``i`` (0-based) output has stride ``min(2^(i+1), output_stride)``.
    """

    def __init__(
        self,
        in_channels: int,
        width: int = 16,
        convs: tuple[int, ...] = (1, 1, 2, 2, 2),
        output_stride: int = 32,
    ):
        super().__init__()
        check_int("width", width, min=1)
        check_choice("output_stride", output_stride, (8, 16, 32))
        if len(convs) != 5:
            raise ValueError(f"convs must list 5 stages, got {len(convs)}")
        self.widths = (width, 2 * width, 4 * width, 8 * width, 8 * width)
        self.output_stride = output_stride
        self.stages = nn.ModuleList()
        self.pools = nn.ModuleList()
        cin, stride, dilation = in_channels, 1, 1
        for w, n in zip(self.widths, convs):
            layers = []
            for _ in range(n):
                layers.append(conv_bn_relu(cin, w, dilation=dilation))
                cin = w
            self.stages.append(nn.Sequential(*layers))
            if stride * 2 <= output_stride:
                self.pools.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                stride *= 2
            else:  # atrous: keep the resolution, widen the next stage's convs instead
                self.pools.append(nn.Identity())
                dilation *= 2

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage, pool in zip(self.stages, self.pools):
            x = pool(stage(x))
            feats.append(x)
        return feats


class SegmentationModel(nn.Module):
    """Base: ``forward(x (N, C, H, W)) → logits (N, num_classes, H, W)`` at the input's resolution."""

    in_channels: int
    num_classes: int
    min_size: int = 1

    def check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"input must be a batch of images (N, C, H, W), got {shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"input has {x.shape[1]} channels but {type(self).__name__} expects {self.in_channels}"
            )
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"input of size {tuple(x.shape[-2:])} is smaller than the minimum size "
                f"{self.min_size}x{self.min_size} of {type(self).__name__}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return resize_to(self.logits(x), x.shape[-2:])

    def logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
