"""SegNet: an encoder–decoder whose decoder upsamples with the encoder's max-pool indices
(Badrinarayanan et al., 2017).

Each encoder stage ends in a 2x2 max-pool that also returns *where* each maximum was. The
mirrored decoder stage first un-pools — puts every value back at its recorded position, zeros
elsewhere (``max_unpool2d``) — then convolves to fill in the sparse map. Only the indices cross
from encoder to decoder (not whole feature maps as in U-Net), so boundaries are recovered at the
cost of a few bits per pooled pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_int
from deepnotes.core.registry import MODELS
from deepnotes.models.interface import parse_in_shape
from deepnotes.segmentation.blocks import SegmentationModel, conv_bn_relu

__all__ = ["SegNet", "segnet"]


class SegNet(SegmentationModel):
    """SegNet with ``depth`` pooling stages of widths ``width · (1, 2, 4, 8, 8)``."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, depth: int = 4):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        depth = check_int("depth", depth, min=1, max=5)
        self.min_size = 2**depth
        widths = [width * m for m in (1, 2, 4, 8, 8)[:depth]]
        convs = (2, 2, 3, 3, 3)[:depth]
        self.enc = nn.ModuleList()
        cin = in_channels
        for w, n in zip(widths, convs):
            self.enc.append(nn.Sequential(*(conv_bn_relu(cin if i == 0 else w, w) for i in range(n))))
            cin = w
        self.dec = nn.ModuleList()
        outs = [widths[0], *widths[:-1]]  # decoder stage i maps widths[i] -> widths[i-1]
        for w, wo, n in zip(widths, outs, convs):
            layers = [conv_bn_relu(w, w) for _ in range(n - 1)] + [conv_bn_relu(w, wo)]
            self.dec.append(nn.Sequential(*layers))
        self.classifier = nn.Conv2d(widths[0], num_classes, 3, padding=1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        indices, sizes = [], []
        for stage in self.enc:
            x = stage(x)
            sizes.append(x.shape[-2:])
            x, idx = F.max_pool2d(x, 2, 2, return_indices=True)
            indices.append(idx)
        for stage, idx, size in zip(reversed(self.dec), reversed(indices), reversed(sizes)):
            x = F.max_unpool2d(x, idx, 2, 2, output_size=size)
            x = stage(x)
        return self.classifier(x)


@MODELS.register("segnet", task="segment")
def segnet(in_shape, num_classes: int, width: int = 16, depth: int = 4) -> SegNet:
    """SegNet for ``in_shape`` images and ``num_classes`` pixel classes."""
    c, _, _ = parse_in_shape(in_shape, 2 ** check_int("depth", depth, min=1, max=5), "segnet")
    return SegNet(c, num_classes, width=width, depth=depth)
