"""OverFeat-style detector: the sliding-window property (shifting the image by one stride shifts
the output grid by one location), location targets and box merging by hand, training a few steps,
output format and bad input."""

import pytest
import torch

from deepnotes.detection.models import OverFeat, merge_boxes, overfeat_targets

from ._helpers import assert_detections, detect, few_images, no_objects, train_steps


def test_fully_convolutional_output_is_a_sliding_window():
    torch.manual_seed(0)
    model = OverFeat((3, 128, 128), 3, width=8).eval()
    x = torch.rand(1, 3, 128, 128, dtype=torch.float64)
    model = model.double()
    with torch.no_grad():
        a = model.classifier(model.fc(model.backbone(x)[-1]))
        b = model.classifier(model.fc(model.backbone(torch.roll(x, 8, dims=3))[-1]))
    # receptive field 89 px: locations 6..9 see no padding (5 and 10 touch it); shifted right by 8 px, window j
    # reappears at j + 1
    torch.testing.assert_close(b[..., 6:10, 7:11], a[..., 6:10, 6:10], rtol=1e-9, atol=1e-9)
    assert not torch.allclose(b[..., 6:10, 6:10], a[..., 6:10, 6:10])


def test_overfeat_targets_by_hand():
    points = torch.tensor([[4.0, 4.0], [12.0, 4.0], [20.0, 20.0], [36.0, 36.0]])
    boxes = torch.tensor([[0.0, 0.0, 16.0, 8.0],     # image 0, 16 × 8
                          [2.0, 2.0, 40.0, 40.0],    # image 0, 38 × 38
                          [0.0, 0.0, 8.0, 8.0]])     # image 1
    labels, image = torch.tensor([0, 2, 1]), torch.tensor([0, 0, 1])
    cls, reg = overfeat_targets(points, boxes, labels, image, 2, window=24.0)
    # image 0 — (4, 4): inside both; box 0 lies wholly in the 24 px window, box 1's share is
    # (16 − 2)² / 38² < ½ → box 0 (class 0 → target 1), distances 4, 4, 12, 4.
    # (12, 4): box 0 again (window x ∈ [0, 24]), distances 12, 4, 4, 4.
    # (20, 20): only box 1, window [8, 32]² covers 24² / 38² = 0.40 < ½ → background.
    # (36, 36): box 1, window [24, 48]² covers 16² / 38² → background.
    assert cls[0].tolist() == [1, 1, 0, 0]
    assert reg[0, 0].tolist() == [4.0, 4.0, 12.0, 4.0] and reg[0, 1].tolist() == [12.0, 4.0, 4.0, 4.0]
    assert reg[0, 2:].abs().sum() == 0
    # image 1: only (4, 4) is inside its box
    assert cls[1].tolist() == [2, 0, 0, 0]
    # a window as large as box 1 makes (20, 20) see all of it → class 3
    cls, reg = overfeat_targets(points, boxes, labels, image, 2, window=80.0)
    assert cls[0].tolist() == [1, 1, 3, 3] and reg[0, 2].tolist() == [18.0, 18.0, 20.0, 20.0]
    empty = overfeat_targets(points, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64),
                             torch.zeros(0, dtype=torch.int64), 2, 24.0)
    assert empty[0].tolist() == [[0] * 4] * 2


def test_merge_boxes_by_hand():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [0.0, 0.0, 10.0, 10.0],
                          [50.0, 50.0, 60.0, 60.0]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.3, 0.8, 0.6], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 0])
    image = torch.tensor([0, 0, 0, 0])
    out = merge_boxes(boxes, scores, labels, image, 1, merge_iou=0.5, score_thresh=0.05, detections_per_img=10)[0]
    # class 0: box 1 (IoU 81/119 with box 0) is merged into box 0: (0.9·b0 + 0.3·b1) / 1.2;
    # box 2 is of class 1 and box 3 far away: both kept as they are
    assert out["labels"].tolist() == [1, 2, 1] and out["scores"].tolist() == [0.9, 0.8, 0.6]
    torch.testing.assert_close(out["boxes"][0], torch.tensor([0.25, 0.25, 10.25, 10.25], dtype=torch.float64))
    torch.testing.assert_close(out["boxes"][1:], boxes[[2, 3]])
    none = merge_boxes(boxes, scores * 0, labels, image, 2, 0.5, 0.05, 10)
    assert len(none) == 2 and all(len(o["boxes"]) == 0 for o in none)


def test_overfeat_trains_a_few_steps_and_its_loss_falls():
    torch.manual_seed(0)
    images, targets = few_images(8, 64, max_objects=6, max_size=32, masks=True)
    model = OverFeat((3, 64, 64), 3, width=8, window=32.0)
    losses, history = train_steps(model, images, targets, steps=15, lr=3e-3)
    assert set(history[-1]) == {"loss_cls", "loss_box"}
    assert losses[-1] < 0.5 * losses[0]
    out = detect(model, images[:3])
    assert_detections(out, n_images=3, num_classes=3, image_size=64, max_dets=100)


def test_overfeat_trains_on_images_without_objects():
    model = OverFeat((3, 64, 64), 3, width=8)
    terms = model(torch.rand(2, 3, 64, 64), [no_objects(), no_objects()])
    sum(terms.values()).backward()
    assert float(terms["loss_box"].detach()) == 0 and float(terms["loss_cls"].detach()) > 0


def test_overfeat_bad_input():
    with pytest.raises(ValueError, match="in_shape"):
        OverFeat((3, 60, 64))
    with pytest.raises(ValueError, match="kernel must be odd"):
        OverFeat((3, 64, 64), kernel=2)
    with pytest.raises(ValueError, match="window"):
        OverFeat((3, 64, 64), window=0)
    model = OverFeat((3, 64, 64), 3, width=8)
    with pytest.raises(ValueError, match="targets are required"):
        model(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match=r"x2 >= x1"):
        model(torch.rand(1, 3, 64, 64), [{"boxes": torch.tensor([[9.0, 0, 1, 9]]), "labels": torch.tensor([1])}])
    with pytest.raises(ValueError, match="images must have shape"):
        model.eval()(torch.rand(1, 1, 64, 64))


def test_negative_regressed_distances_give_valid_boxes():
    model = OverFeat((3, 64, 64), 3, width=8, score_thresh=0.0).eval()
    cls = torch.zeros(1, 64, 4)
    box = torch.full((1, 64, 4), -5.0)  # an untrained regressor can say "−5 px to the left side"
    out = model.postprocess(cls, box)[0]
    assert len(out["boxes"]) > 0
    assert bool((out["boxes"][:, 2:] >= out["boxes"][:, :2]).all())
