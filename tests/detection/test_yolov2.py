"""YOLOv2: the passthrough layer against torch's pixel_unshuffle, the recorded anchors against the
toolkit's 1 − IoU k-means on the shapes training boxes, multi-scale training, training, output
format and bad input (the loss terms are tested by hand in test_yolov3.py: the same function)."""

import math

import pytest
import torch
import torch.nn.functional as F

from deepnotes.core.registry import MODELS
from deepnotes.data import shapes
from deepnotes.detection.anchors import kmeans_anchors
from deepnotes.detection.models import (
    SHAPES_ANCHORS_5,
    SHAPES_ANCHORS_9,
    YOLOv2,
    dataset_anchors,
    reorg,
)

from ._helpers import assert_detections, detect, few_images, no_objects, train_steps


def _few_images(n=4):
    return few_images(n, 64, max_objects=3, max_size=24)


def test_reorg_equals_pixel_unshuffle():
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64, requires_grad=True)
    ours, ref = reorg(x, 2), F.pixel_unshuffle(x, 2)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    w = torch.randn_like(ref)
    torch.testing.assert_close(torch.autograd.grad((ours * w).sum(), x)[0], torch.autograd.grad((ref * w).sum(), x)[0])
    assert ours.shape == (2, 12, 4, 3)
    with pytest.raises(ValueError, match="multiples of stride"):
        reorg(torch.zeros(1, 1, 5, 4), 2)


def test_recorded_anchors_are_the_kmeans_of_the_shapes_training_boxes():
    train = shapes(seed=0, n_train=500, n_val=1, n_test=1).train
    boxes = torch.cat([train[i][1]["boxes"] for i in range(len(train))])
    wh = (boxes[:, 2:] - boxes[:, :2]).double()
    for k, recorded in ((5, SHAPES_ANCHORS_5), (9, SHAPES_ANCHORS_9)):
        centres, _ = kmeans_anchors(wh, k, seed=0)
        torch.testing.assert_close(torch.tensor(recorded, dtype=torch.float64), centres, rtol=0, atol=0.051)


def test_dataset_anchors_runs_the_toolkit_kmeans():
    data = [(None, {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 45.0, 25.0]])}),
            (None, {"boxes": torch.tensor([[0.0, 0.0, 11.0, 9.0]])}), (None, {"boxes": torch.zeros(0, 4)})]
    anchors = dataset_anchors(data, 2)
    torch.testing.assert_close(anchors, torch.tensor([[10.5, 9.5], [40.0, 20.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="fewer than k"):
        dataset_anchors(data, 4)


def test_yolov2_grid_passthrough_and_multi_scale_training():
    torch.manual_seed(0)
    model = YOLOv2((3, 64, 64), 3, width=4, multi_scale=True, scales=(0.5, 1.0, 1.5))
    x, t = _few_images(2)
    raw = model.raw_levels(x)
    assert len(raw) == 1 and raw[0].shape == (2, 5, 4, 4, 8)  # stride 16, 5 anchors, 5 + C
    seen = []
    model.raw_levels = lambda images, f=model.raw_levels: seen.append(images.shape[-1]) or f(images)
    for _ in range(12):
        terms = model(x, t)
        assert all(torch.isfinite(v) for v in terms.values())
    assert set(seen) == {32, 64, 96}  # every size of the list is drawn, the grid follows


def test_yolov2_trains_and_its_loss_falls():
    assert MODELS.meta("yolov2")["task"] == "detect"
    torch.manual_seed(0)
    model = MODELS.create("yolov2", (3, 64, 64), 3, width=4)
    x, t = _few_images(4)
    t[1] = no_objects()
    losses, _ = train_steps(model, x, t, steps=25, lr=3e-3, loss_names={"loss_xy", "loss_wh", "loss_obj", "loss_class"})
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.5 * losses[0], losses


def test_yolov2_output_format():
    torch.manual_seed(0)
    model = YOLOv2((3, 64, 64), 3, width=4, detections_per_img=5, score_thresh=0.0)
    x, _ = _few_images(3)
    out = detect(model, x)
    assert_detections(out, n_images=3, num_classes=3, image_size=64, max_dets=5, min_dets=1)


def test_yolov2_bad_input():
    model = YOLOv2((3, 64, 64), 3, width=4)
    x, t = _few_images(2)
    with pytest.raises(ValueError, match="images must have shape"):
        model(torch.rand(2, 3, 32, 32), t)
    with pytest.raises(ValueError, match="targets are required"):
        model(x)
    with pytest.raises(ValueError, match="in_shape"):
        YOLOv2((3, 80, 80), 3)
    with pytest.raises(ValueError, match="anchors"):
        YOLOv2((3, 64, 64), 3, anchors=SHAPES_ANCHORS_9)
    with pytest.raises(ValueError, match="scales"):
        YOLOv2((3, 64, 64), 3, scales=(0.0, 1.0))
