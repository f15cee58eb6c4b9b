"""IoU of binary instance masks: pairwise, and per image for segmentation mAP.

For masks A and B of one image (sets of pixels),

    IoU(A, B) = |A ∩ B| / |A ∪ B|,      crowd ground truth B:  |A ∩ B| / |A|

(a crowd region may cover many objects, so a detection is judged only by how much of it lies
inside the region — the rule of pycocotools' ``maskUtils.iou`` with ``iscrowd``). The counts are
integers, so the quotient is the same float64 number pycocotools computes from run-length codes.
A quotient with an empty denominator (two empty masks, an empty detection on a crowd) is 0.

Masks are ``Tensor[N, H, W]`` of dtype ``bool`` or an integer dtype holding only 0 and 1.

Example
-------
>>> import torch
>>> a = torch.zeros(1, 4, 4, dtype=torch.bool); a[0, :2, :2] = True   # 4 pixels
>>> b = torch.zeros(1, 4, 4, dtype=torch.bool); b[0, :2, :] = True    # 8 pixels, 4 shared
>>> mask_iou(a, b)
tensor([[0.5000]], dtype=torch.float64)
>>> mask_iou(a, b, iscrowd=torch.tensor([1]))  # all of a lies inside the crowd region
tensor([[1.]], dtype=torch.float64)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from deepnotes.core.checks import check_tensor

#: float64 elements of one batched product (bounds the memory of the per-image table)
_BLOCK = 1 << 24


def check_masks(name: str, masks: object) -> torch.Tensor:
    """A ``(N, H, W)`` tensor of dtype bool, or integer with values in {0, 1}; returned as bool."""
    masks = check_tensor(name, masks, ndim=3)
    if masks.dtype == torch.bool:
        return masks
    if masks.is_floating_point() or masks.is_complex():
        raise TypeError(
            f"{name} must be binary masks of dtype bool or an integer dtype, got {masks.dtype} "
            "(threshold probabilities first, e.g. masks > 0.5)"
        )
    if masks.numel() and bool(((masks != 0) & (masks != 1)).any()):
        raise ValueError(f"{name} must hold only 0 and 1")
    return masks != 0


def _iou_from_counts(
    inter: torch.Tensor, area1: torch.Tensor, area2: torch.Tensor, crowd: torch.Tensor
) -> torch.Tensor:
    """``inter (..., N, M)``, ``area1 (..., N)``, ``area2 (..., M)``, ``crowd (..., M)`` → IoU."""
    union = area1[..., :, None] + area2[..., None, :] - inter
    union = torch.where(crowd[..., None, :], area1[..., :, None].expand_as(union), union)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))


def mask_iou(
    masks1: torch.Tensor, masks2: torch.Tensor, iscrowd: torch.Tensor | None = None
) -> torch.Tensor:
    """Pairwise IoU ``Tensor[N, M]`` (float64) of ``masks1 (N, H, W)`` and ``masks2 (M, H, W)``.

    ``iscrowd`` (``Tensor[M]``, 0/1 or bool) marks crowd regions among ``masks2``; their IoU is
    ``|A ∩ B| / |A|``. Empty unions give 0.
    """
    m1 = check_masks("masks1", masks1)
    m2 = check_masks("masks2", masks2)
    if m1.shape[1:] != m2.shape[1:]:
        raise ValueError(
            f"masks1 and masks2 must share one image size, got {tuple(m1.shape[1:])} and {tuple(m2.shape[1:])}"
        )
    crowd = torch.zeros(len(m2), dtype=torch.bool)
    if iscrowd is not None:
        check_tensor("iscrowd", iscrowd, ndim=1)
        if iscrowd.shape[0] != len(m2):
            raise ValueError(
                f"iscrowd must have one entry per mask of masks2 ({len(m2)}), got {iscrowd.shape[0]}"
            )
        crowd = iscrowd.detach().cpu() != 0
    a = m1.detach().cpu().reshape(len(m1), -1).to(torch.float64)
    b = m2.detach().cpu().reshape(len(m2), -1).to(torch.float64)
    # a 0/1 product counts shared pixels; float64 sums of integers are exact below 2**53
    return _iou_from_counts(a @ b.T, a.sum(1), b.sum(1), crowd)


def mask_iou_table(
    pred_masks: Sequence[torch.Tensor],
    gt_masks: Sequence[torch.Tensor],
    gt_crowd: Sequence[torch.Tensor],
) -> np.ndarray:
    """IoU of every detection with every ground truth of the same image, padded:
    ``table[i, d, g]`` for the ``d``-th prediction and ``g``-th target of image ``i``
    (``(n_images, max_preds, max_targets)`` float64; padding is 0).

    Inputs are already checked bool masks (``(N_i, H_i, W_i)`` and ``(M_i, H_i, W_i)``). Images
    of one size are stacked and measured with one batched product per block of images.
    """
    n = len(pred_masks)
    d_max = max((len(m) for m in pred_masks), default=0)
    g_max = max((len(m) for m in gt_masks), default=0)
    table = np.zeros((n, d_max, g_max))
    if d_max == 0 or g_max == 0:
        return table
    sizes: dict[tuple[int, int], list[int]] = {}
    for i, m in enumerate(pred_masks):
        if len(m) and len(gt_masks[i]):
            sizes.setdefault(tuple(m.shape[1:]), []).append(i)
    for (h, w), images in sizes.items():
        per_image = max(1, _BLOCK // max(1, (d_max + g_max) * h * w))
        for s in range(0, len(images), per_image):
            block = images[s : s + per_image]
            # (B, D, H*W) and (B, G, H*W), zero-padded: padding rows count no pixels
            d = pad_sequence([pred_masks[i].flatten(1) for i in block], batch_first=True)
            g = pad_sequence([gt_masks[i].flatten(1) for i in block], batch_first=True)
            crowd = pad_sequence([gt_crowd[i] for i in block], batch_first=True)
            d, g = d.to(torch.float64), g.to(torch.float64)
            iou = _iou_from_counts(d @ g.transpose(1, 2), d.sum(2), g.sum(2), crowd)
            table[block, : iou.shape[1], : iou.shape[2]] = iou.numpy()
    return table
