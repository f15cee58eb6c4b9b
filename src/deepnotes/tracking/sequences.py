"""Tracking inputs from ``shapes`` sequences: ground truth, noisy detections, appearance features.

:func:`shapes_sequence_detections` turns a :class:`~deepnotes.data.shapes.ShapesSequence` into what
a tracker sees and what it is scored against, all as MOTChallenge rows (``frame`` from 1,
``x, y, w, h``):

* ground truth — every visible object with its track id;
* detections — the ground-truth boxes with each side jittered by ``jitter`` pixels (std), each
  object missed with probability ``miss_rate``, and ``false_positives`` random boxes per frame
  on average;
* appearance features — :func:`colour_features` of each detection's crop in the frame.

:func:`run_tracker` feeds the detections frame by frame to a SORT or DeepSORT-style tracker and
returns its output rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepnotes.core.checks import check_float, check_probability

__all__ = ["colour_features", "run_tracker", "shapes_sequence_detections"]


def colour_features(frame: torch.Tensor | np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
    """Appearance of each box: mean and std of the RGB values in its central half, centred at 0.5.

    frame (3, H, W) in [0, 1]; boxes (N, 4) ``xyxy`` → (N, 6). The centre keeps most of the
    background out of the crop; the features are not normalised (the tracker does that).
    """
    img = frame.numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    out = np.zeros((len(boxes_xyxy), 6))
    h, w = img.shape[1:]
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes_xyxy, dtype=np.float64)):
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, max((x2 - x1) / 4, 1), max((y2 - y1) / 4, 1)
        xa, xb = int(np.clip(cx - hw, 0, w - 1)), int(np.clip(np.ceil(cx + hw), 1, w))
        ya, yb = int(np.clip(cy - hh, 0, h - 1)), int(np.clip(np.ceil(cy + hh), 1, h))
        crop = img[:, ya:max(yb, ya + 1), xa:max(xb, xa + 1)].reshape(3, -1)
        out[i] = np.concatenate([crop.mean(1) - 0.5, crop.std(1)])
    return out


def shapes_sequence_detections(
    sequence: Any,
    miss_rate: float = 0.1,
    jitter: float = 1.0,
    false_positives: float = 0.0,
    seed: int = 0,
    with_features: bool = True,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Ground-truth rows (N, 6), and per frame: detections ``xyxy`` (M, 4) and features (M, 6)."""
    miss_rate = check_probability("miss_rate", miss_rate)
    jitter = check_float("jitter", jitter, min=0.0)
    false_positives = check_float("false_positives", false_positives, min=0.0)
    g = np.random.default_rng(seed)
    size = sequence.image_size
    gt_rows, dets, feats = [], [], []
    for t in range(len(sequence)):
        frame, target = sequence[t]
        boxes = target["boxes"].numpy().astype(np.float64)
        ids = target["track_ids"].numpy()
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        gt_rows.append(np.column_stack([np.full(len(ids), t + 1), ids, xywh]))
        keep = g.random(len(boxes)) >= miss_rate
        d = boxes[keep] + g.normal(0.0, jitter, (int(keep.sum()), 4))
        n_fp = int(g.poisson(false_positives))
        if n_fp:
            xy = g.uniform(0, size * 0.8, (n_fp, 2))
            d = np.concatenate([d, np.concatenate([xy, xy + g.uniform(8, size * 0.2, (n_fp, 2))], 1)])
        # keep every box valid (positive size, inside the image)
        d = np.clip(d, 0, size)
        d[:, 2:] = np.maximum(d[:, 2:], d[:, :2] + 1.0)
        dets.append(d)
        feats.append(colour_features(frame, d) if with_features else np.zeros((len(d), 6)))
    return np.concatenate(gt_rows).reshape(-1, 6), dets, feats


def run_tracker(tracker: Any, detections: list[np.ndarray], features: list[np.ndarray] | None = None) -> np.ndarray:
    """Feed frames to ``tracker`` (``Sort``: boxes only; ``DeepSortTracker``: boxes and features);
    output rows ``frame, id, x, y, w, h`` (frames from 1)."""
    rows = []
    for t, d in enumerate(detections):
        out = tracker.update(d) if features is None else tracker.update(d, features[t])
        if len(out):
            xywh = np.concatenate([out[:, :2], out[:, 2:4] - out[:, :2]], axis=1)
            ok = (xywh[:, 2] > 0) & (xywh[:, 3] > 0)  # a collapsed predicted box is not reported
            rows.append(np.column_stack([np.full(int(ok.sum()), t + 1), out[ok, 4], xywh[ok]]))
    return np.concatenate(rows) if rows else np.zeros((0, 6))
