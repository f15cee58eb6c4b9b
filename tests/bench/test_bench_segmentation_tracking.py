"""The segmentation / tracking bench cases build, and each side computes the same thing."""

from __future__ import annotations

import numpy as np
import pytest

from deepnotes.bench.cases.segmentation_tracking import (
    assignment_case,
    assignment_fast_case,
    mean_iou_case,
    mot_metrics_case,
)


def test_mean_iou_case_agrees_with_torchmetrics():
    (item,) = mean_iou_case(quick=True)
    assert item.ours() == pytest.approx(float(item.reference()), rel=1e-6)


def test_assignment_case_agrees_with_scipy():
    for item in assignment_case(quick=True):
        (r1, c1), (r2, c2) = item.ours(), item.reference()
        n = len(r1)
        cost = np.random.default_rng(n).random((n, n))
        assert cost[r1, c1].sum() == pytest.approx(cost[r2, c2].sum(), abs=1e-9)


def test_assignment_fast_case_agrees_with_scipy():
    for item in assignment_fast_case(quick=True):
        n, m = (int(v) for v in item.size.split("x"))
        cost = np.random.default_rng(n * m).random((n, m))
        (r1, c1), (r2, c2) = item.ours(), item.reference()
        assert len(r1) == min(n, m)
        assert cost[r1, c1].sum() == pytest.approx(cost[r2, c2].sum(), abs=1e-9)


def test_mot_metrics_case_agrees_with_motmetrics():
    (item,) = mot_metrics_case(quick=True)
    ours, ref = item.ours(), item.reference()
    for name in ("mota", "motp", "idf1", "num_switches"):
        assert ours[name] == pytest.approx(float(ref[name].iloc[0]), abs=1e-12), name
