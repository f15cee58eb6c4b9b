"""Mask R-CNN's pieces against torchvision: the mask head and predictor, mask targets (RoI Align of
the ground-truth masks), the per-class BCE mask loss, inference, pasting masks into the image, and
the RoI heads with a mask branch (eval detections and masks; training losses and gradients)."""

from collections import OrderedDict

import pytest
import torch
from torchvision.models.detection import roi_heads as tv
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor as TVPredictor
from torchvision.models.detection.faster_rcnn import TwoMLPHead as TVTwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads as TVMaskHeads
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor as TVMaskPredictor
from torchvision.ops import MultiScaleRoIAlign as TVMultiScaleRoIAlign

from deepnotes.detection.two_stage import (
    FastRCNNPredictor,
    MaskRCNNHeads,
    MaskRCNNPredictor,
    MaskRoIHeads,
    MultiScaleRoIAlign,
    TwoMLPHead,
    maskrcnn_inference,
    maskrcnn_loss,
    paste_masks_in_image,
    project_masks_on_boxes,
)

from ._helpers import assert_losses_and_gradients_close

F64 = torch.float64


def _boxes(g, n, h, w, lo=2.0, hi=80.0, outside=10.0):
    """Boxes with sides log-uniform in [lo, hi], some reaching ``outside`` px past the image."""
    wh = torch.exp(torch.empty(n, 2, dtype=F64).uniform_(float(torch.tensor(lo).log()), float(torch.tensor(hi).log()), generator=g))
    xy = torch.rand(n, 2, generator=g, dtype=F64) * (torch.tensor([w, h]) + 2 * outside) - outside
    return torch.cat([xy, xy + wh], 1)


def test_mask_head_and_predictor_equal_torchvision_forward_and_backward():
    torch.manual_seed(0)
    ours_h, ours_p = MaskRCNNHeads(6, (8, 8), dilation=1).double(), MaskRCNNPredictor(8, 5, 4).double()
    tv_h, tv_p = TVMaskHeads(6, [8, 8], 1).double(), TVMaskPredictor(8, 5, 4).double()
    tv_h.load_state_dict(ours_h.state_dict())
    tv_p.load_state_dict(ours_p.state_dict())
    x = torch.randn(7, 6, 14, 14, dtype=F64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    a, b = ours_p(ours_h(x)), tv_p(tv_h(x2))
    assert a.shape == (7, 4, 28, 28)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    w = torch.randn_like(a)
    (a * w).sum().backward()
    (b * w).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-10, atol=1e-12)
    for (n, p), q in zip(ours_h.named_parameters(), tv_h.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=n)


def _mask_problem(seed, sizes=(5, 0, 3), h=40, w=50):
    g = torch.Generator().manual_seed(seed)
    gt = [(torch.rand(m, h, w, generator=g) < 0.4).to(torch.uint8) for m in sizes]
    props = [_boxes(g, 6, h, w, lo=1, hi=40) if m else torch.zeros(0, 4, dtype=F64) for m in sizes]
    idx = [torch.randint(0, max(m, 1), (len(p),), generator=g) for m, p in zip(sizes, props)]
    labels = [torch.randint(1, 4, (m,), generator=g) for m in sizes]
    return g, gt, props, idx, labels


@pytest.mark.parametrize("seed", range(3))
def test_mask_targets_and_loss_equal_torchvision(seed):
    g, gt, props, idx, labels = _mask_problem(seed)
    want = torch.cat([tv.project_masks_on_boxes(m, p, i, 14) for m, p, i in zip(gt, props, idx) if len(p)])
    got = project_masks_on_boxes(gt, props, idx, 14)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    logits = torch.randn(sum(len(p) for p in props), 4, 14, 14, generator=g, dtype=F64, requires_grad=True)
    logits2 = logits.detach().clone().requires_grad_(True)
    a = maskrcnn_loss(logits, props, gt, labels, idx)
    b = tv.maskrcnn_loss(logits2, props, gt, labels, idx)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    a.backward(), b.backward()
    torch.testing.assert_close(logits.grad, logits2.grad, rtol=1e-10, atol=1e-14)


def test_mask_loss_without_positive_rois_is_zero_and_connected():
    logits = torch.randn(0, 4, 14, 14, requires_grad=True)
    loss = maskrcnn_loss(logits, [torch.zeros(0, 4)], [torch.zeros(2, 8, 8)], [torch.tensor([1, 2])], [torch.zeros(0, dtype=torch.int64)])
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()


def test_mask_inference_equals_torchvision():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(9, 4, 28, 28, generator=g, dtype=F64)
    labels = [torch.tensor([1, 3, 2, 1]), torch.zeros(0, dtype=torch.int64), torch.tensor([3, 3, 1, 2, 2])]
    for a, b in zip(maskrcnn_inference(logits, labels), tv.maskrcnn_inference(logits, labels)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_paste_masks_equals_torchvision(seed, padding):
    g = torch.Generator().manual_seed(seed)
    h, w = int(torch.randint(20, 140, (1,), generator=g)), int(torch.randint(20, 140, (1,), generator=g))
    m = (7, 14, 28)[seed % 3]
    masks = torch.rand(25, 1, m, m, generator=g, dtype=F64)
    # inside, across the border, tiny (≤ 1 px) and degenerate (zero-width) boxes; torchvision
    # fails on boxes wholly outside the image, so those are tested against zeros below
    boxes = _boxes(g, 25, h, w, lo=0.2, hi=100, outside=8.0)
    boxes[0, 2] = boxes[0, 0]
    boxes[:, 0], boxes[:, 1] = boxes[:, 0].clamp(max=w - 1), boxes[:, 1].clamp(max=h - 1)
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2]).clamp(min=0)
    got = paste_masks_in_image(masks, boxes, (h, w), padding=padding)
    want = tv.paste_masks_in_image(masks, boxes, (h, w), padding=padding)
    assert got.shape == (25, 1, h, w)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_paste_masks_float32_and_boxes_outside_the_image():
    g = torch.Generator().manual_seed(9)
    masks = torch.rand(12, 1, 28, 28, generator=g)
    boxes = _boxes(g, 12, 64, 64, lo=3, hi=50, outside=0).float()
    torch.testing.assert_close(paste_masks_in_image(masks, boxes, (64, 64)), tv.paste_masks_in_image(masks, boxes, (64, 64)), rtol=1e-5, atol=1e-6)
    far = torch.tensor([[200.0, 200.0, 260.0, 240.0], [-90.0, -50.0, -20.0, -10.0], [60.0, -30.0, 90.0, 10.0]])
    out = paste_masks_in_image(torch.ones(3, 1, 28, 28), far, (64, 64))
    assert torch.isfinite(out).all() and out[:2].sum() == 0  # wholly outside: nothing pasted
    assert out[2, 0, :10, 60:].min() > 0.5 and out[2, 0, 12:].sum() == 0  # the visible part only
    assert paste_masks_in_image(torch.zeros(0, 1, 28, 28), torch.zeros(0, 4), (5, 6)).shape == (0, 1, 5, 6)


def test_paste_masks_bad_input():
    m, b = torch.rand(2, 1, 7, 7), torch.tensor([[0.0, 0, 4, 4], [1, 1, 3, 3]])
    with pytest.raises(ValueError, match="masks must have 4 dimensions"):
        paste_masks_in_image(m[:, 0], b, (8, 8))
    with pytest.raises(ValueError, match=r"masks must have shape \(N, 1, M, M\)"):
        paste_masks_in_image(m[..., :5], b, (8, 8))
    with pytest.raises(ValueError, match="one row per mask"):
        paste_masks_in_image(m, b[:1], (8, 8))
    with pytest.raises(ValueError, match="img_shape must be"):
        paste_masks_in_image(m, b, (8,))
    with pytest.raises(ValueError, match="x2 >= x1"):
        paste_masks_in_image(m, b.flip(1), (8, 8))
    with pytest.raises(TypeError, match="floating-point"):
        paste_masks_in_image(m > 0.5, b, (8, 8))


# --- the RoI heads with a mask branch, against torchvision's RoIHeads(mask_*) ----------------------
C, NUM_CLASSES, REP = 4, 4, 24
NAMES = ["0", "1"]
SIZES = [(96, 128), (96, 128)]


def _features(seed):
    g = torch.Generator().manual_seed(seed)
    return OrderedDict((n, torch.randn(2, C, 96 // s, 128 // s, generator=g, dtype=F64)) for n, s in zip(NAMES, (4, 8)))


def _build(seed, score_thresh=0.05):
    torch.manual_seed(seed)
    kw = dict(fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=48, positive_fraction=0.25,
              bbox_reg_weights=None, score_thresh=score_thresh, nms_thresh=0.5, detections_per_img=30)
    ours = MaskRoIHeads(
        MultiScaleRoIAlign(NAMES, 7, 2), TwoMLPHead(C * 49, REP), FastRCNNPredictor(REP, NUM_CLASSES),
        mask_roi_pool=MultiScaleRoIAlign(NAMES, 14, 2), mask_head=MaskRCNNHeads(C, (6, 6)),
        mask_predictor=MaskRCNNPredictor(6, 5, NUM_CLASSES), **kw,
    ).double()
    for p in ours.parameters():
        torch.nn.init.normal_(p, std=0.3)
    theirs = tv.RoIHeads(
        TVMultiScaleRoIAlign(NAMES, 7, 2), TVTwoMLPHead(C * 49, REP), TVPredictor(REP, NUM_CLASSES), *kw.values(),
        mask_roi_pool=TVMultiScaleRoIAlign(NAMES, 14, 2), mask_head=TVMaskHeads(C, [6, 6], 1),
        mask_predictor=TVMaskPredictor(6, 5, NUM_CLASSES),
    ).double()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _clip(b, size):
    """Clipped to the image; boxes left with no area are dropped."""
    h, w = size
    b = torch.stack([b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1)
    return b[(b[:, 2] - b[:, 0] > 1) & (b[:, 3] - b[:, 1] > 1)]


def _heads_and_proposals(seed, training, n):
    """Both RoI heads (``_build(seed)``) in training or eval mode, the generator the proposals were
    drawn from (seeded ``seed + 11`` in training, ``seed + 5`` in eval) and ``n`` clipped random
    proposals per image."""
    ours, theirs = _build(seed)
    ours.train(training), theirs.train(training)
    g = torch.Generator().manual_seed(seed + (11 if training else 5))
    return ours, theirs, g, [_clip(_boxes(g, n, h, w, lo=8, hi=90), (h, w)) for h, w in SIZES]


@pytest.mark.parametrize("seed", range(3))
def test_mask_roi_heads_eval_equal_torchvision(seed):
    ours, theirs, _, proposals = _heads_and_proposals(seed, training=False, n=30)
    feats = _features(seed)
    with torch.no_grad():
        got, _ = ours(feats, proposals, SIZES)
        want, _ = theirs(feats, proposals, SIZES)
    for a, b in zip(got, want):
        assert len(b["boxes"]) > 0
        assert torch.equal(a["labels"], b["labels"])
        torch.testing.assert_close(a["boxes"], b["boxes"], rtol=1e-12, atol=1e-10)
        torch.testing.assert_close(a["masks"], b["masks"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_mask_roi_heads_training_losses_and_gradients_equal_torchvision(seed):
    ours, theirs, g, proposals = _heads_and_proposals(seed, training=True, n=50)
    boxes = _clip(_boxes(g, 8, 96, 128, lo=10, hi=60, outside=0), SIZES[0])[:4]
    assert len(boxes) == 4
    masks = torch.zeros(4, 96, 128, dtype=torch.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes.round().long().tolist()):
        masks[k, y1:y2, x1:x2] = (torch.rand(y2 - y1, x2 - x1, generator=g) < 0.8).to(torch.uint8)
    targets = [
        {"boxes": boxes, "labels": torch.tensor([1, 3, 2, 1]), "masks": masks},
        {"boxes": torch.zeros(0, 4, dtype=F64), "labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 96, 128, dtype=torch.uint8)},
    ]
    feats = _features(seed)
    torch.manual_seed(99)
    _, got = ours(feats, proposals, SIZES, targets)
    torch.manual_seed(99)
    _, want = theirs(feats, proposals, SIZES, targets)
    assert set(got) == set(want) == {"loss_classifier", "loss_box_reg", "loss_mask"}
    assert want["loss_mask"].item() > 0
    assert_losses_and_gradients_close(ours, theirs, got, want, loss_tol=(1e-10, 1e-13), grad_tol=(1e-9, 1e-12))


def test_mask_roi_heads_training_needs_masks():
    ours, _ = _build(0)
    ours.train()
    t = [{"boxes": torch.tensor([[1.0, 1, 30, 30]], dtype=F64), "labels": torch.tensor([1])}] * 2
    p = [torch.tensor([[0.0, 0, 30, 30]], dtype=F64)] * 2
    with pytest.raises(ValueError, match="'masks' entry"):
        ours(_features(0), p, SIZES, t)
    bad = [dict(x, masks=torch.zeros(2, 96, 128)) for x in t]
    with pytest.raises(ValueError, match="one mask per box"):
        ours(_features(0), p, SIZES, bad)
