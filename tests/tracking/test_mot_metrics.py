"""MOT metrics against motmetrics on random and hand-made sequences; bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

# motmetrics 1.4 (the newest release) still calls np.asfarray in its IoU distance; NumPy 2 removed
# it. Define that one alias (same meaning: an array of floats) before importing motmetrics.
if not hasattr(np, "asfarray"):
    np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)  # noqa: E731

import motmetrics as mm  # noqa: E402

from deepnotes.tracking.mot_metrics import mot_metrics  # noqa: E402

NAMES = [
    "mota", "motp", "idf1", "idp", "idr", "idtp", "idfp", "idfn", "num_switches",
    "num_fragmentations", "num_false_positives", "num_misses", "num_matches", "num_detections",
    "num_objects", "num_predictions", "num_unique_objects", "num_frames", "mostly_tracked",
    "partially_tracked", "mostly_lost", "precision", "recall",
]  # fmt: skip


def _df(rows: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(rows[:, :6], columns=["FrameId", "Id", "X", "Y", "Width", "Height"])
    df = df.sort_values(["FrameId", "Id"])
    return df.set_index(["FrameId", "Id"])


def _reference(gt: np.ndarray, hyp: np.ndarray, iou_threshold: float) -> dict:
    acc = mm.utils.compare_to_groundtruth(_df(gt), _df(hyp), "iou", distth=1.0 - iou_threshold)
    summary = mm.metrics.create().compute(acc, metrics=NAMES, name="seq")
    return {k: float(summary[k].iloc[0]) for k in NAMES}


def _random_sequence(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Objects moving with noise; hypotheses that jitter, drop out, swap ids and add clutter."""
    g = np.random.default_rng(seed)
    n_obj, n_frames = int(g.integers(1, 7)), int(g.integers(2, 25))
    pos = g.uniform(0, 100, size=(n_obj, 2))
    vel = g.normal(0, g.uniform(1, 6), size=(n_obj, 2))
    size = g.uniform(8, 25, size=(n_obj, 2))
    start = g.integers(0, n_frames, n_obj)
    stop = np.minimum(start + g.integers(1, n_frames + 1, n_obj), n_frames)
    hyp_id = np.arange(n_obj) + 100
    gt_rows, hyp_rows = [], []
    for f in range(n_frames):
        if g.random() < 0.15:  # a tracker that swaps two identities now and then
            a, b = g.choice(n_obj, 2) if n_obj > 1 else (0, 0)
            hyp_id[[a, b]] = hyp_id[[b, a]]
        if g.random() < 0.05:
            hyp_id[g.integers(n_obj)] = 200 + f  # a fresh id
        for o in range(n_obj):
            if not start[o] <= f < stop[o]:
                continue
            xy = pos[o] + vel[o] * f
            gt_rows.append([f + 1, o + 1, *xy, *size[o]])
            if g.random() < 0.85:
                jitter = g.normal(0, g.uniform(0.5, 6), 4)
                wh = np.maximum(size[o] + jitter[2:], 1.0)
                hyp_rows.append([f + 1, hyp_id[o], *(xy + jitter[:2]), *wh])
        for k in range(int(g.poisson(0.4))):
            hyp_rows.append([f + 1, 300 + 10 * f + k, *g.uniform(0, 100, 2), *g.uniform(8, 25, 2)])
    gt = np.array(gt_rows, dtype=np.float64).reshape(-1, 6)
    hyp = np.array(hyp_rows, dtype=np.float64).reshape(-1, 6)
    return gt, g.permutation(hyp)  # row order must not matter


def _compare(ours: dict, ref: dict) -> None:
    for k in NAMES:
        if not np.isfinite(ref[k]):
            # motmetrics divides by zero (e.g. motp with no match): ours is the documented value,
            # checked in test_sequence_without_ground_truth_gives_documented_values
            assert np.isfinite(ours[k]), k
            continue
        assert ours[k] == pytest.approx(ref[k], rel=0, abs=1e-12), k


@pytest.mark.parametrize("seed", range(40))
def test_random_sequences_equal_motmetrics(seed):
    gt, hyp = _random_sequence(seed)
    if len(gt) == 0:
        return
    thr = [0.5, 0.3, 0.7][seed % 3]
    _compare(mot_metrics(gt, hyp, iou_threshold=thr), _reference(gt, hyp, thr))


def test_hand_made_switch_and_fragmentation():
    # object 1 tracked by hypothesis 10 for two frames, missed, then picked up by hypothesis 11
    box = [0, 0, 10, 10]
    gt = np.array([[f, 1, *box] for f in range(1, 6)], float)
    hyp = np.array([[1, 10, *box], [2, 10, *box], [4, 11, *box], [5, 11, *box]], float)
    ours = mot_metrics(gt, hyp)
    assert ours["num_switches"] == 1 and ours["num_fragmentations"] == 1
    assert ours["num_misses"] == 1 and ours["num_false_positives"] == 0
    assert ours["mota"] == pytest.approx(1 - 2 / 5)
    assert ours["idf1"] == pytest.approx(2 * 2 / 9)  # best identity pairing covers two frames
    _compare(ours, _reference(gt, hyp, 0.5))


def test_hand_made_keeps_previous_match_over_a_closer_box():
    # frame 2: hypothesis 11 overlaps object 1 better, but 10 (last frame's match) still pairs
    gt = np.array([[1, 1, 0, 0, 10, 10], [2, 1, 0, 0, 10, 10]], float)
    hyp = np.array([[1, 10, 0, 0, 10, 10], [2, 10, 2, 0, 10, 10], [2, 11, 0, 0, 10, 10]], float)
    ours = mot_metrics(gt, hyp)
    assert ours["num_switches"] == 0 and ours["num_false_positives"] == 1
    _compare(ours, _reference(gt, hyp, 0.5))


def test_iou_exactly_at_threshold_pairs():
    # IoU of [0,0,10,10] and [0,0,20,10] is exactly 0.5
    gt = np.array([[1, 1, 0, 0, 10, 10]], float)
    hyp = np.array([[1, 5, 0, 0, 20, 10]], float)
    ours = mot_metrics(gt, hyp, iou_threshold=0.5)
    assert ours["num_matches"] == 1 and ours["motp"] == 0.5
    _compare(ours, _reference(gt, hyp, 0.5))


def test_sequence_without_ground_truth_gives_documented_values():
    hyp = np.array([[1, 1, 0, 0, 5, 5]], float)
    out = mot_metrics(np.zeros((0, 6)), hyp)
    assert out["mota"] == 0.0 and out["idf1"] == 0.0 and out["num_false_positives"] == 1
    assert out["motp"] == 1.0
    both_empty = mot_metrics(np.zeros((0, 6)), np.zeros((0, 6)))
    assert both_empty["mota"] == 1.0 and both_empty["idf1"] == 1.0
    assert not any(np.isnan(v) for v in out.values())


def test_row_order_does_not_matter():
    gt, hyp = _random_sequence(3)
    g = np.random.default_rng(0)
    assert mot_metrics(gt, hyp) == mot_metrics(g.permutation(gt), g.permutation(hyp))


def test_duplicate_frame_id_rows_raise():
    gt = np.array([[1, 1, 0, 0, 5, 5], [1, 1, 3, 3, 5, 5]], float)
    with pytest.raises(ValueError, match="gt has two rows for frame 1, id 1"):
        mot_metrics(gt, gt[:1])


def test_non_positive_size_raises():
    hyp = np.array([[1, 1, 0, 0, 0, 5]], float)
    with pytest.raises(ValueError, match="hyp row 0 has non-positive width or height"):
        mot_metrics(hyp[:, :6] + [0, 0, 0, 0, 1, 0], hyp)


def test_too_few_columns_raise():
    with pytest.raises(ValueError, match=r"gt must have shape \(N, >= 6\)"):
        mot_metrics(np.zeros((2, 5)), np.zeros((0, 6)))


def test_nan_rows_raise():
    gt = np.array([[1, 1, np.nan, 0, 5, 5]])
    with pytest.raises(ValueError, match="gt must be finite"):
        mot_metrics(gt, gt)


def test_bad_iou_threshold_raises():
    with pytest.raises(ValueError, match="iou_threshold must be > 0"):
        mot_metrics(np.zeros((0, 6)), np.zeros((0, 6)), iou_threshold=0.0)
