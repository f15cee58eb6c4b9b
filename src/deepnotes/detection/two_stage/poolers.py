"""FPN level assignment of RoIs and multi-scale RoI Align (torchvision's ``MultiScaleRoIAlign``).

An RoI of width ``w`` and height ``h`` (image pixels) is pooled from pyramid level

    k = clamp(⌊k0 + log2(√(w·h) / 224) + ε⌋, k_min, k_max)

with ``k0 = 4`` (the level an ImageNet-sized 224 × 224 box reads from) and ``ε = 1e-6`` so a box
exactly at a level boundary is not pushed down by rounding. Halving the box side moves it one
level finer, where the map has twice the resolution, so every RoI covers about the same number
of feature cells whatever its size.

The levels present are read from the feature maps themselves: a map of height ``h_l`` for images
of (largest) height ``H`` has scale ``2^round(log2(h_l / H))``, and level ``k = −log2(scale)``.
The maps must be consecutive levels, finest first (torchvision pools a skipped level's RoIs from
the wrong map; here that is a ``ValueError``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.detection.boxes import box_area
from deepnotes.detection.roi_align import roi_align
from deepnotes.detection.roi_common import rois_from_boxes


class LevelMapper:
    """Pyramid level of each RoI (0 = ``k_min``) by the FPN formula; torchvision's ``LevelMapper``."""

    def __init__(
        self,
        k_min: int,
        k_max: int,
        canonical_scale: float = 224,
        canonical_level: int = 4,
        eps: float = 1e-6,
    ) -> None:
        self.k_min = check_int("k_min", k_min)
        self.k_max = check_int("k_max", k_max, min=self.k_min)
        self.s0 = check_float("canonical_scale", canonical_scale, min=0.0, min_inclusive=False)
        self.lvl0 = check_int("canonical_level", canonical_level)
        self.eps = check_float("eps", eps, min=0.0)

    def __call__(self, boxlists: Sequence[torch.Tensor]) -> torch.Tensor:
        """``boxlists``: one ``Tensor[K_i, 4]`` per image → ``LongTensor[Σ K_i]`` of levels from 0."""
        check_type("boxlists", boxlists, (list, tuple))
        side = torch.sqrt(torch.cat([box_area(b) for b in boxlists]))
        k = torch.floor(
            self.lvl0 + torch.log2(side / self.s0) + torch.tensor(self.eps, dtype=side.dtype)
        )
        return k.clamp(min=self.k_min, max=self.k_max).long() - self.k_min


def infer_scale(feature_size: Sequence[int], image_size: Sequence[int]) -> float:
    """The power of two nearest to ``feature height / image height``."""
    return 2.0 ** round(math.log2(feature_size[0] / image_size[0]))


class MultiScaleRoIAlign(nn.Module):
    """RoI Align over an FPN: each RoI is pooled from the level :class:`LevelMapper` gives it.

    Parameters
    ----------
    featmap_names : the keys of the feature dict to pool from (finest level first)
    output_size : ``int`` or ``(PH, PW)``
    sampling_ratio : samples per bin and axis (``<= 0``: adaptive)
    canonical_scale, canonical_level : ``224`` and ``k0 = 4`` of the FPN paper
    """

    def __init__(
        self,
        featmap_names: Sequence[str],
        output_size: int | Sequence[int],
        sampling_ratio: int,
        *,
        canonical_scale: int = 224,
        canonical_level: int = 4,
    ) -> None:
        super().__init__()
        check_type("featmap_names", featmap_names, (list, tuple))
        if len(featmap_names) == 0:
            raise ValueError("featmap_names must name at least one feature map")
        self.featmap_names = list(featmap_names)
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        check_type("output_size", output_size, (list, tuple))
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or (height, width), got {output_size!r}")
        self.output_size = tuple(
            check_int(f"output_size[{i}]", s, min=1) for i, s in enumerate(output_size)
        )
        self.sampling_ratio = check_int("sampling_ratio", sampling_ratio)
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level

    def _levels(self, features, image_shapes):
        """Scales of the maps and the mapper for their range of levels."""
        check_type("image_shapes", image_shapes, (list, tuple))
        if len(image_shapes) == 0:
            raise ValueError("image_shapes must hold one (height, width) per image, got none")
        largest = (max(int(s[0]) for s in image_shapes), max(int(s[1]) for s in image_shapes))
        scales = [infer_scale(f.shape[-2:], largest) for f in features]
        levels = [round(-math.log2(s)) for s in scales]
        if levels != list(range(levels[0], levels[0] + len(levels))):
            raise ValueError(
                f"the feature maps {self.featmap_names} must be consecutive pyramid levels, finest "
                f"first (each half the size of the previous); their levels are {levels}"
            )
        mapper = LevelMapper(
            int(-math.log2(scales[0])),
            int(-math.log2(scales[-1])),
            canonical_scale=self.canonical_scale,
            canonical_level=self.canonical_level,
        )
        return scales, mapper

    def forward(
        self,
        x: dict[str, torch.Tensor],
        boxes: Sequence[torch.Tensor],
        image_shapes: Sequence[Sequence[int]],
    ) -> torch.Tensor:
        """``x``: name → ``Tensor[N, C, H_l, W_l]``; ``boxes``: one ``Tensor[K_i, 4]`` per image
        (image pixels); ``image_shapes``: ``(height, width)`` per image → ``Tensor[Σ K_i, C, PH, PW]``."""
        check_type("x", x, dict)
        missing = [n for n in self.featmap_names if n not in x]
        if missing:
            raise ValueError(f"x has no feature map named {missing[0]!r} (has {sorted(x)})")
        features = [v for k, v in x.items() if k in self.featmap_names]
        check_type("boxes", boxes, (list, tuple))
        if len(boxes) != features[0].shape[0]:
            raise ValueError(
                f"boxes must hold one tensor per image ({features[0].shape[0]}), got {len(boxes)}"
            )
        rois = rois_from_boxes(list(boxes))
        scales, mapper = self._levels(features, image_shapes)
        if len(features) == 1:
            return roi_align(features[0], rois, self.output_size, scales[0], self.sampling_ratio)
        levels = mapper(list(boxes))
        out = features[0].new_zeros((rois.shape[0], features[0].shape[1]) + self.output_size)
        for level, (feature, scale) in enumerate(zip(features, scales)):  # a few pyramid levels
            idx = torch.where(levels == level)[0]
            out[idx] = roi_align(
                feature, rois[idx], self.output_size, scale, self.sampling_ratio
            ).to(out.dtype)
        return out
