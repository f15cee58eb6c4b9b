"""Kalman filter vs filterpy, assignment vs scipy, SORT behaviour; bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter as FilterpyKF
from scipy.optimize import linear_sum_assignment

from deepnotes.tracking.assignment import gated_assignment, linear_assignment
from deepnotes.tracking.kalman import (
    SORT_P0,
    KalmanFilter,
    box_to_measurement,
    constant_velocity_box_filter,
    measurement_to_box,
)
from deepnotes.tracking.sort import Sort

# --- Kalman filter -------------------------------------------------------------------------------


def _filterpy_sort_kf(z0: np.ndarray) -> FilterpyKF:
    """filterpy configured as SORT's reference KalmanBoxTracker does."""
    kf = FilterpyKF(dim_x=7, dim_z=4)
    kf.F = np.array(
        [[1, 0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 0],
         [0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1]], dtype=float
    )  # fmt: skip
    kf.H = np.eye(4, 7)
    kf.R[2:, 2:] *= 10.0
    kf.P[4:, 4:] *= 1000.0
    kf.P *= 10.0
    kf.Q[-1, -1] *= 0.01
    kf.Q[4:, 4:] *= 0.01
    kf.x[:4] = z0.reshape(4, 1)
    return kf


@pytest.mark.parametrize("seed", range(5))
def test_sort_filter_equals_filterpy_step_by_step(seed):
    g = np.random.default_rng(seed)
    n = 4
    boxes = np.concatenate([g.uniform(0, 50, (n, 2)), g.uniform(60, 120, (n, 2))], axis=1)
    ours = constant_velocity_box_filter()
    x0 = np.zeros((n, 7))
    x0[:, :4] = box_to_measurement(boxes)
    ours.add(x0, SORT_P0)
    refs = [_filterpy_sort_kf(z) for z in x0[:, :4]]
    for _ in range(30):
        ours.predict()
        for r in refs:
            r.predict()
        seen = np.flatnonzero(g.random(n) < 0.7)  # some tracks miss their detection
        boxes = boxes + g.normal(1.5, 2.0, boxes.shape)
        z = box_to_measurement(boxes[seen])
        ours.update(z, seen)
        for k, i in enumerate(seen):
            refs[i].update(z[k])
        for i, r in enumerate(refs):
            np.testing.assert_allclose(ours.x[i], r.x[:, 0], rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(ours.P[i], r.P, rtol=1e-10, atol=1e-10)


def test_generic_filter_equals_filterpy_on_random_model():
    g = np.random.default_rng(7)
    dx, dz = 3, 2
    F = np.eye(dx) + g.normal(0, 0.1, (dx, dx))
    H = g.normal(0, 1, (dz, dx))
    A, B = g.normal(0, 1, (dx, dx)), g.normal(0, 1, (dz, dz))
    Q, R = A @ A.T * 0.1 + np.eye(dx) * 0.01, B @ B.T + np.eye(dz)
    ours = KalmanFilter(F, H, Q, R)
    ref = FilterpyKF(dim_x=dx, dim_z=dz)
    ref.F, ref.H, ref.Q, ref.R = F, H, Q, R
    ours.add(np.zeros(dx), np.eye(dx))
    for _ in range(50):
        ours.predict()
        ref.predict()
        z = g.normal(0, 1, dz)
        ours.update(z[None], [0])
        ref.update(z)
        np.testing.assert_allclose(ours.x[0], ref.x[:, 0], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ours.P[0], ref.P, rtol=1e-10, atol=1e-10)
    d2 = ours.mahalanobis_sq(z[None])
    S = H @ ref.P @ H.T + R
    y = z - H @ ref.x[:, 0]
    assert d2[0, 0] == pytest.approx(y @ np.linalg.inv(S) @ y, rel=1e-10)


def test_box_measurement_round_trip():
    g = np.random.default_rng(0)
    xy = g.uniform(0, 100, (20, 2))
    boxes = np.concatenate([xy, xy + g.uniform(1, 50, (20, 2))], axis=1)
    np.testing.assert_allclose(measurement_to_box(box_to_measurement(boxes)), boxes, atol=1e-9)


def test_filter_rejects_bad_matrices():
    with pytest.raises(ValueError, match="F must be a square matrix"):
        KalmanFilter(np.eye(3, 2), np.eye(2), np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match=r"H must have shape \(dim_z, 3\)"):
        KalmanFilter(np.eye(3), np.eye(2), np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match=r"Q must have shape \(3, 3\)"):
        KalmanFilter(np.eye(3), np.eye(2, 3), np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="R must be finite"):
        KalmanFilter(np.eye(3), np.eye(2, 3), np.eye(3), np.full((2, 2), np.nan))


# --- assignment ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_assignment_total_cost_equals_scipy(seed):
    g = np.random.default_rng(seed)
    for _ in range(25):
        n, m = g.integers(0, 10, 2)
        cost = g.integers(0, 4, (n, m)).astype(float) if g.random() < 0.5 else g.normal(0, 5, (n, m))
        if g.random() < 0.3 and cost.size:
            cost[g.random(cost.shape) < 0.25] = np.inf
        try:
            r_ref, c_ref = linear_sum_assignment(cost)
        except ValueError:
            with pytest.raises(ValueError, match="infeasible"):
                linear_assignment(cost)
            continue
        rows, cols = linear_assignment(cost)
        assert len(rows) == len(r_ref) == min(n, m)
        assert np.all(np.diff(rows) > 0) and len(set(cols.tolist())) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(cost[r_ref, c_ref].sum(), abs=1e-9)


def test_gated_assignment_maximises_pairs_then_minimises_cost():
    g = np.random.default_rng(1)
    for _ in range(200):
        n, m = (int(v) for v in g.integers(1, 6, 2))
        cost = g.uniform(0, 1, (n, m))
        gate = 0.5
        rows, cols, urows, ucols = gated_assignment(cost, gate)
        assert np.all(cost[rows, cols] <= gate)
        assert sorted(rows.tolist() + urows.tolist()) == list(range(n))
        assert sorted(cols.tolist() + ucols.tolist()) == list(range(m))
        # brute force over every partial matching of allowed pairs
        best = (0, 0.0)
        k = min(n, m)
        for perm in itertools.permutations(range(max(n, m)), k):
            pairs = [(i, j) for i, j in zip(range(k), perm)] if n <= m else list(zip(perm, range(k)))
            ok = [(i, j) for i, j in pairs if cost[i, j] <= gate]
            cand = (len(ok), -sum(cost[i, j] for i, j in ok))
            best = max(best, cand)
        assert len(rows) == best[0]
        assert -cost[rows, cols].sum() == pytest.approx(best[1], abs=1e-12)


def test_assignment_rejects_nan_and_wrong_rank():
    with pytest.raises(ValueError, match="cost must not contain NaN"):
        linear_assignment([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="cost must be a 2-D matrix"):
        linear_assignment([1.0, 2.0])


# --- SORT ----------------------------------------------------------------------------------------


def _moving_boxes(n_frames: int, speed: float = 2.0) -> list[np.ndarray]:
    frames = []
    for t in range(n_frames):
        a = [10 + speed * t, 10, 30 + speed * t, 40, 0.9]
        b = [200 - speed * t, 100, 230 - speed * t, 130, 0.9]
        frames.append(np.array([a, b]))
    return frames


def test_sort_keeps_identities_of_separate_objects():
    sort = Sort(max_age=1, min_hits=3)
    ids = [set(sort.update(d)[:, 4].tolist()) for d in _moving_boxes(12)]
    assert ids[0] == {1.0, 2.0}  # warm-up frames report every track
    assert all(s == {1.0, 2.0} for s in ids[4:])


def test_sort_min_hits_delays_reporting_after_warm_up():
    sort = Sort(max_age=1, min_hits=3)
    for d in _moving_boxes(5):
        sort.update(d)
    new = np.array([[400, 400, 420, 420, 0.9]])
    reported = [len(sort.update(np.concatenate([d, new]))) for d in _moving_boxes(10)[5:9]]
    # the new track (streak 0 on creation) is reported on its fourth frame, as in SORT
    assert reported == [2, 2, 2, 3]


def test_sort_bridges_a_missed_frame_with_prediction():
    sort = Sort(max_age=3, min_hits=1, iou_threshold=0.3)
    frames = _moving_boxes(10, speed=6.0)
    out = []
    for t, d in enumerate(frames):
        out.append(sort.update(d[:1] if t in (5, 6) else d))
    assert set(out[9][:, 4].tolist()) == {1.0, 2.0}


def test_sort_deletes_tracks_after_max_age():
    sort = Sort(max_age=1, min_hits=1)
    sort.update(_moving_boxes(1)[0])
    sort.update(np.zeros((0, 5)))
    sort.update(np.zeros((0, 5)))
    assert len(sort.ids) == 0
    # fresh tracks get fresh ids (not reported yet: their streak starts at 0 after warm-up)
    assert len(sort.update(_moving_boxes(1)[0])) == 0
    assert sort.ids.tolist() == [3, 4]


def test_sort_rejects_non_positive_box_size():
    with pytest.raises(ValueError, match="detections row 0 has non-positive width or height"):
        Sort().update([[10, 10, 10, 20]])


def test_sort_rejects_wrong_columns():
    with pytest.raises(ValueError, match=r"detections must have shape \(N, 4\) or \(N, 5\)"):
        Sort().update(np.zeros((2, 3)))


def test_sort_rejects_bad_parameters():
    with pytest.raises(ValueError, match="iou_threshold must be <= 1"):
        Sort(iou_threshold=1.5)
    with pytest.raises(ValueError, match="max_age must be >= 0"):
        Sort(max_age=-1)
