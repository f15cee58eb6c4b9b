"""The detection bench cases build in quick mode, and each checks ours == the reference first."""

import pytest

from deepnotes.bench.runner import select_cases

CASES = [
    "nms",
    "nms_clustered",
    "batched_nms",
    "box_iou",
    "giou_loss",
    "diou_loss",
    "ciou_loss",
    "coco_map",
]


@pytest.mark.parametrize("name", CASES)
def test_case_builds_and_runs_once(name):
    (case,) = select_cases([name])
    items = case.func(True)  # raises if ours and the reference disagree
    assert items
    for item in items:
        item.ours()
        item.reference()
