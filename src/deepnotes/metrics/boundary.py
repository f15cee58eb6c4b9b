"""Boundary F-score: how well predicted class boundaries line up with the true ones.

For each class ``c`` the *boundary* of a mask is the set of its pixels that have a pixel of
another class among their 8 neighbours (the image border is not a boundary). A predicted
boundary pixel is *matched* if a true boundary pixel of the same class lies within
``tolerance`` pixels (chessboard distance, i.e. inside a ``(2t+1) x (2t+1)`` square), and
symmetrically for true boundary pixels (Csurka et al., BMVC 2013; the DAVIS contour measure):

    P_c = matched predicted / predicted boundary pixels
    R_c = matched true / true boundary pixels
    F_c = 2 P_c R_c / (P_c + R_c)

Counts are accumulated over every image and batch before dividing. Degenerate cases:
a class with no boundary pixel in truth nor prediction is left out of the mean; a class with
boundary pixels on one side only has ``F_c = 0``; if no class has any boundary pixel at all the
score is ``1.0`` (both sides agree that there is no edge). With ``ignore_index``, boundary pixels
lying on ignored pixels are dropped from both sides (ignored pixels are "another class" for the
true masks, so VOC's void band does not hide an object edge).

Dilation and erosion are max-pools over the one-hot masks, so the cost is a few pooling passes
per image, independent of the number of boundary pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deepnotes.core.checks import check_int
from deepnotes.metrics._inputs import to_numpy

__all__ = ["BoundaryFScore", "boundary_f1_score", "mask_boundaries"]


def mask_boundaries(onehot: torch.Tensor) -> torch.Tensor:
    """Boundary pixels of boolean masks ``(N, K, H, W)``: in the mask, with a neighbour outside it."""
    outside = (~onehot).float()
    # max-pool pads with -inf, so pixels beyond the image border never count as "outside"
    touches = F.max_pool2d(outside, kernel_size=3, stride=1, padding=1) > 0
    return onehot & touches


def _near(boundary: torch.Tensor, tolerance: int) -> torch.Tensor:
    """Pixels within ``tolerance`` (chessboard distance) of a boundary pixel."""
    if tolerance == 0:
        return boundary
    k = 2 * tolerance + 1
    return F.max_pool2d(boundary.float(), kernel_size=k, stride=1, padding=tolerance) > 0


def _as_masks(name: str, value: Any) -> np.ndarray:
    arr = to_numpy(name, value)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name} must be label masks of shape (H, W) or (N, H, W), got {arr.shape}")
    if arr.dtype.kind == "f" and not bool((arr == np.round(arr)).all()):
        raise ValueError(f"{name} must hold integer class labels, got non-integral values")
    return arr.astype(np.int64, copy=False)


class BoundaryFScore:
    """Accumulates boundary matches per class over batches of label masks ``(N, H, W)``."""

    def __init__(self, num_classes: int, tolerance: int = 2, ignore_index: int | None = None):
        self.num_classes = check_int("num_classes", num_classes, min=2)
        self.tolerance = check_int("tolerance", tolerance, min=0)
        self.ignore_index = None if ignore_index is None else check_int("ignore_index", ignore_index)
        self.reset()

    def reset(self) -> BoundaryFScore:
        # per class: predicted boundary pixels, matched ones, true boundary pixels, matched ones
        self.counts = np.zeros((4, self.num_classes), dtype=np.int64)
        return self

    def update(self, y_true: Any, y_pred: Any) -> BoundaryFScore:
        yt = _as_masks("y_true", y_true)
        yp = _as_masks("y_pred", y_pred)
        if yt.shape != yp.shape:
            raise ValueError(
                f"y_true and y_pred must have the same shape, got {yt.shape} and {yp.shape}"
            )
        k = self.num_classes
        valid = np.ones(yt.shape, bool) if self.ignore_index is None else yt != self.ignore_index
        for name, arr, ok in (("y_true", yt, valid), ("y_pred", yp, None)):
            vals = arr[ok] if ok is not None else arr
            if vals.size and (vals.min() < 0 or vals.max() >= k):
                raise ValueError(f"{name} labels must lie in [0, num_classes={k}) (or ignore_index)")
        classes = torch.arange(k).view(1, k, 1, 1)
        t = torch.from_numpy(yt).unsqueeze(1) == classes
        p = torch.from_numpy(yp).unsqueeze(1) == classes
        keep = torch.from_numpy(valid).unsqueeze(1)
        bt = mask_boundaries(t) & keep
        bp = mask_boundaries(p) & keep
        matched_p = bp & _near(bt, self.tolerance)
        matched_t = bt & _near(bp, self.tolerance)
        sums = torch.stack([bp, matched_p, bt, matched_t]).sum(dim=(1, 3, 4))
        self.counts += sums.numpy().astype(np.int64)
        return self

    def per_class(self) -> np.ndarray:
        """F-score of each class, shape (num_classes,); NaN for a class with no boundary at all."""
        pred, mp, true, mt = self.counts.astype(np.float64)
        out = np.full(self.num_classes, np.nan)
        has = (pred + true) > 0
        precision = np.divide(mp, pred, out=np.zeros_like(mp), where=pred > 0)
        recall = np.divide(mt, true, out=np.zeros_like(mt), where=true > 0)
        denom = precision + recall
        f = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
        out[has] = f[has]
        return out

    def compute(self) -> float:
        f = self.per_class()
        if self.ignore_index is not None and 0 <= self.ignore_index < self.num_classes:
            f[self.ignore_index] = np.nan
        f = f[~np.isnan(f)]
        return float(f.mean()) if f.size else 1.0


def boundary_f1_score(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    tolerance: int = 2,
    ignore_index: int | None = None,
) -> float:
    """Mean boundary F-score over the classes that have a boundary (see the module docstring).

    Parameters
    ----------
    y_true, y_pred : array-like or Tensor of shape (H, W) or (N, H, W)
        Label masks.
    num_classes : int >= 2
    tolerance : int >= 0
        Largest chessboard distance, in pixels, at which two boundary pixels still match.
    ignore_index : int, optional
        True label of pixels left out.

    >>> t = np.zeros((6, 6), int); t[:, 3:] = 1
    >>> p = np.zeros((6, 6), int); p[:, 4:] = 1
    >>> boundary_f1_score(t, p, 2, tolerance=0), boundary_f1_score(t, p, 2, tolerance=1)
    (0.0, 1.0)
    """
    return BoundaryFScore(num_classes, tolerance, ignore_index).update(y_true, y_pred).compute()
