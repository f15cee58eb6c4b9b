"""RoI Align (Mask R-CNN) and position-sensitive RoI Align (R-FCN), equal to ``torchvision.ops``.

RoI Align cuts every RoI into ``PH × PW`` bins without rounding any coordinate, samples each bin
on a ``grid_h × grid_w`` lattice by bilinear interpolation and averages the samples:

    out[k, c, p, q] = 1/(grid_h·grid_w) · Σ_i Σ_j  bilinear(F[b_k, c], y_{k,p,i}, x_{k,q,j})

Bilinear interpolation is a weighted sum of four pixels, so every output bin is a *fixed weighted
sum of feature pixels*: RoI Align is a linear map ``out = A · F`` with a sparse matrix ``A`` (one
row per RoI bin, one column per feature pixel). We write the weights out per axis
(:func:`axis_weights`: the sample position, its two neighbouring pixels and their weights), form
``A`` as their outer product, and multiply — the backward pass is ``Aᵀ · grad``. As in
torchvision, no gradient flows to the boxes.

``sampling_ratio <= 0`` uses ``ceil(roi_size / output_size)`` samples per bin and axis (adaptive,
per RoI). ``aligned=False`` is the original Mask R-CNN layout (RoIs at least 1 × 1 feature
pixel); ``aligned=True`` shifts by half a pixel so a box's pixel-centre coordinates line up with
the map. A zero-size RoI with ``aligned=True`` and adaptive sampling has no samples and gives 0
(as in torchvision).
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_type
from deepnotes.detection.roi_common import axis_weights, check_roi_args, pool_matrix, roi_chunks


def _grid(extent: torch.Tensor, bins: int, sampling_ratio: int) -> torch.Tensor:
    """Samples per bin along one axis: ``sampling_ratio``, or ``ceil(extent / bins)`` when <= 0."""
    if sampling_ratio > 0:
        return torch.full(extent.shape, sampling_ratio, dtype=torch.long, device=extent.device)
    return torch.ceil(extent / bins).long()


def _bin_weights(rois, size, scale, sampling_ratio, offset, min_extent, hw):
    """Per-axis bilinear weights of every RoI bin, divided by the sample count.

    Returns ``(yi, wy, xi, wx)``: pixel rows and weights ``Tensor[K, PH, Ay]`` and columns and
    weights ``Tensor[K, PW, Ax]``; the weight of pixel ``(yi, xi)`` in bin ``(p, q)`` is ``wy · wx``.
    """
    (ph, pw), (h, w) = size, hw
    x1, y1, x2, y2 = (rois[:, 1:].detach() * scale - offset).unbind(1)
    width, height = x2 - x1, y2 - y1
    if min_extent is not None:  # torchvision's aligned=False forces RoIs to be at least 1 × 1
        width, height = width.clamp(min=min_extent), height.clamp(min=min_extent)
    grid_h, grid_w = _grid(height, ph, sampling_ratio), _grid(width, pw, sampling_ratio)
    yi, wy = axis_weights(y1, height, ph, grid_h, h)
    xi, wx = axis_weights(x1, width, pw, grid_w, w)
    count = (grid_h * grid_w).clamp(min=1).to(wy.dtype).view(-1, 1, 1)
    return yi, wy / count, xi, wx


def _pool(rois, size, yi, wy, xi, wx, table, hw, channel_block=None):
    """``A · table`` for the bins of ``rois``; ``table`` holds one row per feature pixel."""
    (ph, pw), (h, w) = size, hw
    k, ay, ax = len(rois), yi.shape[-1], xi.shape[-1]
    b = rois[:, 0].long().view(-1, 1, 1, 1, 1)
    pixel = (b * h + yi.view(k, ph, 1, ay, 1)) * w + xi.view(k, 1, pw, 1, ax)  # (K, PH, PW, Ay, Ax)
    if channel_block is not None:  # ps_roi_align: bin (p, q) reads its own block of channels
        pixel = pixel + channel_block.view(1, ph, pw, 1, 1) * (table.shape[0] // (ph * pw))
    weight = wy.view(k, ph, 1, ay, 1) * wx.view(k, 1, pw, 1, ax)
    row = torch.arange(k * ph * pw, device=rois.device).view(k, ph, pw, 1, 1).expand_as(pixel)
    a = pool_matrix(row, pixel, weight, (k * ph * pw, table.shape[0]))
    return torch.sparse.mm(a, table).view(k, ph, pw, -1).permute(0, 3, 1, 2)


def roi_align(
    input: torch.Tensor,
    boxes,
    output_size,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> torch.Tensor:
    """RoI Align: ``input`` Tensor[N, C, H, W], ``boxes`` Tensor[K, 5] or list of Tensor[K_i, 4].

    Returns Tensor[K, C, PH, PW] (``output_size`` an int or ``(PH, PW)``), equal to
    ``torchvision.ops.roi_align`` with the same arguments, values and input gradients.

    >>> x = torch.arange(16.0).view(1, 1, 4, 4)  # the box (0, 0, 4, 4) covers the whole map:
    >>> roi_align(x, [torch.tensor([[0.0, 0.0, 4.0, 4.0]])], 1, aligned=True).item()  # its mean
    7.5
    """
    rois, size, scale = check_roi_args(input, boxes, output_size, spatial_scale, sampling_ratio)
    check_type("aligned", aligned, bool)
    n, c, h, w = input.shape
    yi, wy, xi, wx = _bin_weights(
        rois, size, scale, sampling_ratio, 0.5 if aligned else 0.0, None if aligned else 1.0, (h, w)
    )
    table = input.permute(0, 2, 3, 1).reshape(n * h * w, c)  # one row per pixel, channels last
    cost = size[0] * size[1] * yi.shape[-1] * xi.shape[-1]
    parts = [
        _pool(rois[s], size, yi[s], wy[s], xi[s], wx[s], table, (h, w))
        for s in roi_chunks(len(rois), cost)
    ]
    return torch.cat(parts) if parts else input.new_zeros(0, c, *size)


def ps_roi_align(
    input: torch.Tensor, boxes, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1
) -> torch.Tensor:
    """Position-sensitive RoI Align (R-FCN): bin ``(p, q)`` of output channel ``c`` reads only
    input channel ``(c·PH + p)·PW + q``, so ``input`` has ``C_out·PH·PW`` channels.

    Returns Tensor[K, C_out, PH, PW], equal to ``torchvision.ops.ps_roi_align`` (which always
    uses the half-pixel offset of ``aligned=True`` and no minimum RoI size). A zero-size RoI gives
    0 (torchvision returns NaN there: it divides by a sample count of 0).
    """
    rois, size, scale = check_roi_args(input, boxes, output_size, spatial_scale, sampling_ratio)
    n, c, h, w = input.shape
    ph, pw = size
    if c % (ph * pw):
        raise ValueError(f"input must have a multiple of PH·PW = {ph * pw} channels, got {c}")
    c_out = c // (ph * pw)
    yi, wy, xi, wx = _bin_weights(rois, size, scale, sampling_ratio, 0.5, None, (h, w))
    # rows ordered (bin, image, pixel): bin j = p·PW + q owns channels c_out·PH·PW + j
    table = (
        input.view(n, c_out, ph * pw, h, w)
        .permute(2, 0, 3, 4, 1)
        .reshape(ph * pw * n * h * w, c_out)
    )
    block = torch.arange(ph * pw, device=input.device)
    cost = ph * pw * yi.shape[-1] * xi.shape[-1]
    parts = [
        _pool(rois[s], size, yi[s], wy[s], xi[s], wx[s], table, (h, w), channel_block=block)
        for s in roi_chunks(len(rois), cost)
    ]
    return torch.cat(parts) if parts else input.new_zeros(0, c_out, ph, pw)


class RoIAlign(nn.Module):
    """Module form of :func:`roi_align` (torchvision's ``RoIAlign`` arguments)."""

    def __init__(
        self,
        output_size,
        spatial_scale: float = 1.0,
        sampling_ratio: int = -1,
        aligned: bool = False,
    ):
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale
        self.sampling_ratio, self.aligned = sampling_ratio, aligned

    def forward(self, input: torch.Tensor, rois) -> torch.Tensor:
        return roi_align(
            input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )


class PSRoIAlign(nn.Module):
    """Module form of :func:`ps_roi_align`."""

    def __init__(self, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1):
        super().__init__()
        self.output_size, self.spatial_scale, self.sampling_ratio = (
            output_size,
            spatial_scale,
            sampling_ratio,
        )

    def forward(self, input: torch.Tensor, rois) -> torch.Tensor:
        return ps_roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio)
