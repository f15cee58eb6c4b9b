"""RoI warping (MNC, Dai et al. 2016): crop an RoI and resample it to a fixed size, differentiably
in the features *and* in the box coordinates.

Bin ``(p, q)`` of an RoI reads one bilinear sample at its centre (half-pixel convention):

    y_p = y1·s - ½ + (p + ½)·(y2 - y1)·s / PH,   x_q = x1·s - ½ + (q + ½)·(x2 - x1)·s / PW
    out[k, c, p, q] = Σ_{pixels} (1 - |y_p - i|)₊ (1 - |x_q - j|)₊ · F[b_k, c, i, j]

Because the sample positions depend smoothly on the box, ``∂out/∂box`` exists (almost everywhere)
and a later stage can refine boxes through the features — what RoI Pool and torchvision's RoI
Align do not give. The border rules are RoI Align's, so the values equal
``roi_align(..., sampling_ratio=1, aligned=True)``.
"""

from __future__ import annotations

import torch

from deepnotes.detection.roi_common import axis_weights, check_roi_args, roi_chunks


def _warp(table, rois, size, scale, hw):
    (ph, pw), (h, w) = size, hw
    k = len(rois)
    x1, y1, x2, y2 = (rois[:, 1:] * scale - 0.5).unbind(1)
    one = torch.ones(k, dtype=torch.long, device=rois.device)
    yi, wy = axis_weights(y1, y2 - y1, ph, one, h)  # (K, PH, 2): two rows and their weights
    xi, wx = axis_weights(x1, x2 - x1, pw, one, w)  # (K, PW, 2)
    b = rois[:, 0].detach().long().view(-1, 1, 1, 1, 1)
    pixel = (b * h + yi.view(k, ph, 1, 2, 1)) * w + xi.view(k, 1, pw, 1, 2)  # (K, PH, PW, 2, 2)
    weight = wy.view(k, ph, 1, 2, 1) * wx.view(k, 1, pw, 1, 2)
    values = table[pixel.flatten()].view(k, ph, pw, 2, 2, -1)
    return torch.einsum("kpqabc,kpqab->kcpq", values, weight)


def roi_warp(input: torch.Tensor, boxes, output_size, spatial_scale: float = 1.0) -> torch.Tensor:
    """Warp every RoI of ``input`` Tensor[N, C, H, W] to Tensor[K, C, PH, PW].

    ``boxes`` is a Tensor[K, 5] or a list of Tensor[K_i, 4]; gradients flow to ``input`` and to
    the box coordinates (not the batch index).
    """
    rois, size, scale = check_roi_args(input, boxes, output_size, spatial_scale)
    n, c, h, w = input.shape
    table = input.permute(0, 2, 3, 1).reshape(n * h * w, c)
    parts = [
        _warp(table, rois[s], size, scale, (h, w))
        for s in roi_chunks(len(rois), size[0] * size[1] * 4 * c)
    ]
    return torch.cat(parts) if parts else input.new_zeros(0, c, *size)
