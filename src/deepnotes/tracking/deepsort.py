"""A DeepSORT-style tracker: appearance embeddings, Mahalanobis gating and a matching cascade.

DeepSORT (Wojke et al., 2017) adds appearance to SORT. Each frame, as named steps:

1. **predict** every track with DeepSORT's constant-velocity Kalman filter over
   ``(cx, cy, a, h)`` (centre, aspect ``w/h``, height) and their velocities, whose noise scales
   with the box height (std 1/20 of the height for positions, 1/160 for velocities), so the
   Mahalanobis gate means the same for small and large boxes;
2. **cascade**: confirmed tracks are matched to detections by *appearance* — the smallest cosine
   distance between a detection's embedding and the track's last ``budget`` embeddings — with pairs
   forbidden when the detection is implausible for the track's motion (squared Mahalanobis distance
   of the measurement above ``gating_threshold``, the 95 % χ² quantile for 4 degrees of freedom)
   or when the appearance distance exceeds ``max_cosine_distance``. Tracks seen most recently are
   matched first (one round per ``time_since_update``), so a long-lost track cannot steal a
   detection from a track that was there a frame ago;
3. **IoU**: tentative tracks and confirmed ones missed for one frame only are matched to the
   remaining detections by ``1 − IoU`` (as in SORT), gated at ``max_iou_distance``;
4. **update** matched tracks (and store the embedding), start tentative tracks from unmatched
   detections; a tentative track becomes confirmed after ``n_init`` consecutive hits and is
   deleted at its first miss; a confirmed track is deleted after ``max_age`` missed frames.

``update(boxes, features)`` returns the confirmed tracks updated this frame as rows
``x1, y1, x2, y2, track_id``. Embeddings come from any model (a small CNN trained on crops, a
colour histogram); they are L2-normalised here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_float, check_int
from deepnotes.tracking._boxes import check_boxes, iou_xyxy
from deepnotes.tracking.assignment_fast import fast_gated_assignment
from deepnotes.tracking.kalman import KalmanFilter

__all__ = ["CHI2_95_4DOF", "DeepSortTracker", "xyah_to_xyxy", "xyxy_to_xyah"]

# 95 % quantile of the χ² distribution with 4 degrees of freedom (scipy.stats.chi2.ppf(0.95, 4))
CHI2_95_4DOF = 9.487729036781154
# DeepSORT's noise scales, as fractions of the box height
STD_POSITION, STD_VELOCITY = 1.0 / 20, 1.0 / 160


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """``(x1, y1, x2, y2)`` → ``(cx, cy, w / h, h)``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w / h, h], axis=1)


def xyah_to_xyxy(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64).reshape(-1, 4)
    h = np.maximum(m[:, 3], 0.0)
    w = np.maximum(m[:, 2], 0.0) * h
    return np.stack([m[:, 0] - w / 2, m[:, 1] - h / 2, m[:, 0] + w / 2, m[:, 1] + h / 2], axis=1)


def _diag(std: np.ndarray) -> np.ndarray:
    """Batch of diagonal covariances from standard deviations (M, d) → (M, d, d)."""
    return np.einsum("mi,ij->mij", std**2, np.eye(std.shape[1]))


class _Motion:
    """DeepSORT's 8-state filter: a :class:`KalmanFilter` whose Q and R scale with each box height."""

    def __init__(self, std_position: float = STD_POSITION, std_velocity: float = STD_VELOCITY) -> None:
        self.sp, self.sv = std_position, std_velocity
        F = np.eye(8)
        F[:4, 4:] = np.eye(4)
        self.kf = KalmanFilter(F, np.eye(4, 8), np.zeros((8, 8)), np.zeros((4, 4)))

    def add(self, xyah: np.ndarray) -> None:
        h = xyah[:, 3:4]
        std = np.concatenate(
            [2 * self.sp * h, 2 * self.sp * h, np.full_like(h, 1e-2), 2 * self.sp * h,
             10 * self.sv * h, 10 * self.sv * h, np.full_like(h, 1e-5), 10 * self.sv * h],
            axis=1,
        )  # fmt: skip
        self.kf.add(np.concatenate([xyah, np.zeros_like(xyah)], axis=1), _diag(std))

    def predict(self) -> None:
        h = self.kf.x[:, 3:4]
        std = np.concatenate(
            [self.sp * h, self.sp * h, np.full_like(h, 1e-2), self.sp * h,
             self.sv * h, self.sv * h, np.full_like(h, 1e-5), self.sv * h],
            axis=1,
        )  # fmt: skip
        self.kf.predict(Q=_diag(std))

    def measurement_noise(self, rows: np.ndarray) -> np.ndarray:
        h = self.kf.x[rows, 3:4]
        return _diag(np.concatenate([self.sp * h, self.sp * h, np.full_like(h, 1e-1), self.sp * h], 1))

    def boxes(self, rows: Any = slice(None)) -> np.ndarray:
        return xyah_to_xyxy(self.kf.x[rows, :4])


class DeepSortTracker:
    """Online tracker matching by appearance first, then by IoU (see the module docstring)."""

    def __init__(
        self,
        max_cosine_distance: float = 0.2,
        budget: int = 100,
        max_iou_distance: float = 0.7,
        max_age: int = 30,
        n_init: int = 3,
        gating_threshold: float = CHI2_95_4DOF,
        std_weight_position: float = STD_POSITION,
        std_weight_velocity: float = STD_VELOCITY,
    ):
        self.max_cosine_distance = check_float("max_cosine_distance", max_cosine_distance, min=0.0, max=2.0)
        self.budget = check_int("budget", budget, min=1)
        self.max_iou_distance = check_float("max_iou_distance", max_iou_distance, min=0.0, max=1.0)
        self.max_age = check_int("max_age", max_age, min=1)
        self.n_init = check_int("n_init", n_init, min=1)
        self.gating_threshold = check_float("gating_threshold", gating_threshold, min=0.0)
        self.std_weight_position = check_float("std_weight_position", std_weight_position, min=0.0, min_inclusive=False)
        self.std_weight_velocity = check_float("std_weight_velocity", std_weight_velocity, min=0.0, min_inclusive=False)
        self.reset()

    def reset(self) -> None:
        self.motion = _Motion(self.std_weight_position, self.std_weight_velocity)
        self.ids = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int64)
        self.time_since_update = np.zeros(0, np.int64)
        self.confirmed = np.zeros(0, bool)
        self.gallery: list[np.ndarray] = []  # per track: (<= budget, D) unit embeddings
        self._next_id = 1

    # --- costs -----------------------------------------------------------------------------------

    def _appearance_cost(self, tracks: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """Smallest cosine distance (tracks, detections) between a detection and a track's gallery."""
        galleries = [self.gallery[t] for t in tracks]
        sizes = np.array([len(g) for g in galleries])
        sims = np.concatenate(galleries) @ feats.T  # (Σ gallery sizes, detections)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return 1.0 - np.maximum.reduceat(sims, starts, axis=0)

    def _match(self, tracks, dets, cost, max_cost):
        rows, cols, _, _ = fast_gated_assignment(cost, max_cost)
        return tracks[rows], dets[cols]

    # --- steps -----------------------------------------------------------------------------------

    def _cascade(self, boxes: np.ndarray, feats: np.ndarray):
        free = np.arange(len(boxes))
        matched_t, matched_d = [], []
        if not len(free) or not self.confirmed.any():
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        everyone = np.arange(len(self.ids))
        d2 = self.motion.kf.mahalanobis_sq(xyxy_to_xyah(boxes), everyone, self.motion.measurement_noise(everyone))
        gate = d2 > self.gating_threshold
        for age in range(1, self.max_age + 1):
            if not len(free):
                break
            tracks = np.flatnonzero(self.confirmed & (self.time_since_update == age))
            if not len(tracks):
                continue
            cost = self._appearance_cost(tracks, feats[free])
            cost[gate[np.ix_(tracks, free)]] = np.inf
            t, d = self._match(tracks, free, cost, self.max_cosine_distance)
            matched_t.append(t)
            matched_d.append(d)
            free = np.setdiff1d(free, d)
        if not matched_t:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(matched_t), np.concatenate(matched_d)

    def _iou_round(self, boxes: np.ndarray, taken_t: np.ndarray, taken_d: np.ndarray):
        cand = (~self.confirmed) | (self.time_since_update == 1)
        cand[taken_t] = False
        tracks = np.flatnonzero(cand)
        dets = np.setdiff1d(np.arange(len(boxes)), taken_d)
        if not len(tracks) or not len(dets):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        predicted = self.motion.boxes(tracks)
        cost = 1.0 - iou_xyxy(predicted, boxes[dets])
        return self._match(tracks, dets, cost, self.max_iou_distance)

    def update(self, boxes: Any, features: Any) -> np.ndarray:
        """One frame: ``boxes (N, 4)`` ``xyxy`` detections and their embeddings ``features (N, D)``."""
        boxes = check_boxes("boxes", np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        feats = np.asarray(features, dtype=np.float64)
        if feats.size == 0 and len(boxes) == 0:
            feats = np.zeros((0, 1))
        if feats.ndim != 2 or len(feats) != len(boxes):
            raise ValueError(f"features must have one row per box ({len(boxes)}), got {feats.shape}")
        if not np.isfinite(feats).all():
            raise ValueError("features must be finite (found NaN or inf)")
        norms = np.linalg.norm(feats, axis=1, keepdims=True)
        feats = np.divide(feats, norms, out=np.zeros_like(feats), where=norms > 0)

        self.motion.predict()
        self.time_since_update += 1
        t1, d1 = self._cascade(boxes, feats)
        t2, d2 = self._iou_round(boxes, t1, d1)
        tracks, dets = np.concatenate([t1, t2]), np.concatenate([d1, d2])

        if len(tracks):
            self.motion.kf.update(xyxy_to_xyah(boxes[dets]), tracks, self.motion.measurement_noise(tracks))
            self.time_since_update[tracks] = 0
            self.hits[tracks] += 1
            for t, d in zip(tracks.tolist(), dets.tolist()):
                self.gallery[t] = np.concatenate([self.gallery[t], feats[d : d + 1]])[-self.budget :]
        self.confirmed |= self.hits >= self.n_init
        self._start_tracks(boxes, feats, np.setdiff1d(np.arange(len(boxes)), dets))

        out_rows = self.confirmed & (self.time_since_update == 0)
        out = np.concatenate([self.motion.boxes(out_rows), self.ids[out_rows, None]], axis=1)
        missed_tentative = ~self.confirmed & (self.time_since_update > 0)
        self._keep(~missed_tentative & (self.time_since_update <= self.max_age))
        return out

    def _start_tracks(self, boxes: np.ndarray, feats: np.ndarray, dets: np.ndarray) -> None:
        n = len(dets)
        self.motion.add(xyxy_to_xyah(boxes[dets]))
        self.ids = np.concatenate([self.ids, self._next_id + np.arange(n)])
        self._next_id += n
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.time_since_update = np.concatenate([self.time_since_update, np.zeros(n, np.int64)])
        self.confirmed = np.concatenate([self.confirmed, np.full(n, self.n_init <= 1)])
        self.gallery.extend(feats[d : d + 1] for d in dets.tolist())

    def _keep(self, mask: np.ndarray) -> None:
        self.motion.kf.keep(mask)
        self.ids, self.hits = self.ids[mask], self.hits[mask]
        self.time_since_update, self.confirmed = self.time_since_update[mask], self.confirmed[mask]
        self.gallery = [g for g, k in zip(self.gallery, mask.tolist()) if k]
