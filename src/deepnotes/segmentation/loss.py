"""Per-pixel cross-entropy for segmentation, with labelled pixels only (``ignore_index``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_int, check_tensor

__all__ = ["PixelCrossEntropy", "pixel_cross_entropy"]


def pixel_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over labelled pixels of ``−log softmax(logits)[target]``.

    logits (N, K, H, W) float, target (N, H, W) int64 in ``[0, K)`` or ``ignore_index``.
    A batch with no labelled pixel gives 0 (with a gradient of zeros), not NaN.
    """
    check_tensor("logits", logits, ndim=4, floating=True)
    check_tensor("target", target, ndim=3)
    ignore_index = check_int("ignore_index", ignore_index)
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"target must have shape {tuple(logits.shape[:1] + logits.shape[2:])} (N, H, W), "
            f"got {tuple(target.shape)}"
        )
    if target.is_floating_point():
        raise TypeError(f"target must hold integer class labels, got dtype {target.dtype}")
    k = logits.shape[1]
    labelled = target != ignore_index
    if bool(((target[labelled] < 0) | (target[labelled] >= k)).any()):
        raise ValueError(f"target labels must lie in [0, {k}) or equal ignore_index={ignore_index}")
    if not bool(labelled.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target.long(), weight=weight, ignore_index=ignore_index)


class PixelCrossEntropy(nn.Module):
    def __init__(self, ignore_index: int = 255, weight: torch.Tensor | None = None):
        super().__init__()
        self.ignore_index = check_int("ignore_index", ignore_index)
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return pixel_cross_entropy(logits, target, self.ignore_index, self.weight)
