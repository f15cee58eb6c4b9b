"""DeepSORT-style tracker: cascade order, appearance at crossings, re-identification, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from deepnotes.tracking.deepsort import CHI2_95_4DOF, DeepSortTracker


def test_gating_constant_is_the_chi2_quantile():
    assert CHI2_95_4DOF == pytest.approx(chi2.ppf(0.95, 4), rel=1e-12)


def _crossing(n_frames: int = 30):
    """Two objects of different appearance swapping sides horizontally at the same height."""
    boxes, feats = [], []
    for t in range(n_frames):
        xa, xb = 10 + 6 * t, 190 - 6 * t
        boxes.append(np.array([[xa, 50, xa + 20, 80], [xb, 52, xb + 20, 82]], float))
        feats.append(np.array([[1.0, 0.0, 0.1], [0.0, 1.0, 0.1]]))
    return boxes, feats


def _ids_by_object(out: np.ndarray, boxes: np.ndarray) -> list[float]:
    """Reported id of each object (matched by nearest left edge; objects well apart)."""
    return [float(out[np.argmin(np.abs(out[:, 0] - b[0])), 4]) for b in boxes]


def test_deepsort_keeps_identities_through_a_crossing():
    boxes, feats = _crossing()
    tracker = DeepSortTracker(n_init=2, max_age=5)
    outs = [tracker.update(b, f) for b, f in zip(boxes, feats)]
    before = _ids_by_object(outs[5], boxes[5])
    after = _ids_by_object(outs[-1], boxes[-1])
    assert before == after and len(set(before)) == 2


def test_deepsort_reidentifies_after_a_gap_by_appearance():
    tracker = DeepSortTracker(n_init=1, max_age=10)
    box = np.array([[50, 50, 70, 80]], float)
    feat = np.array([[0.3, 0.9, 0.1]])
    ids = [tracker.update(box, feat)[:, 4].tolist() for _ in range(3)]
    for _ in range(4):  # unseen for 4 frames: IoU round no longer applies, the cascade does
        tracker.update(np.zeros((0, 4)), np.zeros((0, 3)))
    back = tracker.update(box + 2, feat)
    assert ids == [[1.0]] * 3 and back[:, 4].tolist() == [1.0]


def test_deepsort_tentative_track_dies_at_first_miss():
    tracker = DeepSortTracker(n_init=3)
    tracker.update([[0, 0, 10, 10]], [[1.0, 0.0]])
    tracker.update(np.zeros((0, 4)), np.zeros((0, 2)))
    assert len(tracker.ids) == 0


def test_deepsort_confirmed_track_deleted_after_max_age():
    tracker = DeepSortTracker(n_init=1, max_age=2)
    tracker.update([[0, 0, 10, 10]], [[1.0, 0.0]])
    for _ in range(3):
        tracker.update(np.zeros((0, 4)), np.zeros((0, 2)))
    assert len(tracker.ids) == 0


def test_deepsort_keeps_identities_when_one_object_is_missed_during_the_crossing():
    boxes, feats = _crossing()
    drop = set(range(14, 19))
    tracker = DeepSortTracker(n_init=1, max_age=10)
    for t, (b, f) in enumerate(zip(boxes, feats)):
        keep = [0] if t in drop else [0, 1]
        out = tracker.update(b[keep], f[keep])
    # object 0 (id 1) started on the left and ends on the right
    assert _ids_by_object(out, boxes[-1]) == [1.0, 2.0]


def test_deepsort_rejects_feature_rows_mismatch():
    with pytest.raises(ValueError, match=r"features must have one row per box \(2\)"):
        DeepSortTracker().update([[0, 0, 5, 5], [1, 1, 6, 6]], [[1.0, 0.0]])


def test_deepsort_rejects_non_positive_box():
    with pytest.raises(ValueError, match="boxes row 0 has non-positive width or height"):
        DeepSortTracker().update([[0, 0, 0, 5]], [[1.0]])


def test_deepsort_rejects_nan_features():
    with pytest.raises(ValueError, match="features must be finite"):
        DeepSortTracker().update([[0, 0, 5, 5]], [[np.nan]])
