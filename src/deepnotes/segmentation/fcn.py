"""FCN-32s / 16s / 8s: a classifier turned fully convolutional, with skip fusion (Long et al., 2015).

The encoder's last map (stride 32) is scored per class with convolutions instead of fully
connected layers. FCN-32s upsamples those scores 32x in one step, so boundaries are coarse.
FCN-16s adds scores predicted from the stride-16 map (``pool4``) to the 2x-upsampled stride-32
scores before upsampling 16x; FCN-8s adds the stride-8 map (``pool3``) too:

    s32 = score(pool5)
    s16 = up2(s32) + score(pool4)               (16s, 8s)
    s8  = up2(s16) + score(pool3)               (8s)
    out = bilinear upsampling of the finest sum to the input size

The 2x upsamplings are transposed convolutions initialised to bilinear interpolation and learnt;
the skip scorers start at zero, so training begins from the coarser net's output, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_choice
from deepnotes.core.registry import MODELS
from deepnotes.models.interface import parse_in_shape
from deepnotes.segmentation.blocks import (
    Encoder,
    SegmentationModel,
    bilinear_kernel,
    conv_bn_relu,
    resize_to,
)

__all__ = ["FCN", "fcn8s", "fcn16s", "fcn32s"]


class FCN(SegmentationModel):
    """FCN with ``variant`` 32, 16 or 8 (the stride of its finest prediction)."""

    min_size = 32

    def __init__(self, in_channels: int, num_classes: int, variant: int = 8, width: int = 16):
        super().__init__()
        self.variant = check_choice("variant", variant, (32, 16, 8))
        self.in_channels, self.num_classes = in_channels, num_classes
        self.encoder = Encoder(in_channels, width)
        w = self.encoder.widths
        # "fc6/fc7" as convolutions on the stride-32 map
        self.head = nn.Sequential(
            conv_bn_relu(w[4], 2 * w[4]), nn.Dropout2d(0.1), conv_bn_relu(2 * w[4], 2 * w[4], 1)
        )
        self.score32 = nn.Conv2d(2 * w[4], num_classes, 1)
        self.score16 = nn.Conv2d(w[3], num_classes, 1) if variant <= 16 else None
        self.score8 = nn.Conv2d(w[2], num_classes, 1) if variant <= 8 else None
        self.up = nn.ModuleList(self._up2(num_classes) for _ in range({32: 0, 16: 1, 8: 2}[variant]))
        for skip in (self.score16, self.score8):
            if skip is not None:
                nn.init.zeros_(skip.weight)
                nn.init.zeros_(skip.bias)

    @staticmethod
    def _up2(k: int) -> nn.ConvTranspose2d:
        up = nn.ConvTranspose2d(k, k, 4, stride=2, padding=1, groups=k, bias=False)
        with torch.no_grad():
            up.weight.copy_(bilinear_kernel(k, 2))
        return up

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        s = self.score32(self.head(feats[4]))
        for up, skip, f in zip(self.up, (self.score16, self.score8), (feats[3], feats[2])):
            s = resize_to(up(s), f.shape[-2:]) + skip(f)
        return s


def _factory(variant: int):
    def build(in_shape, num_classes: int, width: int = 16) -> FCN:
        c, _, _ = parse_in_shape(in_shape, FCN.min_size, f"fcn{variant}s")
        return FCN(c, num_classes, variant=variant, width=width)

    build.__name__ = build.__qualname__ = f"fcn{variant}s"
    build.__doc__ = f"FCN-{variant}s for ``in_shape`` images and ``num_classes`` pixel classes."
    return build


fcn32s = MODELS.register("fcn32s", task="segment")(_factory(32))
fcn16s = MODELS.register("fcn16s", task="segment")(_factory(16))
fcn8s = MODELS.register("fcn8s", task="segment", zoo={"target_miou": 0.75})(_factory(8))
