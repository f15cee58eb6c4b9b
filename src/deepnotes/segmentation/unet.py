"""U-Net: a contracting path, a symmetric expanding path, and skip connections that concatenate
encoder features into the decoder at every scale (Ronneberger et al., 2015).

    down_i = DoubleConv(pool(down_{i-1}))                  i = 1 .. depth
    up_i   = DoubleConv(concat(upconv(up_{i+1}), down_i))  (the skip brings back full detail)

Convolutions are padded ("same") here so the output has the input's size and no cropping is
needed; sizes that do not halve evenly are handled by resizing the upsampled map to the skip's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_int
from deepnotes.core.registry import MODELS
from deepnotes.models.interface import parse_in_shape
from deepnotes.segmentation.blocks import SegmentationModel, conv_bn_relu, resize_to

__all__ = ["UNet", "unet"]


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class UNet(SegmentationModel):
    """U-Net with ``depth`` downsamplings; widths ``width · 2^i``."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, depth: int = 4):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        depth = check_int("depth", depth, min=1, max=6)
        self.min_size = 2**depth
        widths = [width * 2**i for i in range(depth + 1)]
        self.inc = double_conv(in_channels, widths[0])
        self.down = nn.ModuleList(double_conv(widths[i], widths[i + 1]) for i in range(depth))
        self.upconv = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)
        )
        self.up = nn.ModuleList(double_conv(2 * widths[i], widths[i]) for i in range(depth))
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(F.max_pool2d(skips[-1], 2, 2, ceil_mode=True)))
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            skip = skips.pop()
            x = resize_to(self.upconv[i](x), skip.shape[-2:])
            x = self.up[i](torch.cat([skip, x], dim=1))
        return self.classifier(x)


@MODELS.register("unet", task="segment", zoo={"model_kw": {"width": 8}, "target_miou": 0.85})
def unet(in_shape, num_classes: int, width: int = 16, depth: int = 4) -> UNet:
    """U-Net for ``in_shape`` images and ``num_classes`` pixel classes."""
    c, _, _ = parse_in_shape(in_shape, 2 ** check_int("depth", depth, min=1, max=6), "unet")
    return UNet(c, num_classes, width=width, depth=depth)
