"""PANet (Liu et al., 2018): FPN plus a bottom-up path, and RoIs pooled from every level.

**Bottom-up path augmentation.** In FPN the fine, well-localized low-level signal reaches the top
levels only through the whole backbone (tens to hundreds of layers). PANet adds a short path from
``P2`` upwards::

    N2 = P2,    N_{i+1} = conv3×3(ReLU(conv3×3_{stride 2}(N_i)) + P_{i+1})   (then ReLU)

so that every ``N`` level is a few layers away from the finest map.

**Adaptive feature pooling.** FPN pools an RoI from one level chosen by its size, though two boxes
of almost equal size may be sent to different levels. PANet pools every RoI from *all* levels,
passes each level's grid through its own first fully connected layer (``fc6``), fuses the levels
with an element-wise max, and continues with ``fc7``::

    h = ReLU(fc7(max_l ReLU(fc6_l(RoIAlign(N_l, box)))))

The RPN reads ``N2 … N4`` and the extra subsampled level as in FPN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_tensor, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.roi_align import roi_align
from deepnotes.detection.roi_common import rois_from_boxes
from deepnotes.detection.two_stage.faster_rcnn import ZOO_BASE
from deepnotes.detection.two_stage.fpn import FeaturePyramid, PyramidDetector
from deepnotes.detection.two_stage.poolers import infer_scale


class PANetNeck(nn.Module):
    """:class:`FeaturePyramid`, then the bottom-up path ``N2 … N_L`` (and the extra subsampled level)."""

    def __init__(self, in_channels_list: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.fpn = FeaturePyramid(in_channels_list, out_channels, extra_pool=False)
        c, levels = out_channels, len(in_channels_list)
        self.down = nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1) for _ in range(levels - 1)])
        self.fuse = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(levels - 1)])

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        p = self.fpn(features)
        n = [p[0]]
        for i in range(len(p) - 1):  # fine to coarse: a few pyramid levels
            n.append(torch.relu(self.fuse[i](torch.relu(self.down[i](n[-1])) + p[i + 1])))
        n.append(nn.functional.max_pool2d(n[-1], kernel_size=1, stride=2))
        return n


class AdaptiveFeaturePooling(nn.Module):
    """RoI Align of every RoI from every named level: ``Tensor[K, L, C, PH, PW]``."""

    def __init__(self, featmap_names: Sequence[str], output_size: int, sampling_ratio: int) -> None:
        super().__init__()
        check_type("featmap_names", featmap_names, (list, tuple))
        if not featmap_names:
            raise ValueError("featmap_names must name at least one feature map")
        self.featmap_names = list(featmap_names)
        self.output_size = (check_int("output_size", output_size, min=1),) * 2
        self.sampling_ratio = check_int("sampling_ratio", sampling_ratio)

    def forward(self, x, boxes, image_shapes) -> torch.Tensor:
        check_type("x", x, dict)
        missing = [n for n in self.featmap_names if n not in x]
        if missing:
            raise ValueError(f"x has no feature map named {missing[0]!r} (has {sorted(x)})")
        rois = rois_from_boxes(list(boxes))
        largest = (max(int(s[0]) for s in image_shapes), max(int(s[1]) for s in image_shapes))
        pooled = [
            roi_align(x[name], rois, self.output_size, infer_scale(x[name].shape[-2:], largest), self.sampling_ratio)
            for name in self.featmap_names  # a few pyramid levels
        ]
        return torch.stack(pooled, dim=1)


class AdaptiveTwoMLPHead(nn.Module):
    """``fc6`` per level → ReLU → max over levels → ``fc7`` → ReLU:
    ``Tensor[K, L, C, PH, PW]`` → ``Tensor[K, representation_size]``."""

    def __init__(self, levels: int, in_channels: int, representation_size: int) -> None:
        super().__init__()
        levels = check_int("levels", levels, min=1)
        in_channels = check_int("in_channels", in_channels, min=1)
        representation_size = check_int("representation_size", representation_size, min=1)
        self.fc6 = nn.ModuleList([nn.Linear(in_channels, representation_size) for _ in range(levels)])
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=5, floating=True)
        if x.shape[1] != len(self.fc6):
            raise ValueError(f"x must hold {len(self.fc6)} levels per RoI, got {x.shape[1]}")
        per_level = torch.stack(
            [torch.relu(fc(x[:, i].flatten(1))) for i, fc in enumerate(self.fc6)]  # a few levels
        )
        return torch.relu(self.fc7(per_level.amax(dim=0)))


#: the issue sets no PANet target; FPN's is the natural one. Adaptive pooling runs ``fc6`` once per
#: level, so 64 RoIs per image (ours hold at most 6 objects) and 5 epochs keep it within the budget
PANET_ZOO = dict(ZOO_BASE, epochs=5, model_kw={"box_batch_size_per_image": 64})


@MODELS.register(
    "panet",
    task="detect",
    description="PANet: FPN + bottom-up path augmentation, adaptive feature pooling (max over levels)",
    zoo=PANET_ZOO,
)
class PANet(PyramidDetector):
    """Faster R-CNN with PANet's neck and adaptive feature pooling (see the module docstring)."""

    def build_neck(self) -> nn.Module:
        return PANetNeck(self.backbone.out_channels[1:], self.fpn_channels)

    def build_box_pool(self) -> nn.Module:
        return AdaptiveFeaturePooling(list(self.level_names), self.pool_size, self.sampling_ratio)

    def build_roi_heads(self) -> nn.Module:
        heads = super().build_roi_heads()
        heads.box_head = AdaptiveTwoMLPHead(
            len(self.level_names), self.out_channels * self.pool_size**2, self.representation_size
        )
        return heads
