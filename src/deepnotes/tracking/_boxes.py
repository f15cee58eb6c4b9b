"""The trackers' box helpers on numpy arrays: IoU (the detection package's, on float64 tensors)
and the validation of detection rows."""

from __future__ import annotations

import numpy as np


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` of numpy ``xyxy`` boxes through :func:`deepnotes.detection.box_iou`
    (float64; 0 where the union is empty, never NaN)."""
    import torch

    from deepnotes.detection import box_iou

    ta = torch.as_tensor(np.asarray(a, dtype=np.float64).reshape(-1, 4))
    tb = torch.as_tensor(np.asarray(b, dtype=np.float64).reshape(-1, 4))
    with torch.no_grad():
        return box_iou(ta, tb).numpy()


def check_boxes(name: str, boxes: np.ndarray, columns: int = 4) -> np.ndarray:
    """Rows ``(x1, y1, x2, y2, ...)`` with finite values and positive width and height."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, columns)
    if arr.ndim != 2 or arr.shape[1] != columns:
        raise ValueError(f"{name} must have shape (N, {columns}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    bad = np.flatnonzero((arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1]))
    if bad.size:
        raise ValueError(
            f"{name} row {int(bad[0])} has non-positive width or height: {arr[bad[0], :4].tolist()}"
        )
    return arr
