"""Feature Pyramid Network (Lin et al., 2017) and Faster R-CNN on it.

The backbone's stages ``C2, C3, C4`` (strides 4, 8, 16) are deep but coarse, or fine but shallow.
FPN gives every scale deep semantics with a top-down path and lateral connections::

    P4 = conv3×3(lat4(C4))
    P3 = conv3×3(lat3(C3) + up2(lat4(C4) + …))        lat = 1 × 1 conv to a common width d
    P2 = conv3×3(lat2(C2) + up2(…))                   up2 = nearest-neighbour 2× upsampling
    P5 = maxpool_{1×1, stride 2}(P4)                   (an extra coarse level for the RPN only)

The sum is formed before the 3 × 3 conv (which reduces the aliasing of upsampling); the 3 × 3 convs
see the running sum, not just the lateral term. The RPN slides one shared head over ``P2 … P5``
with one anchor size per level (8, 16, 32, 64 px at three ratios). The RoI heads pool each RoI
from the level the paper's formula gives it (:class:`~deepnotes.detection.two_stage.LevelMapper`):

    k = ⌊k0 + log2(√(w·h) / s0)⌋ clamped to P2 … P4,    k0 = 4

The paper's ``s0 = 224`` is the ImageNet input size, tied to its 800-px images (a 224-px RoI is
read from P4, whose anchors are 128 px). Our images are 128 px with objects of 8-64 px, so every
RoI would land on P2 with ``s0 = 224``; we keep the paper's ratio between ``s0`` and P4's anchor
(224 / 128 = 1.75) and use ``s0 = 1.75 · 32 = 56`` (``canonical_scale``): 56-111 px → P4,
28-55 px → P3, smaller → P2.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.two_stage.faster_rcnn import ZOO_BASE, TwoStageDetector
from deepnotes.detection.two_stage.poolers import MultiScaleRoIAlign


class FeaturePyramid(nn.Module):
    """Top-down path with lateral connections over feature maps given finest first.

    ``forward(list of Tensor[N, C_i, H_i, W_i])`` → ``list of Tensor[N, out_channels, H_i, W_i]``
    (the ``P`` maps, finest first), plus one extra map of half the coarsest size when
    ``extra_pool`` (a stride-2 subsampling of the coarsest ``P``, as torchvision's ``LastLevelMaxPool``).
    """

    def __init__(self, in_channels_list: Sequence[int], out_channels: int, extra_pool: bool = True) -> None:
        super().__init__()
        check_type("in_channels_list", in_channels_list, (tuple, list))
        if not in_channels_list:
            raise ValueError("in_channels_list must name at least one level")
        chans = [check_int(f"in_channels_list[{i}]", c, min=1) for i, c in enumerate(in_channels_list)]
        self.out_channels = check_int("out_channels", out_channels, min=1)
        self.lateral = nn.ModuleList([nn.Conv2d(c, out_channels, 1) for c in chans])
        self.output = nn.ModuleList([nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in chans])
        self.extra_pool = bool(extra_pool)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        check_type("features", features, (tuple, list))
        if len(features) != len(self.lateral):
            raise ValueError(f"features must hold {len(self.lateral)} maps (finest first), got {len(features)}")
        top = self.lateral[-1](features[-1])
        outs = [self.output[-1](top)]
        for i in range(len(features) - 2, -1, -1):  # coarse to fine: a few pyramid levels
            lateral = self.lateral[i](features[i])
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
            outs.insert(0, self.output[i](top))
        if self.extra_pool:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return outs


class PyramidDetector(TwoStageDetector):
    """A two-stage detector on pyramid levels ``P2 … P4`` (+ ``P5`` for the RPN); the neck is
    :meth:`build_neck` (FPN here; PANet adds a bottom-up path)."""

    level_names = ("p2", "p3", "p4")

    def __init__(self, *args, fpn_channels: int = 64, canonical_scale: float = 56.0, **kwargs) -> None:
        self.fpn_channels = check_int("fpn_channels", fpn_channels, min=1)
        self.canonical_scale = check_float("canonical_scale", canonical_scale, min=0.0, min_inclusive=False)
        super().__init__(*args, **kwargs)

    def build_neck(self) -> nn.Module:
        return FeaturePyramid(self.backbone.out_channels[1:], self.fpn_channels, extra_pool=True)

    def build_features(self):
        if len(self.anchor_sizes) != len(self.level_names) + 1:
            raise ValueError(
                f"anchor_sizes must give one size per pyramid level P2..P5 ({len(self.level_names) + 1}), "
                f"got {self.anchor_sizes}"
            )
        self.neck = self.build_neck()
        names = [*self.level_names, "pool"]
        return names, self.fpn_channels, tuple((s,) for s in self.anchor_sizes)

    def features(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        maps = self.neck(self.backbone(images)[1:])
        return OrderedDict(zip(self.featmap_names, maps))

    def build_box_pool(self) -> nn.Module:
        """Each RoI from one level (k0 = 4, ``canonical_scale``); the extra ``pool`` level is the RPN's only."""
        return MultiScaleRoIAlign(
            list(self.level_names), self.pool_size, self.sampling_ratio,
            canonical_scale=self.canonical_scale, canonical_level=4,
        )


FPN_ZOO = dict(ZOO_BASE)


@MODELS.register(
    "fpn",
    task="detect",
    description="Faster R-CNN + FPN: top-down pyramid P2-P5, RoIs pooled from their level (k0 = 4)",
    zoo=FPN_ZOO,
)
class FPNFasterRCNN(PyramidDetector):
    """Faster R-CNN with a Feature Pyramid Network neck (see the module docstring)."""
