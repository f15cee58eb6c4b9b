"""RoI Pooling (Fast R-CNN) and spatial pyramid pooling over RoIs (SPP-net).

RoI Pool snaps an RoI to the feature grid (rounding its corners), cuts it into ``PH × PW`` bins
whose edges are rounded outwards, and takes the maximum of each bin:

    x0 = round(x1·s),  W_roi = max(round(x2·s) - x0 + 1, 1),  bin q covers columns
    [x0 + ⌊q·W_roi/PW⌋,  x0 + ⌈(q+1)·W_roi/PW⌉)   (clipped to the map; same for rows)

— the two roundings are the misalignment RoI Align removes. An empty bin (entirely off the map)
gives 0. Equal to ``torchvision.ops.roi_pool`` in values and gradients (the gradient of a bin goes
to its first maximum in row-major order, as the reference's argmax does).

Vectorized over RoIs and bins: the maximum over each bin is taken in two separable passes (columns,
then rows), each looping only over the offsets of the largest bin window.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_type
from deepnotes.detection.roi_common import check_roi_args, roi_chunks


def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    """C's ``round`` (halves away from zero); ``torch.round`` rounds halves to even."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def _bin_edges(start, end, bins: int, size: int, dtype: torch.dtype):
    """Window ``[lo, hi)`` of every bin along one axis: Tensor[K, bins] each (long).

    The bin size is computed in the input's dtype, as the reference kernel does.
    """
    extent = (end - start + 1).clamp(min=1)
    bin_size = (extent.to(dtype) / bins).view(-1, 1)
    p = torch.arange(bins, dtype=dtype, device=start.device).view(1, -1)
    lo = torch.floor(p * bin_size).long() + start.view(-1, 1)
    hi = torch.ceil((p + 1) * bin_size).long() + start.view(-1, 1)
    return lo.clamp(0, size), hi.clamp(0, size)


def _max_in_windows(table, b, lo_y, hi_y, lo_x, hi_x, hw):
    """Maximum of ``table`` (pixels × channels) over every bin window → Tensor[K, C, PH, PW].

    The maximum over a rectangle is separable: first, for every row an RoI's bins touch, the
    maximum over each column bin; then the maximum of those over each row bin. Each pass scans
    the window offsets in order and keeps a value only when it is strictly larger than the best
    so far, so the first maximum in row-major order wins (the reference's argmax) and is the only
    one to receive gradient. A pass loops over window offsets (the largest bin's width or height),
    each step vectorized over every RoI and bin.
    """
    h, w = hw
    k, ph = lo_y.shape
    pw, c = lo_x.shape[1], table.shape[1]
    neg = float("-inf")
    top = lo_y[:, :1]  # bins are ordered: the first row bin starts highest
    span = max(int((hi_y[:, -1:] - top).max()), 1)
    rows = (top + torch.arange(span, device=table.device)).clamp(max=h - 1)  # (K, R)
    row_best = table.new_full((k, span, pw, c), neg)
    for dx in range(max(int((hi_x - lo_x).max()), 1)):
        col = lo_x + dx  # (K, PW)
        pixel = (b.view(-1, 1, 1) * h + rows.view(k, span, 1)) * w + col.clamp(max=w - 1).view(k, 1, pw)
        value = table.index_select(0, pixel.flatten()).view(k, span, pw, c)
        better = (value > row_best) & (col < hi_x).view(k, 1, pw, 1)
        row_best = torch.where(better, value, row_best)
    best = table.new_full((k, ph, pw, c), neg)
    for dy in range(max(int((hi_y - lo_y).max()), 1)):
        r = (lo_y + dy - top).clamp(max=span - 1)  # (K, PH): row index within the span
        value = row_best.gather(1, r.view(k, ph, 1, 1).expand(k, ph, pw, c))
        better = (value > best) & (lo_y + dy < hi_y).view(k, ph, 1, 1)
        best = torch.where(better, value, best)
    empty = ((hi_y <= lo_y).view(k, ph, 1) | (hi_x <= lo_x).view(k, 1, pw)).unsqueeze(-1)
    return torch.where(empty, torch.zeros_like(best), best).permute(0, 3, 1, 2)  # an empty bin gives 0


def roi_pool(input: torch.Tensor, boxes, output_size, spatial_scale: float = 1.0) -> torch.Tensor:
    """RoI max pooling: ``input`` Tensor[N, C, H, W], ``boxes`` Tensor[K, 5] or list of Tensor[K_i, 4].

    Returns Tensor[K, C, PH, PW], equal to ``torchvision.ops.roi_pool``.

    >>> x = torch.arange(16.0).view(1, 1, 4, 4)
    >>> roi_pool(x, [torch.tensor([[0.0, 0.0, 3.0, 3.0]])], 2).flatten().tolist()
    [5.0, 7.0, 13.0, 15.0]
    """
    rois, (ph, pw), scale = check_roi_args(input, boxes, output_size, spatial_scale)
    n, c, h, w = input.shape
    corners = _round_half_away(rois[:, 1:].detach() * scale).long()
    lo_x, hi_x = _bin_edges(corners[:, 0], corners[:, 2], pw, w, input.dtype)
    lo_y, hi_y = _bin_edges(corners[:, 1], corners[:, 3], ph, h, input.dtype)
    table = input.permute(0, 2, 3, 1).reshape(n * h * w, c)
    b = rois[:, 0].long()
    span = int((hi_y[:, -1] - lo_y[:, 0]).max()) if len(rois) else 1  # rows touched by one RoI
    parts = [
        _max_in_windows(table, b[s], lo_y[s], hi_y[s], lo_x[s], hi_x[s], (h, w))
        for s in roi_chunks(len(rois), (span + ph) * pw * c * 3)
    ]
    return torch.cat(parts) if parts else input.new_zeros(0, c, ph, pw)


def roi_spatial_pyramid_pool(
    input: torch.Tensor, boxes, levels=(4, 2, 1), spatial_scale: float = 1.0
) -> torch.Tensor:
    """SPP-net over RoIs: RoI max pooling at every pyramid level, flattened and concatenated.

    Returns Tensor[K, C·Σ l²] (level by level, channel-major within a level as
    :func:`deepnotes.nn.spatial_pyramid_pool` orders it): a fixed-length vector for any RoI size.
    For the whole-map box ``(0, 0, W-1, H-1)`` the bins are those of adaptive max pooling, so the
    result equals ``deepnotes.nn.spatial_pyramid_pool`` of the map.
    """
    check_type("levels", levels, (tuple, list))
    if not levels:
        raise ValueError("levels must not be empty")
    lv = [check_int(f"levels[{i}]", v, min=1) for i, v in enumerate(levels)]
    return torch.cat([roi_pool(input, boxes, level, spatial_scale).flatten(1) for level in lv], dim=1)


class RoIPool(nn.Module):
    """Module form of :func:`roi_pool` (torchvision's ``RoIPool`` arguments)."""

    def __init__(self, output_size, spatial_scale: float = 1.0):
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale

    def forward(self, input: torch.Tensor, rois) -> torch.Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)
