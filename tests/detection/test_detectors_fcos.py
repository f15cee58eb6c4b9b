"""FCOS: location targets (inside the box, size range of the level, smallest box wins, per image)
and centerness against values worked out by hand; training on images without any object."""

import math

import pytest
import torch

from deepnotes.detection.models import FCOS, centerness_target, fcos_locations, fcos_targets


def test_fcos_locations_are_cell_centres_per_level():
    points, level = fcos_locations([(2, 2), (1, 1)], (8, 16))
    assert points.tolist() == [[4, 4], [12, 4], [4, 12], [12, 12], [8, 8]]
    assert level.tolist() == [0, 0, 0, 0, 1]


def test_fcos_targets_by_hand():
    points, level = fcos_locations([(2, 2), (1, 1)], (8, 16))
    ranges = ((0.0, 8.0), (8.0, math.inf))
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0],   # image 0, small: level 0
                          [2.0, 2.0, 15.0, 15.0],   # image 0, larger, overlapping it
                          [1.0, 1.0, 16.0, 16.0]])  # image 1, reaches 15 px from (8, 8): level 1
    labels = torch.tensor([0, 2, 1])
    cls, reg = fcos_targets(points, level, ranges, boxes, labels, torch.tensor([0, 0, 1]), 2)
    # image 0 — (4, 4): inside both; box 0's l, t, r, b = 4, 4, 6, 6 (reach 6, level 0's range),
    # box 1's = 2, 2, 11, 11 (reach 11, too large for level 0) → box 0, class 0.
    # (12, 4): outside box 0 (r = −2); box 1's reach 11 → background. (4, 12) likewise.
    # (12, 12): box 1's reach 10 → background. Level 1 (8, 8): reaches 8 and 7, not > 8 → background.
    assert cls[0].tolist() == [0, -1, -1, -1, -1]
    assert reg[0, 0].tolist() == [4.0, 4.0, 6.0, 6.0]
    # image 1: only its own box; at (8, 8) distances 7, 7, 8, 8 → reach 8 ≤ 8 is level 0's range,
    # so the level-1 location stays background; (4, 4): 3, 3, 12, 12 → reach 12 — not level 0
    assert cls[1].tolist() == [-1, -1, -1, -1, -1]
    wide = ((0.0, 8.0), (7.0, math.inf))
    cls, reg = fcos_targets(points, level, wide, boxes, labels, torch.tensor([0, 0, 1]), 2)
    assert cls[1, 4] == 1 and reg[1, 4].tolist() == [7.0, 7.0, 8.0, 8.0]


def test_fcos_smallest_box_wins():
    points, level = fcos_locations([(1, 1)], (16,))
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [4.0, 4.0, 12.0, 12.0], [0.0, 0.0, 14.0, 14.0]])
    cls, _ = fcos_targets(points, level, ((0.0, math.inf),), boxes, torch.tensor([0, 1, 2]), torch.zeros(3, dtype=torch.int64), 1)
    assert cls.tolist() == [[1]]


def test_centerness_by_hand():
    ltrb = torch.tensor([[4.0, 4.0, 4.0, 4.0], [2.0, 3.0, 8.0, 1.0]], dtype=torch.float64)
    want = [1.0, math.sqrt(2 / 8 * 1 / 3)]
    assert centerness_target(ltrb).tolist() == pytest.approx(want, rel=1e-12)


def test_fcos_trains_on_images_without_objects():
    torch.manual_seed(0)
    model = FCOS((3, 32, 32), 3, width=8)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    terms = model(torch.rand(2, 3, 32, 32), [empty, empty])
    assert all(math.isfinite(float(v.detach())) for v in terms.values())
    sum(terms.values()).backward()
    assert float(terms["loss_box"].detach()) == 0 and float(terms["loss_cls"].detach()) > 0
