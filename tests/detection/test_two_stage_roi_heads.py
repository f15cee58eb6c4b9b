"""RoI heads equal torchvision's ``RoIHeads`` (eval detections, training losses); the FPN level
mapper and multi-scale RoI Align equal ``torchvision.ops.poolers``; bad input raises."""

from collections import OrderedDict

import pytest
import torch
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor as TVPredictor
from torchvision.models.detection.faster_rcnn import TwoMLPHead as TVTwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads as TVRoIHeads
from torchvision.ops import MultiScaleRoIAlign as TVMultiScaleRoIAlign
from torchvision.ops.poolers import LevelMapper as TVLevelMapper

from deepnotes.detection.two_stage import (
    FastRCNNPredictor,
    LevelMapper,
    MultiScaleRoIAlign,
    RoIHeads,
    TwoMLPHead,
)

from ._helpers import assert_losses_and_gradients_close

C, NUM_CLASSES, REP = 4, 4, 24
NAMES = ["0", "1", "2", "3"]
BATCH = (256, 320)
SIZES = [(256, 320), (224, 300)]  # large enough for RoIs of FPN levels 2 to 5


def features(seed, n=2, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return OrderedDict(
        (
            name,
            torch.randn(
                n, C, BATCH[0] // s, BATCH[1] // s, generator=g, dtype=torch.float64
            ).requires_grad_(requires_grad),
        )
        for name, s in zip(NAMES, (4, 8, 16, 32))
    )


def random_boxes(g, m, h, w, lo=20.0, hi=300.0):
    """Sides log-uniform in [lo, hi] (so RoIs reach every pyramid level), some past the image edge."""
    wh = torch.exp(
        torch.empty(m, 2, dtype=torch.float64).uniform_(
            float(torch.tensor(lo).log()), float(torch.tensor(hi).log()), generator=g
        )
    )
    xy = torch.rand(m, 2, generator=g, dtype=torch.float64) * (
        torch.tensor([w, h]) - 0.8 * wh
    ).clamp(min=1)
    return torch.cat([xy, xy + wh], 1)


def build(seed, score_thresh=0.05, nms_thresh=0.5, detections=100, sampling_ratio=2):
    torch.manual_seed(seed)
    kw = dict(
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=48,
        positive_fraction=0.25,
        bbox_reg_weights=None,
        score_thresh=score_thresh,
        nms_thresh=nms_thresh,
        detections_per_img=detections,
    )
    ours = RoIHeads(
        MultiScaleRoIAlign(NAMES, 7, sampling_ratio),
        TwoMLPHead(C * 49, REP),
        FastRCNNPredictor(REP, NUM_CLASSES),
        **kw,
    ).double()
    for p in ours.parameters():  # spread the scores and deltas beyond the default init
        torch.nn.init.normal_(p, std=0.3)
    theirs = TVRoIHeads(
        TVMultiScaleRoIAlign(NAMES, 7, sampling_ratio),
        TVTwoMLPHead(C * 49, REP),
        TVPredictor(REP, NUM_CLASSES),
        **kw,
    ).double()
    theirs.load_state_dict(ours.state_dict())  # the same parameter names
    return ours, theirs


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("score_thresh,nms_thresh,detections", [(0.05, 0.5, 100), (0.3, 0.3, 7)])
def test_eval_detections_equal_torchvision(seed, score_thresh, nms_thresh, detections):
    ours, theirs = build(seed, score_thresh, nms_thresh, detections)
    ours.eval(), theirs.eval()
    feats = features(seed)
    g = torch.Generator().manual_seed(seed + 7)
    proposals = [random_boxes(g, 40, h, w) for h, w in SIZES]
    proposals = [clip(p, s) for p, s in zip(proposals, SIZES)]
    with torch.no_grad():
        got, _ = ours(feats, proposals, SIZES)
        want, _ = theirs(feats, proposals, SIZES)
    for gd, wd in zip(got, want):
        assert wd["boxes"].shape[0] > 0
        assert torch.equal(gd["labels"], wd["labels"])
        torch.testing.assert_close(gd["boxes"], wd["boxes"], rtol=1e-12, atol=1e-10)
        torch.testing.assert_close(gd["scores"], wd["scores"], rtol=1e-12, atol=1e-14)


def clip(boxes, size):
    h, w = size
    return torch.stack(
        [
            boxes[:, 0].clamp(0, w),
            boxes[:, 1].clamp(0, h),
            boxes[:, 2].clamp(0, w),
            boxes[:, 3].clamp(0, h),
        ],
        1,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_losses_equal_torchvision(seed):
    ours, theirs = build(seed)
    ours.train(), theirs.train()
    feats = features(seed)
    g = torch.Generator().manual_seed(seed + 11)
    proposals = [clip(random_boxes(g, 60, h, w), s) for (h, w), s in zip(SIZES, SIZES)]
    targets = [
        {
            "boxes": clip(random_boxes(g, 4, 256, 320, lo=10, hi=160), SIZES[0]),
            "labels": torch.tensor([1, 3, 2, 1]),
        },
        {
            "boxes": torch.zeros(0, 4, dtype=torch.float64),
            "labels": torch.zeros(0, dtype=torch.int64),
        },
    ]
    torch.manual_seed(99)
    _, got = ours(feats, proposals, SIZES, targets)
    torch.manual_seed(99)
    _, want = theirs(feats, proposals, SIZES, targets)
    assert set(got) == set(want) == {"loss_classifier", "loss_box_reg"}
    assert want["loss_box_reg"].item() > 0
    assert_losses_and_gradients_close(ours, theirs, got, want, loss_tol=(1e-10, 1e-13), grad_tol=(1e-9, 1e-12))


def test_image_without_objects_and_no_proposals_trains_without_nan():
    ours, _ = build(0)
    ours.train()
    feats = features(0)
    targets = [
        {
            "boxes": torch.zeros(0, 4, dtype=torch.float64),
            "labels": torch.zeros(0, dtype=torch.int64),
        }
    ] * 2
    proposals = [
        random_boxes(torch.Generator().manual_seed(0), 10, 100, 100),
        torch.zeros(0, 4, dtype=torch.float64),
    ]
    _, losses = ours(feats, proposals, SIZES, targets)
    assert losses["loss_box_reg"].item() == 0.0 and torch.isfinite(losses["loss_classifier"])


def test_eval_without_proposals_gives_no_detections():
    ours, _ = build(0)
    ours.eval()
    empty = [torch.zeros(0, 4, dtype=torch.float64)] * 2
    with torch.no_grad():
        dets, _ = ours(features(0), empty, SIZES)
    assert all(d["boxes"].shape == (0, 4) and d["labels"].shape == (0,) for d in dets)


# --- FPN level mapper and multi-scale RoI Align ------------------------------------------------


@pytest.mark.parametrize("k_min,k_max", [(2, 5), (3, 4), (2, 2)])
def test_level_mapper_equals_torchvision(k_min, k_max):
    g = torch.Generator().manual_seed(k_min * 10 + k_max)
    boxes = [random_boxes(g, 300, 800, 800, lo=1.0, hi=700.0) for _ in range(2)]
    # boxes exactly at the level boundaries: √area = 224 · 2^j
    side = 224.0 * 2.0 ** torch.arange(-3, 3, dtype=torch.float64)
    boxes.append(torch.stack([torch.zeros_like(side), torch.zeros_like(side), side, side], 1))
    got = LevelMapper(k_min, k_max)(boxes)
    want = TVLevelMapper(k_min, k_max)(boxes)
    assert torch.equal(got, want)
    assert got.dtype == torch.int64


def test_level_mapper_follows_the_fpn_formula():
    boxes = [
        torch.tensor(
            [
                [0.0, 0.0, 224.0, 224.0],
                [0.0, 0.0, 112.0, 112.0],
                [0.0, 0.0, 448.0, 448.0],
                [0.0, 0.0, 10.0, 10.0],
            ]
        )
    ]
    # k = ⌊4 + log2(side/224)⌋ → 4, 3, 5, 0 → clamped to [2, 5], minus k_min
    assert LevelMapper(2, 5)(boxes).tolist() == [2, 1, 3, 0]


@pytest.mark.parametrize("sampling_ratio", [2, -1])
@pytest.mark.parametrize("names", [NAMES, ["1"], ["1", "2", "3"]])
def test_multiscale_roi_align_equals_torchvision_forward_and_backward(sampling_ratio, names):
    g = torch.Generator().manual_seed(len(names) + sampling_ratio)
    boxes = [clip(random_boxes(g, 60, h, w, lo=4.0, hi=400.0), (h, w)) for h, w in SIZES]
    f1, f2 = features(3, requires_grad=True), features(3, requires_grad=True)
    got = MultiScaleRoIAlign(names, (5, 3), sampling_ratio)(f1, boxes, SIZES)
    want = TVMultiScaleRoIAlign(names, (5, 3), sampling_ratio)(f2, boxes, SIZES)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)
    w = torch.randn(got.shape, generator=g, dtype=torch.float64)
    (got * w).sum().backward()
    (want * w).sum().backward()
    for n in names:  # a level no RoI maps to gets no gradient (None) here, zeros in torchvision
        ours_grad = f1[n].grad if f1[n].grad is not None else torch.zeros_like(f1[n])
        torch.testing.assert_close(ours_grad, f2[n].grad, rtol=1e-12, atol=1e-13)


# --- bad input ---------------------------------------------------------------------------------


def test_proposals_of_wrong_shape():
    ours, _ = build(0)
    with pytest.raises(ValueError, match=r"proposals\[1\] must have shape \(N, 4\)"):
        ours.eval()(
            features(0),
            [torch.zeros(3, 4, dtype=torch.float64), torch.zeros(3, 5, dtype=torch.float64)],
            SIZES,
        )


def test_proposals_and_image_shapes_disagree():
    ours, _ = build(0)
    with pytest.raises(ValueError, match="one entry per image"):
        ours.eval()(features(0), [torch.zeros(3, 4, dtype=torch.float64)], SIZES)


def test_inverted_proposals():
    ours, _ = build(0)
    bad = torch.tensor([[10.0, 10.0, 5.0, 20.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="x2 >= x1"):
        ours.eval()(features(0), [bad, bad], SIZES)


def test_training_targets_need_labels():
    ours, _ = build(0)
    props = [torch.tensor([[0.0, 0.0, 10.0, 10.0]], dtype=torch.float64)] * 2
    targets = [{"boxes": props[0]}] * 2
    with pytest.raises(ValueError, match="'labels' entry"):
        ours.train()(features(0), props, SIZES, targets)
    targets = [{"boxes": props[0], "labels": torch.tensor([1, 2])}] * 2
    with pytest.raises(ValueError, match="one label per box"):
        ours(features(0), props, SIZES, targets)


def test_predictor_with_wrong_number_of_deltas():
    ours, _ = build(0)
    ours.box_predictor.bbox_pred = torch.nn.Linear(REP, 4 * NUM_CLASSES + 1).double()
    with pytest.raises(ValueError, match="box_predictor must return deltas"):
        ours.eval()(
            features(0), [torch.tensor([[0.0, 0.0, 10.0, 10.0]], dtype=torch.float64)] * 2, SIZES
        )


def test_multiscale_missing_feature_map():
    pool = MultiScaleRoIAlign(["0", "9"], 7, 2)
    with pytest.raises(ValueError, match="no feature map named '9'"):
        pool(features(0), [torch.zeros(1, 4)] * 2, SIZES)


def test_multiscale_boxes_per_image_count():
    with pytest.raises(ValueError, match="one tensor per image"):
        MultiScaleRoIAlign(NAMES, 7, 2)(
            features(0), [torch.zeros(1, 4, dtype=torch.float64)], SIZES
        )


def test_multiscale_empty_image_shapes():
    with pytest.raises(ValueError, match="image_shapes"):
        MultiScaleRoIAlign(NAMES, 7, 2)(
            features(0), [torch.zeros(1, 4, dtype=torch.float64)] * 2, []
        )


def test_multiscale_skipped_pyramid_level():
    with pytest.raises(ValueError, match="consecutive pyramid levels"):
        MultiScaleRoIAlign(["0", "2"], 7, 2)(
            features(0), [torch.zeros(1, 4, dtype=torch.float64)] * 2, SIZES
        )


def test_level_mapper_inverted_range():
    with pytest.raises(ValueError, match="k_max"):
        LevelMapper(5, 2)


def test_box_head_wrong_input_size():
    with pytest.raises(ValueError, match="must flatten to"):
        TwoMLPHead(C * 49, REP)(torch.zeros(2, C, 5, 5))


def test_degenerate_proposals_give_no_detections_like_torchvision():
    ours, theirs = build(0)
    ours.eval(), theirs.eval()
    flat = torch.tensor(
        [[5.0, 5.0, 5.0, 30.0], [40.0, 40.0, 60.0, 40.0], [7.0, 7.0, 7.0, 7.0]], dtype=torch.float64
    )
    with torch.no_grad():
        got, _ = ours(features(0), [flat, flat], SIZES)
        want, _ = theirs(features(0), [flat, flat], SIZES)
    for gd, wd in zip(got, want):
        assert gd["boxes"].shape == wd["boxes"].shape == (0, 4)
