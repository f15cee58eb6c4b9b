"""SSD: default boxes against torchvision's DefaultBoxGenerator, matching against its SSDMatcher,
the loss (smooth L1 + softmax CE with 3:1 hard negatives) against torchvision's SSD.compute_loss
in float64, hard-negative counts by hand, training a few steps, output format and bad input."""

import math

import pytest
import torch
from torch import nn
from torchvision.models.detection import _utils as tv_utils
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.ssd import SSD as TvSSD

from deepnotes.detection import BoxCoder, box_iou
from deepnotes.detection.models import (
    SSD,
    hard_negative_mask,
    ssd_default_boxes,
    ssd_loss,
    ssd_match,
)

from ._helpers import assert_detections, detect, few_images, no_objects, train_steps


@pytest.mark.parametrize("ratios", [[[2], [2, 3]], [[2, 3], [2], [3]]])
def test_default_boxes_equal_torchvision(ratios):
    sizes = [(8, 8), (4, 4), (2, 2)][: len(ratios)]
    ref_gen = DefaultBoxGenerator(ratios, min_ratio=0.1, max_ratio=0.5)
    feats = [torch.zeros(1, 1, *s) for s in sizes]
    ref = ref_gen(ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)]), feats)[0]
    ours = ssd_default_boxes(sizes, (64, 64), ratios, 0.1, 0.5)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-4)


def test_default_box_scales_by_hand():
    # two 1×1 maps on a 100 px image: s = 0.2, 0.6 then 1; ratio 4 → w = 2s, h = s/2
    boxes = ssd_default_boxes([(1, 1), (1, 1)], (100, 100), [[4], [4]], 0.2, 0.6, clip=False)
    wh = boxes[:, 2:] - boxes[:, :2]
    s1, s2 = 0.2, 0.6
    want = [[s1, s1], [math.sqrt(s1 * s2)] * 2, [2 * s1, s1 / 2], [s1 / 2, 2 * s1],
            [s2, s2], [math.sqrt(s2)] * 2, [2 * s2, s2 / 2], [s2 / 2, 2 * s2]]
    torch.testing.assert_close(wh, torch.tensor(want) * 100, rtol=0, atol=1e-4)
    torch.testing.assert_close((boxes[:, :2] + boxes[:, 2:]) / 2, torch.full((8, 2), 50.0))


@pytest.mark.parametrize("seed", range(5))
def test_ssd_match_equals_torchvision_ssdmatcher(seed):
    g = torch.Generator().manual_seed(seed)
    iou = torch.rand(4, 30, generator=g, dtype=torch.float64) * 0.8
    ours = ssd_match(iou, 0.5)
    ref = tv_utils.SSDMatcher(0.5)(iou)
    assert torch.equal(ours, ref)


def test_ssd_match_keeps_each_ground_truth_its_best_box_and_batches_images():
    iou = torch.tensor([[0.45, 0.10, 0.30], [0.20, 0.40, 0.55]])
    # box 0's best default box is 0 (0.45 < 0.5, matched anyway); box 1's is 2 (0.55 ≥ 0.5);
    # default box 1 stays background (0.40 < 0.5)
    assert ssd_match(iou).tolist() == [0, -1, 1]
    # the same boxes in two images: each matches only its own image's default boxes
    assert ssd_match(iou, image=torch.tensor([0, 1]), batch=2).tolist() == [[0, -1, -1], [-1, -1, 1]]
    # above the threshold the ground truth of highest IoU wins
    assert ssd_match(torch.tensor([[0.9, 0.6, 0.1], [0.2, 0.7, 0.8]])).tolist() == [0, 1, 1]
    assert ssd_match(torch.zeros(0, 3)).tolist() == [-1, -1, -1]


def test_hard_negative_count_by_hand():
    loss = torch.tensor([[0.9, 0.1, 0.5, 0.7, 0.2, 0.3, 0.8, 0.05],
                         [0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0]])
    positive = torch.zeros(2, 8, dtype=torch.bool)
    positive[0, 0] = True  # one positive → 3 negatives: the highest of the others, 0.8, 0.7, 0.5
    hard = hard_negative_mask(loss, positive, 3)
    assert hard[0].nonzero().flatten().tolist() == [2, 3, 6]
    assert not hard[1].any()  # no positive in image 1 → no negative either
    positive[0, 1:3] = True  # 3 positives → 9 negatives wanted, only 5 left: all of them
    assert hard_negative_mask(loss, positive, 3)[0].tolist() == [False, False, False, True, True, True, True, True]


def _random_case(seed, n=3, a=40, c=4):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(a, 2, generator=g, dtype=torch.float64) * 50
    anchors = torch.cat([xy, xy + 5 + torch.rand(a, 2, generator=g, dtype=torch.float64) * 15], 1)
    targets = []
    for i in range(n):
        k = i  # 0, 1, 2 objects: an empty image too
        pick = torch.randperm(a, generator=g)[:k]
        jitter = torch.rand(k, 4, generator=g, dtype=torch.float64) * 3
        targets.append({"boxes": anchors[pick] + jitter, "labels": torch.randint(1, c + 1, (k,), generator=g)})
    cls = torch.randn(n, a, c + 1, generator=g, dtype=torch.float64, requires_grad=True)
    box = torch.randn(n, a, 4, generator=g, dtype=torch.float64, requires_grad=True)
    return cls, box, anchors, targets


@pytest.mark.parametrize("seed", range(4))
def test_ssd_loss_equals_torchvision_compute_loss_forward_and_backward(seed):
    from ._helpers import assert_loss_terms_close

    cls, box, anchors, targets = _random_case(seed)
    ours = ssd_loss(cls, box, anchors, targets, BoxCoder((10.0, 10.0, 5.0, 5.0)))
    ref_model = TvSSD(nn.Identity(), DefaultBoxGenerator([[2]]), (64, 64), 5, head=nn.Identity())
    matched = [tv_utils.SSDMatcher(0.5)(box_iou(t["boxes"], anchors)) if len(t["boxes"])
               else torch.full((len(anchors),), -1, dtype=torch.int64) for t in targets]
    ref = ref_model.compute_loss(targets, {"cls_logits": cls, "bbox_regression": box}, [anchors] * len(targets), matched)
    names = {"loss_box": "bbox_regression", "loss_cls": "classification"}
    assert_loss_terms_close(ours, ref, names, (cls, box), loss_tol=(1e-12, 1e-12), grad_tol=(1e-10, 1e-12))


def test_ssd_loss_of_a_batch_without_objects_is_zero():
    cls, box, anchors, _ = _random_case(0)
    empty = [no_objects()] * 3
    terms = ssd_loss(cls, box, anchors, empty, BoxCoder((10.0, 10.0, 5.0, 5.0)))
    assert float(terms["loss_box"].detach()) == 0 and float(terms["loss_cls"].detach()) == 0
    sum(terms.values()).backward()


def test_ssd_trains_a_few_steps_and_its_loss_falls():
    torch.manual_seed(0)
    images, targets = few_images(8, 64, max_objects=6, max_size=32, masks=True)
    model = SSD((3, 64, 64), 3, width=8)
    losses, history = train_steps(model, images, targets, steps=15, lr=3e-3)
    assert set(history[-1]) == {"loss_cls", "loss_box"}
    assert losses[-1] < 0.5 * losses[0]
    out = detect(model, images[:3])
    assert_detections(out, n_images=3, num_classes=3, image_size=64, max_dets=100)


def test_ssd_bad_input():
    with pytest.raises(ValueError, match="in_shape"):
        SSD((3, 100, 100))
    with pytest.raises(ValueError, match="max_ratio"):
        SSD((3, 64, 64), max_ratio=1.5)
    with pytest.raises(ValueError, match="aspect_ratios"):
        SSD((3, 64, 64), aspect_ratios=(2, -1))
    model = SSD((3, 64, 64), 3, width=8)
    with pytest.raises(ValueError, match="images must have shape"):
        model.eval()(torch.rand(1, 3, 32, 32))
    model.train()
    with pytest.raises(ValueError, match="targets are required"):
        model(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="labels"):
        model(torch.rand(2, 3, 64, 64), [no_objects(), {"boxes": torch.tensor([[0.0, 0, 9, 9]]), "labels": torch.tensor([4])}])
