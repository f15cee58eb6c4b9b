"""The detectors (FCOS's own targets in test_detectors_fcos.py): YOLOv1's loss against values computed by hand on a 2 × 2 grid, CenterNet's
targets, heatmap loss (against a plain loop) and peak extraction, each detector's output format,
its bad input, and that each one's loss falls when it trains a few steps on a handful of images."""

import math

import pytest
import torch

from deepnotes.core.registry import MODELS
from deepnotes.detection.models import (
    FCOS,
    CenterNet,
    YOLOv1,
    centernet_heatmap_loss,
    centernet_targets,
    gaussian_radius,
    yolov1_assign,
    yolov1_loss,
)

from ._helpers import assert_detections, assert_rejects, detect, few_images, no_objects, train_steps


def _grid_2x2(box0=(0.5, 0.5, 0.25, 0.25, 0.6), box1=(0.0, 0.0, 0.25, 0.25, 0.3)):
    """A 2 × 2 grid, B = 2, C = 2, image 4 × 4 px (cells of 2 px). Cell (0, 0) holds two boxes and
    the class probabilities (0.7, 0.3); the other cells' confidences are 0.1 … 0.5 and 0."""
    pred = torch.zeros(1, 2, 2, 12, dtype=torch.float64)
    pred[0, 0, 0, :5] = torch.tensor(box0, dtype=torch.float64)
    pred[0, 0, 0, 5:10] = torch.tensor(box1, dtype=torch.float64)
    pred[0, 0, 0, 10:] = torch.tensor([0.7, 0.3], dtype=torch.float64)
    for (r, c), (a, b) in {(0, 1): (0.1, 0.2), (1, 0): (0.3, 0.4), (1, 1): (0.5, 0.0)}.items():
        pred[0, r, c, 4], pred[0, r, c, 9] = a, b
        pred[0, r, c, 5:10:5] = 0.5  # boxes elsewhere are irrelevant: no object in these cells
        pred[0, r, c, 10:] = torch.tensor([0.5, 0.5], dtype=torch.float64)
    return pred


# the object: xyxy (0.5, 0.5, 1.5, 2.5) → centre (1, 1.5) px → cell (0, 0), offsets (0.5, 0.75),
# size (0.25, 0.5) of the image, class 1
TARGET = [{"boxes": torch.tensor([[0.5, 0.5, 1.5, 2.5]]), "labels": torch.tensor([1])}]


def test_yolov1_loss_by_hand_on_a_2x2_grid():
    terms = yolov1_loss(_grid_2x2(), TARGET, num_boxes=2, image_hw=(4, 4))
    # box 0 is (0.5, 0.5)-(1.5, 1.5) px: IoU with the object 1 / 2; box 1 is (-0.5, -0.5)-(0.5, 0.5):
    # IoU 0 — box 0 is responsible, its confidence target is 0.5
    by_hand = {
        "loss_xy": 5 * ((0.5 - 0.5) ** 2 + (0.5 - 0.75) ** 2),
        "loss_wh": 5 * ((math.sqrt(0.25) - math.sqrt(0.25)) ** 2 + (math.sqrt(0.25) - math.sqrt(0.5)) ** 2),
        "loss_obj": (0.6 - 0.5) ** 2,
        # every box but the responsible one: 0.3 (box 1 of the object's cell) and the six others
        "loss_noobj": 0.5 * (0.3**2 + 0.1**2 + 0.2**2 + 0.3**2 + 0.4**2 + 0.5**2 + 0.0**2),
        "loss_class": (0.7 - 1) ** 2 + (0.3 - 0) ** 2,
    }
    assert set(terms) == set(by_hand)
    for k, v in by_hand.items():
        assert float(terms[k]) == pytest.approx(v, abs=1e-12), k


def test_yolov1_responsible_box_is_chosen_by_iou_not_position():
    a = yolov1_loss(_grid_2x2(), TARGET, num_boxes=2, image_hw=(4, 4))
    swapped = _grid_2x2(box0=(0.0, 0.0, 0.25, 0.25, 0.3), box1=(0.5, 0.5, 0.25, 0.25, 0.6))
    b = yolov1_loss(swapped, TARGET, num_boxes=2, image_hw=(4, 4))
    for k in a:
        assert float(a[k]) == pytest.approx(float(b[k]), abs=1e-12)


def test_yolov1_loss_is_divided_by_the_batch_and_an_empty_image_only_teaches_noobj():
    pred = torch.cat([_grid_2x2(), _grid_2x2()])
    one = yolov1_loss(_grid_2x2(), TARGET, num_boxes=2, image_hw=(4, 4))
    two = yolov1_loss(pred, TARGET + [no_objects()], num_boxes=2, image_hw=(4, 4))
    noobj_empty = 0.5 * (0.6**2 + 0.3**2 + 0.1**2 + 0.2**2 + 0.3**2 + 0.4**2 + 0.5**2)
    assert float(two["loss_xy"]) == pytest.approx(float(one["loss_xy"]) / 2, abs=1e-12)
    assert float(two["loss_noobj"]) == pytest.approx((float(one["loss_noobj"]) + noobj_empty) / 2, abs=1e-12)
    none = yolov1_loss(_grid_2x2(), [no_objects()], num_boxes=2, image_hw=(4, 4))
    assert float(none["loss_noobj"]) == pytest.approx(noobj_empty, abs=1e-12)
    assert all(float(none[k]) == 0 for k in ("loss_xy", "loss_wh", "loss_obj", "loss_class"))


def test_yolov1_one_cell_learns_only_its_largest_object():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.5, 0.5, 1.5, 1.0], [2.0, 2.0, 4.0, 4.0], [0.0, 0.0, 1.9, 1.9]])
    cell, chosen = yolov1_assign(boxes, torch.tensor([0, 0, 0, 1]), 2, (4, 4))
    assert cell.tolist() == [0, 0, 3, 4]  # image·S² + row·S + col
    assert chosen.tolist() == [True, False, True, True]


def test_centernet_targets_put_a_unit_peak_at_the_centre_cell():
    boxes = torch.tensor([[10.0, 20.0, 42.0, 36.0], [0.0, 0.0, 9.0, 9.0]])
    heat, cell, size, offset = centernet_targets(boxes, torch.tensor([1, 0]), torch.tensor([0, 1]), 2, 2, (16, 16), 4)
    assert heat.shape == (2, 2, 16, 16)
    # centre (26, 28) / 4 = (6.5, 7): peak cell x 6, y 7, offset (0.5, 0)
    assert cell[0] == 7 * 16 + 6 and heat[0, 1, 7, 6] == 1 and heat[0, 1].max() == 1
    assert torch.allclose(offset[0], torch.tensor([0.5, 0.0])) and torch.allclose(size[0], torch.tensor([8.0, 4.0]))
    assert heat[0, 0].max() == 0 and heat[1, 1].max() == 0  # other classes / images untouched
    assert torch.allclose(heat[0, 1, 7, 5], heat[0, 1, 7, 7])  # symmetric about the peak
    assert (heat >= 0).all() and (heat <= 1).all()


def test_gaussian_radius_keeps_the_overlap():
    # moving both corners of a box by the radius (the worst of CornerNet's cases) keeps IoU >= 0.7
    h = w = torch.tensor([4.0, 10.0, 30.0])
    r = gaussian_radius(h, w, 0.7)
    shrunk = (w - 2 * r).clamp(min=0) ** 2 / w**2
    assert (r > 0).all() and (shrunk < 0.7 + 1e-6).all()  # /2 form of CornerNet errs on the large side


def test_centernet_heatmap_loss_equals_a_plain_loop():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64)
    heat = torch.rand(2, 3, 5, 5, generator=g, dtype=torch.float64) * 0.9
    heat[0, 1, 2, 2] = heat[1, 0, 4, 0] = 1.0
    total = 0.0
    for v, y in zip(torch.sigmoid(logits).flatten().tolist(), heat.flatten().tolist()):
        total += (1 - v) ** 2 * math.log(v) if y == 1 else (1 - y) ** 4 * v**2 * math.log(1 - v)
    assert float(centernet_heatmap_loss(logits, heat, 2)) == pytest.approx(-total / 2, rel=1e-12)


def test_centernet_peaks_become_boxes_without_nms():
    model = CenterNet((3, 32, 32), num_classes=2, width=4, score_thresh=0.1).eval()
    logits = torch.full((1, 2, 8, 8), -10.0)
    logits[0, 1, 3, 2] = 3.0
    logits[0, 1, 3, 3] = 2.0  # next to a higher peak: suppressed by the 3 × 3 max-pool
    logits[0, 0, 6, 6] = 1.0
    size = torch.zeros(1, 2, 8, 8)
    size[0, :, 3, 2] = torch.tensor([2.0, 4.0])
    offset = torch.zeros(1, 2, 8, 8)
    offset[0, :, 3, 2] = torch.tensor([0.5, 0.25])
    out = model.postprocess(logits, size, offset)[0]
    assert out["labels"].tolist() == [2, 1]
    assert torch.allclose(out["scores"], torch.sigmoid(torch.tensor([3.0, 1.0])))
    # centre ((2 + 0.5)·4, (3 + 0.25)·4) = (10, 13), size (8, 16)
    assert torch.allclose(out["boxes"][0], torch.tensor([6.0, 5.0, 14.0, 21.0]))


DETECTORS = {"yolov1": dict(width=8), "centernet": dict(width=8), "fcos": dict(width=8, score_thresh=0.0)}


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_trains_and_its_loss_falls(name):
    assert MODELS.meta(name)["task"] == "detect"
    torch.manual_seed(0)
    model = MODELS.create(name, (3, 32, 32), 3, **DETECTORS[name])
    x, t = few_images(4)
    t[1] = no_objects()  # an image without objects trains too
    losses, _ = train_steps(model, x, t, steps=25, lr=3e-3, loss_names=model.loss_names)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_output_format(name):
    torch.manual_seed(0)
    model = MODELS.create(name, (3, 32, 32), 3, detections_per_img=7, **DETECTORS[name])
    x, _ = few_images(3)
    out = detect(model, x)
    assert_detections(out, n_images=3, num_classes=3, image_size=32, max_dets=7)


@pytest.mark.parametrize("cls", [YOLOv1, CenterNet, FCOS])
def test_detector_bad_input(cls):
    model = cls((3, 32, 32), 3, width=4)
    x, t = few_images(2)
    assert_rejects(model, x, t, wrong_size=48, bad_label=0)
    with pytest.raises(ValueError, match="in_shape"):
        cls((3, 30, 30), 3)


def test_yolov1_loss_bad_input():
    with pytest.raises(ValueError, match="pred"):
        yolov1_loss(torch.zeros(1, 2, 3, 12), TARGET)
    with pytest.raises(ValueError, match="no class scores"):
        yolov1_loss(torch.zeros(1, 2, 2, 10), TARGET, num_boxes=2)
