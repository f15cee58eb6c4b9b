"""SORT: Kalman-predicted boxes matched to detections by IoU (Bewley et al., 2016).

Every frame, as named steps:

1. **predict** each track's box one frame ahead with the constant-velocity Kalman filter;
2. **associate** predictions and detections: maximise the number of pairs with
   ``IoU >= iou_threshold``, then their total IoU (gated assignment on ``−IoU``, solved by the fast path
   :func:`~deepnotes.tracking.assignment_fast.fast_gated_assignment`);
3. **update** matched tracks with their detection; start a track for each unmatched detection;
4. **report** tracks updated this frame that have ``min_hits`` consecutive hits (or all of them
   during the first ``min_hits`` frames), and **delete** tracks unseen for more than ``max_age``.

The reference implementation drops low-IoU pairs after an unconstrained assignment; gating first
never matches fewer pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_int, check_probability
from deepnotes.tracking._boxes import check_boxes, iou_xyxy
from deepnotes.tracking.assignment_fast import fast_gated_assignment
from deepnotes.tracking.kalman import (
    SORT_P0,
    box_to_measurement,
    constant_velocity_box_filter,
    measurement_to_box,
)

__all__ = ["Sort"]


class Sort:
    """Online multi-object tracker.

    Parameters
    ----------
    max_age : int
        Frames a track survives without a matched detection.
    min_hits : int
        Consecutive matched frames before a track is reported.
    iou_threshold : float
        Least IoU of a predicted box and a detection for them to match.

    ``update(detections)`` takes the frame's detections ``(N, 4)`` or ``(N, 5)`` rows
    ``x1, y1, x2, y2[, score]`` (an empty array for a frame without detections) and returns the
    reported tracks ``(M, 5)``: ``x1, y1, x2, y2, track_id`` with ids from 1.

    >>> sort = Sort(max_age=1, min_hits=1)
    >>> out = [sort.update([[10 + 2 * t, 10, 30 + 2 * t, 40]]) for t in range(4)]
    >>> [int(row[0, 4]) for row in out]
    [1, 1, 1, 1]
    """

    def __init__(self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3):
        self.max_age = check_int("max_age", max_age, min=0)
        self.min_hits = check_int("min_hits", min_hits, min=0)
        self.iou_threshold = check_probability("iou_threshold", iou_threshold)
        self.reset()

    def reset(self) -> None:
        self.kf = constant_velocity_box_filter()
        self.ids = np.zeros(0, dtype=np.int64)
        self.time_since_update = np.zeros(0, dtype=np.int64)
        self.hit_streak = np.zeros(0, dtype=np.int64)
        self.frame_count = 0
        self._next_id = 1

    # --- steps -----------------------------------------------------------------------------------

    def _predict(self) -> np.ndarray:
        # an area about to turn negative stops shrinking (as in the reference implementation)
        shrinking = self.kf.x[:, 6] + self.kf.x[:, 2] <= 0
        self.kf.x[shrinking, 6] = 0.0
        self.kf.predict()
        self.hit_streak[self.time_since_update > 0] = 0
        self.time_since_update += 1
        return measurement_to_box(self.kf.x[:, :4])

    def _associate(self, boxes: np.ndarray, predicted: np.ndarray):
        iou = iou_xyxy(boxes, predicted)
        return fast_gated_assignment(-iou, -self.iou_threshold)

    def _start_tracks(self, boxes: np.ndarray) -> None:
        x0 = np.zeros((len(boxes), 7))
        x0[:, :4] = box_to_measurement(boxes)
        self.kf.add(x0, SORT_P0)
        n = len(boxes)
        self.ids = np.concatenate([self.ids, self._next_id + np.arange(n)])
        self._next_id += n
        self.time_since_update = np.concatenate([self.time_since_update, np.zeros(n, np.int64)])
        self.hit_streak = np.concatenate([self.hit_streak, np.zeros(n, np.int64)])

    def update(self, detections: Any = None) -> np.ndarray:
        dets = np.asarray([] if detections is None else detections, dtype=np.float64)
        if dets.size == 0:
            dets = dets.reshape(0, 5)
        if dets.ndim != 2 or dets.shape[1] not in (4, 5):
            raise ValueError(f"detections must have shape (N, 4) or (N, 5), got {dets.shape}")
        boxes = check_boxes("detections", dets[:, :4])
        self.frame_count += 1

        predicted = self._predict()
        det_rows, trk_rows, unmatched_dets, _ = self._associate(boxes, predicted)

        if len(det_rows):
            self.kf.update(box_to_measurement(boxes[det_rows]), trk_rows)
            self.time_since_update[trk_rows] = 0
            self.hit_streak[trk_rows] += 1
        # a new track starts with a streak of 0, as in the reference implementation: with
        # min_hits=3 it is first reported on its fourth frame (after the warm-up frames)
        self._start_tracks(boxes[unmatched_dets])

        reported = (self.time_since_update == 0) & (
            (self.hit_streak >= self.min_hits) | (self.frame_count <= self.min_hits)
        )
        out = np.concatenate(
            [measurement_to_box(self.kf.x[reported, :4]), self.ids[reported, None]], axis=1
        )
        alive = self.time_since_update <= self.max_age
        self.kf.keep(alive)
        self.ids, self.time_since_update, self.hit_streak = (
            self.ids[alive],
            self.time_since_update[alive],
            self.hit_streak[alive],
        )
        return out
