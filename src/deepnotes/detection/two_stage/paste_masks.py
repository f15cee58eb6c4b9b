"""Pasting RoI masks back into the image (torchvision's ``paste_masks_in_image``).

A mask head predicts an ``M × M`` mask in each detection's box frame. To place it in the image:

1. pad the mask by ``padding`` zero pixels on every side and grow the box by the same factor
   ``s = (M + 2·padding) / M`` about its centre, so the mask's border can fade to 0 outside
   the box instead of being cut at the box edge;
2. round the grown box to integer pixels (truncation toward zero, as ``Tensor.to(int64)``):
   ``(x0, y0, x1, y1)``, covering ``w = x1 − x0 + 1`` columns and ``h = y1 − y0 + 1`` rows;
3. resize the padded mask to ``h × w`` by bilinear interpolation with half-pixel centres
   (``F.interpolate(..., mode="bilinear", align_corners=False)``): output row ``i`` reads input
   position ``max(0, (i + ½)·(M + 2·padding)/h − ½)``, mixing its two neighbouring rows;
4. write the ``h × w`` patch at ``(x0, y0)``, dropping what falls outside the image.

torchvision does this one mask at a time. Here every mask at once: bilinear resizing is separable,
so the pasted mask is ``A_y · P · A_xᵀ`` with ``P`` the padded mask and ``A_y`` (``H × (M+2p)``),
``A_x`` (``W × (M+2p)``) holding each image row's (column's) two interpolation weights — rows
outside the box are all zero, which also does step 4. Boxes partly or wholly outside the image
paste what lies inside (possibly nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from deepnotes.core.checks import check_int, check_tensor, check_type
from deepnotes.detection._validate import check_boxes


def expand_boxes(boxes: torch.Tensor, scale: float) -> torch.Tensor:
    """``boxes`` (``Tensor[N, 4]`` xyxy) scaled by ``scale`` about their centres."""
    centre = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    half = (boxes[:, 2:] - boxes[:, :2]) * 0.5 * scale
    return torch.cat([centre - half, centre + half], 1)


def _axis_weights(start, length, size, m, dtype) -> torch.Tensor:
    """``Tensor[N, size, m]``: weights of the ``m`` padded-mask rows in each of ``size`` image rows
    for boxes starting at ``start`` (int) and ``length`` (int ≥ 1) pixels long."""
    pix = torch.arange(size, device=start.device)
    local = pix.view(1, -1) - start.view(-1, 1)  # row inside the box
    inside = (local >= 0) & (local < length.view(-1, 1))
    scale = torch.tensor(m, dtype=dtype, device=start.device) / length.to(dtype).view(-1, 1)
    src = (scale * (local.to(dtype) + 0.5) - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=m - 1)
    lam1 = (src - i0.to(dtype)).clamp(0, 1)
    i1 = i0 + (i0 < m - 1).long()
    zero = torch.zeros((), dtype=dtype, device=start.device)
    w = torch.zeros(len(start), size, m, dtype=dtype, device=start.device)
    w.scatter_add_(2, i0.unsqueeze(2), torch.where(inside, 1 - lam1, zero).unsqueeze(2))
    w.scatter_add_(2, i1.unsqueeze(2), torch.where(inside, lam1, zero).unsqueeze(2))
    return w


def paste_masks_in_image(
    masks: torch.Tensor, boxes: torch.Tensor, img_shape: Sequence[int], padding: int = 1
) -> torch.Tensor:
    """``masks`` ``Tensor[N, 1, M, M]`` (probabilities) in the frames of ``boxes`` ``Tensor[N, 4]``
    → ``Tensor[N, 1, H, W]`` image masks, ``img_shape = (H, W)``; see the module docstring.

    >>> m = torch.ones(1, 1, 4, 4)
    >>> paste_masks_in_image(m, torch.tensor([[1.0, 1.0, 3.0, 3.0]]), (5, 5), padding=0)[0, 0]
    tensor([[0., 0., 0., 0., 0.],
            [0., 1., 1., 1., 0.],
            [0., 1., 1., 1., 0.],
            [0., 1., 1., 1., 0.],
            [0., 0., 0., 0., 0.]])
    """
    check_tensor("masks", masks, ndim=4, floating=True)
    if masks.shape[1] != 1 or masks.shape[2] != masks.shape[3]:
        raise ValueError(f"masks must have shape (N, 1, M, M), got {tuple(masks.shape)}")
    check_boxes("boxes", boxes)
    if boxes.shape[0] != masks.shape[0]:
        raise ValueError(f"boxes must have one row per mask ({masks.shape[0]}), got {boxes.shape[0]}")
    check_type("img_shape", img_shape, (list, tuple, torch.Size))
    if len(img_shape) != 2:
        raise ValueError(f"img_shape must be (height, width), got {tuple(img_shape)}")
    h, w = (check_int(f"img_shape[{i}]", s, min=1) for i, s in enumerate(img_shape))
    padding = check_int("padding", padding, min=0)
    n, m = masks.shape[0], masks.shape[-1]
    if n == 0:
        return masks.new_zeros(0, 1, h, w)
    padded = F.pad(masks, (padding,) * 4)[:, 0]  # (N, M+2p, M+2p)
    box = expand_boxes(boxes, float(m + 2 * padding) / m).to(torch.int64)
    x0, y0, x1, y1 = box.unbind(1)
    ay = _axis_weights(y0, (y1 - y0 + 1).clamp(min=1), h, m + 2 * padding, masks.dtype)
    ax = _axis_weights(x0, (x1 - x0 + 1).clamp(min=1), w, m + 2 * padding, masks.dtype)
    return (ay @ (padded @ ax.transpose(1, 2)))[:, None]
