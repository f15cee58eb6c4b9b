"""Position-sensitive RoI pooling (R-FCN, Dai et al. 2016), with average pooling in each bin.

The RoI is snapped to the feature grid and cut into ``PH × PW`` bins as torchvision's kernel does:

    x0 = round(x1·s), x1' = round(x2·s), W_roi = max(x1' − x0, 1), bin_w = W_roi / PW
    bin q covers columns [x0 + ⌊q·bin_w⌋, x0 + ⌈(q+1)·bin_w⌉), both ends clipped to [0, W − 1]

and bin ``(p, q)`` of output channel ``c`` is the *mean* of input channel ``(c·PH + p)·PW + q``
over the bin (rows alike). The clipping to ``W − 1`` is the reference's: the last column and row of
the map are never read. Each bin reads its own score map, which is what makes the pooled scores sensitive
to position (a "top-left" map only speaks for the top-left bin). An empty bin gives 0.

The mean over a rectangle is read from an integral image ``S[y, x] = Σ_{i<y, j<x} F[i, j]``:
``sum = S[y1, x1] − S[y0, x1] − S[y1, x0] + S[y0, x0]`` — four look-ups per bin whatever its size,
vectorized over RoIs, channels and bins; autograd through the cumulative sums gives each pixel of
a bin ``1 / area`` of the bin's gradient. Equal to ``torchvision.ops.ps_roi_pool`` (values and
gradients).
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.detection.roi_common import check_roi_args, roi_chunks
from deepnotes.detection.roi_pool import _round_half_away


def _edges(start, end, bins: int, size: int, dtype):
    """``[lo, hi)`` of every bin along one axis: LongTensor[K, bins] each."""
    extent = (end - start).clamp(min=1)
    bin_size = (extent.to(dtype) / bins).view(-1, 1)
    p = torch.arange(bins, dtype=dtype, device=start.device).view(1, -1)
    lo = torch.floor(p * bin_size).long() + start.view(-1, 1)
    hi = torch.ceil((p + 1) * bin_size).long() + start.view(-1, 1)
    return lo.clamp(0, size - 1), hi.clamp(0, size - 1)  # the reference clips to size − 1


def _pool(integral, rois, c_out, size, scale, hw, dtype):
    (ph, pw), (h, w) = size, hw
    k = len(rois)
    corners = _round_half_away(rois[:, 1:].detach() * scale).long()
    lo_x, hi_x = _edges(corners[:, 0], corners[:, 2], pw, w, dtype)  # (K, PW)
    lo_y, hi_y = _edges(corners[:, 1], corners[:, 3], ph, h, dtype)  # (K, PH)
    b = rois[:, 0].long().view(k, 1, 1, 1)
    channel = torch.arange(c_out * ph * pw, device=rois.device).view(1, c_out, ph, pw)  # (c·PH + p)·PW + q
    plane = (b * integral.shape[1] + channel) * (h + 1)  # (K, C_out, PH, PW)

    def corner(y, x):  # S at rows y (K, PH) and columns x (K, PW) of each bin's own channel
        return integral.view(-1)[(plane + y.view(k, 1, ph, 1)) * (w + 1) + x.view(k, 1, 1, pw)]

    total = corner(hi_y, hi_x) - corner(lo_y, hi_x) - corner(hi_y, lo_x) + corner(lo_y, lo_x)
    area = ((hi_y - lo_y).view(k, 1, ph, 1) * (hi_x - lo_x).view(k, 1, 1, pw)).to(dtype)
    return torch.where(area > 0, total / area.clamp(min=1), torch.zeros_like(total))


def ps_roi_pool(input: torch.Tensor, boxes, output_size, spatial_scale: float = 1.0) -> torch.Tensor:
    """Position-sensitive average RoI pooling: ``input`` Tensor[N, C_out·PH·PW, H, W] →
    Tensor[K, C_out, PH, PW], equal to ``torchvision.ops.ps_roi_pool``.

    >>> x = torch.arange(4.0).repeat_interleave(25).view(1, 4, 5, 5)  # channel j holds the value j
    >>> ps_roi_pool(x, [torch.tensor([[0.0, 0.0, 4.0, 4.0]])], 2).flatten().tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    rois, size, scale = check_roi_args(input, boxes, output_size, spatial_scale)
    n, c, h, w = input.shape
    ph, pw = size
    if c % (ph * pw):
        raise ValueError(f"input must have a multiple of PH·PW = {ph * pw} channels, got {c}")
    c_out = c // (ph * pw)
    integral = torch.nn.functional.pad(input.cumsum(2).cumsum(3), (1, 0, 1, 0))  # S, (N, C, H+1, W+1)
    parts = [_pool(integral, rois[s], c_out, size, scale, (h, w), input.dtype)
             for s in roi_chunks(len(rois), c_out * ph * pw * 8)]
    return torch.cat(parts) if parts else input.new_zeros(0, c_out, ph, pw)


class PSRoIPool(nn.Module):
    """Module form of :func:`ps_roi_pool` (torchvision's ``PSRoIPool`` arguments)."""

    def __init__(self, output_size, spatial_scale: float = 1.0):
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale

    def forward(self, input: torch.Tensor, rois) -> torch.Tensor:
        return ps_roi_pool(input, rois, self.output_size, self.spatial_scale)
