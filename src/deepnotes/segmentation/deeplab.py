"""DeepLab v1, v2, v3 and v3+ (Chen et al., 2015–2018) on the atrous VGG-style encoder.

* **v1** — atrous convolution: the encoder stops pooling at stride 8 and dilates its later convs,
  and the classifier's first conv has a large rate (``rate=12``, "LargeFOV"), so the field of view
  grows without losing resolution. (The fully connected CRF post-processing is not included.)
* **v2** — ASPP: parallel atrous classifiers with rates ``(6, 12, 18, 24)`` on the same map, their
  class scores summed: objects are seen at several scales at once.
* **v3** — ASPP with batch norm, a 1x1 branch (a 3x3 kernel at a very large rate degenerates to
  its centre tap, so a 1x1 conv is the honest version of it) and an *image pooling* branch (global
  average → 1x1 conv → broadcast) for global context; branches concatenated, fused by a 1x1 conv;
  output stride 16.
* **v3+** — v3's encoder with depthwise-separable convs in ASPP, plus a decoder: the ASPP output
  upsampled 4x is concatenated with reduced low-level (stride-4) features and refined by two
  separable 3x3 convs, which sharpens object boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_int
from deepnotes.core.registry import MODELS
from deepnotes.models.interface import parse_in_shape
from deepnotes.segmentation.blocks import (
    Encoder,
    SegmentationModel,
    SeparableConv2d,
    conv_bn_relu,
    resize_to,
)

__all__ = ["ASPP", "DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus"]


def _rates(rates: Sequence[int]) -> tuple[int, ...]:
    rates = tuple(rates)
    if not rates:
        raise ValueError("rates must list at least one dilation rate")
    return tuple(check_int(f"rates[{i}]", r, min=1) for i, r in enumerate(rates))


class DeepLabV1(SegmentationModel):
    """Atrous encoder (output stride 8) and an atrous "LargeFOV" classifier."""

    min_size = 8

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, rate: int = 12):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.encoder = Encoder(in_channels, width, output_stride=8)
        c = self.encoder.widths[4]
        self.head = nn.Sequential(
            conv_bn_relu(c, 2 * c, dilation=check_int("rate", rate, min=1)),
            nn.Dropout2d(0.1),
            conv_bn_relu(2 * c, 2 * c, 1),
            nn.Conv2d(2 * c, num_classes, 1),
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)[4])


class DeepLabV2(SegmentationModel):
    """Atrous encoder (output stride 8) and ASPP-L: one atrous classifier per rate, scores summed."""

    min_size = 8

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        width: int = 16,
        rates: Sequence[int] = (6, 12, 18, 24),
    ):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.encoder = Encoder(in_channels, width, output_stride=8)
        c = self.encoder.widths[4]
        self.branches = nn.ModuleList(
            nn.Sequential(
                conv_bn_relu(c, c, dilation=r), conv_bn_relu(c, c, 1), nn.Conv2d(c, num_classes, 1)
            )
            for r in _rates(rates)
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)[4]
        return sum(branch(f) for branch in self.branches)


class ASPP(nn.Module):
    """DeepLab v3 ASPP: 1x1 branch, one 3x3 atrous branch per rate, image pooling; concat, 1x1.

    ``separable=True`` makes the atrous branches depthwise-separable (v3+).
    """

    def __init__(self, cin: int, cout: int, rates: Sequence[int] = (6, 12, 18), separable: bool = False):
        super().__init__()
        rates = _rates(rates)
        atrous = [
            SeparableConv2d(cin, cout, dilation=r) if separable else conv_bn_relu(cin, cout, dilation=r)
            for r in rates
        ]
        self.branches = nn.ModuleList([conv_bn_relu(cin, cout, 1), *atrous])
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU(inplace=True)
        )
        self.project = nn.Sequential(conv_bn_relu((len(rates) + 2) * cout, cout, 1), nn.Dropout2d(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        # global context, broadcast back over the map (no batch norm on a 1x1 map: a batch of 1
        # would have no variance)
        outs.append(self.image_pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3(SegmentationModel):
    """Atrous encoder (output stride 16 or 8), ASPP with image pooling, bilinear upsampling."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        width: int = 16,
        rates: Sequence[int] = (6, 12, 18),
        output_stride: int = 16,
    ):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.min_size = check_choice("output_stride", output_stride, (8, 16))
        self.encoder = Encoder(in_channels, width, output_stride=output_stride)
        c = self.encoder.widths[4]
        self.aspp = ASPP(c, c, rates)
        self.classifier = nn.Sequential(conv_bn_relu(c, c), nn.Conv2d(c, num_classes, 1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.aspp(self.encoder(x)[4]))


class DeepLabV3Plus(SegmentationModel):
    """DeepLab v3 encoder with separable ASPP, plus a decoder fusing stride-4 features."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        width: int = 16,
        rates: Sequence[int] = (6, 12, 18),
        output_stride: int = 16,
    ):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.min_size = check_choice("output_stride", output_stride, (8, 16))
        self.encoder = Encoder(in_channels, width, output_stride=output_stride)
        w = self.encoder.widths
        self.aspp = ASPP(w[4], w[4], rates, separable=True)
        low = max(w[1] // 2, 8)  # the paper reduces 256 low-level channels to 48
        self.reduce = conv_bn_relu(w[1], low, 1)
        self.decoder = nn.Sequential(
            SeparableConv2d(w[4] + low, w[4]),
            SeparableConv2d(w[4], w[4]),
            nn.Conv2d(w[4], num_classes, 1),
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        low = self.reduce(feats[1])  # stride 4
        high = resize_to(self.aspp(feats[4]), low.shape[-2:])
        return self.decoder(torch.cat([high, low], dim=1))


# --- registered factories ------------------------------------------------------------------------


@MODELS.register("deeplabv1", task="segment")
def deeplabv1(in_shape, num_classes: int, width: int = 16, rate: int = 12) -> DeepLabV1:
    """DeepLab v1 (atrous conv, LargeFOV head) for ``in_shape`` images."""
    c, _, _ = parse_in_shape(in_shape, DeepLabV1.min_size, "deeplabv1")
    return DeepLabV1(c, num_classes, width=width, rate=rate)


@MODELS.register("deeplabv2", task="segment")
def deeplabv2(in_shape, num_classes: int, width: int = 16, rates=(6, 12, 18, 24)) -> DeepLabV2:
    """DeepLab v2 (ASPP-L) for ``in_shape`` images."""
    c, _, _ = parse_in_shape(in_shape, DeepLabV2.min_size, "deeplabv2")
    return DeepLabV2(c, num_classes, width=width, rates=rates)


@MODELS.register("deeplabv3", task="segment")
def deeplabv3(
    in_shape, num_classes: int, width: int = 16, rates=(6, 12, 18), output_stride: int = 16
) -> DeepLabV3:
    """DeepLab v3 (ASPP with image pooling, batch norm) for ``in_shape`` images."""
    c, _, _ = parse_in_shape(in_shape, output_stride, "deeplabv3")
    return DeepLabV3(c, num_classes, width=width, rates=rates, output_stride=output_stride)


@MODELS.register("deeplabv3plus", task="segment", zoo={"target_miou": 0.85})
def deeplabv3plus(
    in_shape, num_classes: int, width: int = 16, rates=(6, 12, 18), output_stride: int = 16
) -> DeepLabV3Plus:
    """DeepLab v3+ (separable ASPP and decoder) for ``in_shape`` images."""
    c, _, _ = parse_in_shape(in_shape, output_stride, "deeplabv3plus")
    return DeepLabV3Plus(c, num_classes, width=width, rates=rates, output_stride=output_stride)
