"""Faster R-CNN as a trainable detector: its loss falls, output format, images without objects,
proposals that all vanish after clipping, an RPN with more anchors than locations, approximate joint
training (no gradient through the proposals), bad input, and the 4-step alternating training."""

import math

import pytest
import torch

from deepnotes.core.registry import MODELS
from deepnotes.detection.two_stage import FasterRCNN, TwoStageDetector

from ._helpers import assert_detections, assert_rejects, detect, few_images, no_objects, train_steps

SMALL = dict(width=8, anchor_sizes=(8, 16), representation_size=32, rpn_batch_size_per_image=64,
             box_batch_size_per_image=32)


def test_faster_rcnn_is_registered_with_zoo_settings():
    meta = MODELS.meta("faster_rcnn")
    assert meta["task"] == "detect"
    assert {"epochs", "batch_size", "lr", "optimizer", "model_kw", "data_kw", "schedule", "target_map50"} <= set(meta["zoo"])
    assert MODELS.get("faster_rcnn") is FasterRCNN and issubclass(FasterRCNN, TwoStageDetector)


def test_faster_rcnn_trains_and_its_loss_falls():
    torch.manual_seed(0)
    model = FasterRCNN((3, 32, 32), 3, **SMALL)
    x, t = few_images(4)
    t[1] = no_objects()  # an image without objects trains too
    losses, _ = train_steps(model, x, t, steps=25, lr=3e-3, loss_names=model.loss_names)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses


def test_faster_rcnn_output_format():
    torch.manual_seed(0)
    model = FasterRCNN((3, 32, 32), 3, box_detections_per_img=7, **SMALL)
    x, _ = few_images(3)
    out = detect(model, x)
    assert_detections(out, n_images=3, num_classes=3, image_size=32, max_dets=7)


def test_a_batch_without_any_object_trains_and_evaluates():
    torch.manual_seed(0)
    model = FasterRCNN((3, 32, 32), 3, **SMALL)
    x, _ = few_images(2)
    terms = model(x, [no_objects(), no_objects()])
    assert all(torch.isfinite(v) for v in terms.values())
    assert float(terms["loss_rpn_box_reg"].detach()) == 0.0 and float(terms["loss_box_reg"].detach()) == 0.0
    sum(terms.values()).backward()  # still a graph: the classifier learns "background"
    assert model.roi_heads.box_predictor.cls_score.weight.grad is not None


def _push_proposals_outside(model):
    """Every anchor's deltas move it 1000 widths to the right: after clipping each proposal has
    zero width and the proposal pipeline drops them all."""
    with torch.no_grad():
        model.rpn.head.bbox_pred.weight.zero_()
        model.rpn.head.bbox_pred.bias.zero_()
        model.rpn.head.bbox_pred.bias[0::4] = 1000.0


def test_proposals_all_degenerate_after_clipping():
    torch.manual_seed(0)
    model = FasterRCNN((3, 32, 32), 3, **SMALL)
    _push_proposals_outside(model)
    x, t = few_images(2)
    model.eval()
    with torch.no_grad():
        features = model.features(x)
        proposals, _ = model.proposals(x, features)
        assert all(p.shape == (0, 4) for p in proposals)
        out = model(x)
    assert all(d["boxes"].shape == (0, 4) and d["scores"].shape == (0,) for d in out)
    model.train()
    terms = model(x, t)  # the ground truth is appended to the (empty) proposals: still learns
    assert all(torch.isfinite(v) for v in terms.values()) and float(terms["loss_classifier"].detach()) > 0
    terms = model(x, [no_objects(), no_objects()])  # no proposal and no object: zero, not NaN
    assert all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()


def test_an_rpn_with_more_anchors_than_locations():
    # 5 sizes × 3 ratios = 15 anchors at each of the 2 × 2 locations of a 32 × 32 image at stride 16
    torch.manual_seed(0)
    kw = dict(SMALL, anchor_sizes=(4, 8, 16, 32, 64))
    model = FasterRCNN((3, 32, 32), 3, **kw)
    x, t = few_images(2)
    assert model.rpn.head.num_anchors == 15
    terms = model(x, t)
    assert all(torch.isfinite(v) for v in terms.values())
    model.eval()
    with torch.no_grad():
        assert len(model(x)) == 2
    # a feature map with more locations than the image has pixels is the caller's mistake
    with pytest.raises(ValueError, match="more anchor locations than the image has pixels"):
        model.rpn(x, [torch.rand(2, model.out_channels, 64, 64)])


def test_no_gradient_reaches_the_rpn_through_the_proposals():
    """Approximate joint training: the RoI heads' losses treat the proposals as constants, so they
    reach the RPN head only through nothing at all (the RPN head is not on their path)."""
    torch.manual_seed(0)
    model = FasterRCNN((3, 32, 32), 3, **SMALL)
    x, t = few_images(2)
    terms = model(x, t)
    (terms["loss_classifier"] + terms["loss_box_reg"]).backward()
    assert all(p.grad is None for p in model.rpn.head.parameters())
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0  # but the shared features learn


def test_faster_rcnn_bad_input():
    model = FasterRCNN((3, 32, 32), 3, **SMALL)
    x, t = few_images(2)
    assert_rejects(model, x, t, wrong_size=48, bad_label=0)
    with pytest.raises(ValueError, match="in_shape"):
        FasterRCNN((3, 30, 30), 3)
    with pytest.raises(ValueError, match="num_classes"):
        FasterRCNN((3, 32, 32), 0)
    with pytest.raises(ValueError, match="anchor_sizes"):
        FasterRCNN((3, 32, 32), 3, anchor_sizes=(8, -1))
    with pytest.raises(ValueError, match="rpn_pre_nms_top_n"):
        FasterRCNN((3, 32, 32), 3, rpn_pre_nms_top_n=(10,))
