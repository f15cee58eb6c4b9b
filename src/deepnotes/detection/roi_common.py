"""What the RoI operators share: RoI formats, argument checks and bilinear bin weights.

RoIs come as torchvision takes them: a ``Tensor[K, 5]`` of ``(batch_index, x1, y1, x2, y2)`` or a
list of ``Tensor[K_i, 4]`` boxes, one per image of the batch. Coordinates are in input-image
pixels; ``spatial_scale`` maps them onto the feature map (``1/16`` for a stride-16 backbone).
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_float, check_int, check_tensor, check_type


def rois_from_boxes(boxes, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``Tensor[K, 5]`` RoIs from a list of per-image ``Tensor[K_i, 4]`` boxes (or RoIs unchanged).

    Raises ``ValueError`` for a wrong shape, a non-finite coordinate, ``x2 < x1`` or ``y2 < y1``,
    or a batch index that is not a non-negative integer.
    """
    if isinstance(boxes, (list, tuple)):
        parts = []
        for i, b in enumerate(boxes):
            check_tensor(f"boxes[{i}]", b, ndim=2)
            if b.shape[1] != 4:
                raise ValueError(f"boxes[{i}] must have shape (K, 4), got {tuple(b.shape)}")
            b = b.to(dtype or (b.dtype if b.is_floating_point() else torch.float32))
            parts.append(torch.cat([torch.full_like(b[:, :1], i), b], 1))
        rois = torch.cat(parts) if parts else torch.zeros(0, 5, dtype=dtype or torch.float32)
    else:
        check_type("boxes", boxes, (torch.Tensor, list, tuple))
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(
                f"boxes must be a Tensor[K, 5] or a list of Tensor[K_i, 4], got shape {tuple(boxes.shape)}"
            )
        rois = boxes.to(dtype) if dtype is not None else boxes
    if not bool(torch.isfinite(rois).all()):
        raise ValueError("boxes must be finite (found NaN or inf)")
    if bool((rois[:, 3] < rois[:, 1]).any()) or bool((rois[:, 4] < rois[:, 2]).any()):
        raise ValueError("boxes must satisfy x2 >= x1 and y2 >= y1 (xyxy format)")
    batch = rois[:, 0]
    if bool((batch < 0).any()) or not bool((batch == batch.round()).all()):
        raise ValueError("boxes' batch indices (column 0) must be non-negative integers")
    return rois


def check_roi_args(input, boxes, output_size, spatial_scale, sampling_ratio=None):
    """Validate the common arguments; returns ``(rois, (PH, PW), spatial_scale)``."""
    check_tensor("input", input, ndim=4, floating=True)
    rois = rois_from_boxes(boxes, dtype=input.dtype).to(input.device)
    if len(rois) and int(rois[:, 0].max()) >= input.shape[0]:
        raise ValueError(f"boxes' batch indices must be < the batch size {input.shape[0]}")
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or a pair (h, w), got {output_size!r}")
        size = (
            check_int("output_size[0]", output_size[0], min=1),
            check_int("output_size[1]", output_size[1], min=1),
        )
    else:
        size = (check_int("output_size", output_size, min=1),) * 2
    scale = check_float("spatial_scale", spatial_scale, min=0.0, min_inclusive=False)
    if sampling_ratio is not None:
        check_int("sampling_ratio", sampling_ratio)
    return rois, size, scale


def axis_weights(start, length, bins: int, grid, size: int):
    """Bilinear sampling along one axis, as torchvision's RoI Align kernel samples.

    Bin ``p`` of an RoI starting at ``start`` with extent ``length`` holds ``grid`` evenly spaced
    samples ``t = start + (p + (i + ½) / grid) · length / bins``, ``i = 0 .. grid - 1``. Each sample
    reads the two neighbouring pixels ``⌊t⌋`` and ``⌊t⌋ + 1`` with weights ``1 - (t - ⌊t⌋)`` and
    ``t - ⌊t⌋``. Border rules of the reference: a sample beyond one pixel outside the map
    (``t < -1`` or ``t > size``) contributes 0; one in ``[-1, 0]`` reads pixel 0; one at or past the
    last pixel reads only the last pixel.

    start, length : Tensor[K]; grid : Tensor[K] (int, samples per bin; padded to the largest).
    Returns ``index`` (long) and ``weight``, both ``Tensor[K, bins, 2·G]``, ``G = max(grid)``; the
    padding samples of an RoI with fewer than ``G`` samples have weight 0.
    """
    g_max = max(int(grid.max()), 1) if grid.numel() else 1
    dtype = start.dtype
    p = torch.arange(bins, dtype=dtype, device=start.device).view(1, -1, 1)
    i = torch.arange(g_max, dtype=dtype, device=start.device).view(1, 1, -1)
    bin_size = (length / bins).view(-1, 1, 1)
    g = grid.view(-1, 1, 1)
    t = start.view(-1, 1, 1) + p * bin_size + (i + 0.5) * bin_size / g.clamp(min=1).to(dtype)
    used = (i < g) & (t >= -1.0) & (t <= size)
    t = t.clamp(min=0.0)
    low = t.floor().long()
    at_edge = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(t), t - low.to(dtype))
    weight = torch.stack([1.0 - frac, frac], -1) * used.unsqueeze(-1).to(dtype)
    index = torch.stack([low, high], -1)
    return index.flatten(2), weight.flatten(2)


def pool_matrix(row, col, weight, shape) -> torch.Tensor:
    """The sparse ``(outputs × pixels)`` matrix with ``weight`` at ``(row, col)`` (repeats add up)."""
    return torch.sparse_coo_tensor(
        torch.stack([row.flatten(), col.flatten()]), weight.flatten(), shape, check_invariants=False
    )


def roi_chunks(num_rois: int, cost_per_roi: int, budget: int = 1 << 20):
    """Slices of at most ``budget // cost_per_roi`` RoIs (at least one): bounds temporary memory."""
    step = max(1, budget // max(cost_per_roi, 1))
    return [slice(s, min(s + step, num_rois)) for s in range(0, num_rois, step)]
