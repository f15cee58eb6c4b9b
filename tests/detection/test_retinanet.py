"""RetinaNet: the batched anchor assignment equals the toolkit's and torchvision's Matcher per
image, the loss equals torchvision's RetinaNetHead.compute_loss in float64 (forward and backward),
the prior-probability bias and the initial focal loss by hand, training a few steps, output format
and bad input."""

import math

import pytest
import torch
from torch import nn
from torchvision.models.detection import _utils as tv_utils
from torchvision.models.detection.retinanet import RetinaNetHead

from deepnotes.detection import BoxCoder, Matcher, box_iou
from deepnotes.detection.models import RetinaNet, prior_bias, retinanet_loss, retinanet_match

from ._helpers import assert_detections, detect, few_images, no_objects, train_steps


def _boxes(g, k, scale=40.0):
    xy = torch.rand(k, 2, generator=g, dtype=torch.float64) * scale
    return torch.cat([xy, xy + 4 + torch.rand(k, 2, generator=g, dtype=torch.float64) * 20], 1)


@pytest.mark.parametrize("seed", range(5))
def test_batched_match_equals_the_matcher_per_image(seed):
    g = torch.Generator().manual_seed(seed)
    anchors = _boxes(g, 60)
    counts = [2, 0, 3, 1]
    boxes = torch.cat([anchors[torch.randperm(60, generator=g)[:k]] + torch.rand(k, 4, generator=g, dtype=torch.float64) * 4
                       for k in counts])
    image = torch.repeat_interleave(torch.arange(4), torch.tensor(counts))
    ours = retinanet_match(box_iou(boxes, anchors), image, 4)
    start = 0
    for i, k in enumerate(counts):
        if k == 0:
            assert (ours[i] == -1).all()
            continue
        iou = box_iou(boxes[start:start + k], anchors)
        want = Matcher(0.5, 0.4, allow_low_quality_matches=True)(iou)
        assert torch.equal(want, tv_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)(iou))
        got = torch.where(ours[i] >= 0, ours[i] - start, ours[i])
        assert torch.equal(got, want)
        start += k


def test_match_keeps_ties_of_a_boxs_best_anchor():
    # box 0's best IoU 0.3 is reached by anchors 0 and 2 (both kept, below 0.4); anchor 1 is
    # between the thresholds for box 1 (ignored), anchor 3 is box 1's by IoU 0.6
    iou = torch.tensor([[0.3, 0.1, 0.3, 0.1], [0.1, 0.45, 0.0, 0.6]])
    assert retinanet_match(iou, torch.tensor([0, 0]), 1).tolist() == [[0, -2, 0, 1]]


def _case(seed, n=3, a=50, c=3):
    g = torch.Generator().manual_seed(seed)
    anchors = _boxes(g, a)
    targets = []
    for i in range(n):
        pick = torch.randperm(a, generator=g)[:i]  # 0, 1, 2 objects
        targets.append({"boxes": anchors[pick] + torch.rand(i, 4, generator=g, dtype=torch.float64) * 3,
                        "labels": torch.randint(1, c + 1, (i,), generator=g)})
    cls = torch.randn(n, a, c, generator=g, dtype=torch.float64, requires_grad=True)
    box = torch.randn(n, a, 4, generator=g, dtype=torch.float64, requires_grad=True) * 0.3
    return cls, box, anchors, targets


@pytest.mark.parametrize("seed", range(4))
def test_loss_equals_torchvision_retinanet_head(seed):
    from ._helpers import assert_loss_terms_close

    cls, box, anchors, targets = _case(seed)
    ours = retinanet_loss(cls, box, anchors, targets, BoxCoder((1.0, 1.0, 1.0, 1.0)), beta=1.0)
    head = RetinaNetHead(8, 9, 3)
    head.regression_head._loss_type = "smooth_l1"  # the paper's box loss (torchvision defaults to L1)
    matcher = tv_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
    matched = [matcher(box_iou(t["boxes"], anchors)) if len(t["boxes"]) else torch.full((len(anchors),), -1)
               for t in targets]
    tv_targets = [{"boxes": t["boxes"], "labels": t["labels"] - 1} for t in targets]  # torchvision: column = label
    ref = head.compute_loss(tv_targets, {"cls_logits": cls, "bbox_regression": box}, [anchors] * 3, matched)
    names = {"loss_cls": "classification", "loss_box": "bbox_regression"}
    assert_loss_terms_close(ours, ref, names, (cls, box), loss_tol=(1e-12, 1e-12), grad_tol=(1e-10, 1e-12))


def test_prior_bias_and_the_initial_focal_loss_by_hand():
    assert prior_bias(0.01) == pytest.approx(-math.log(99), rel=1e-15)
    model = RetinaNet((3, 64, 64), 3, width=8)
    assert torch.allclose(model.cls_subnet[-1].bias, torch.full((27,), -math.log(99)))
    model.eval()
    with torch.no_grad():
        cls, _ = model.raw(torch.rand(2, 3, 64, 64))
    assert float(cls.sigmoid().mean()) == pytest.approx(0.01, abs=1e-3)
    # every logit at the prior on an image without objects: each anchor × class adds
    # (1 − α) p^γ (−log(1 − p)) with p = 0.01, and the sum is divided by max(1, 0 foreground)
    a, c = 30, 3
    logits = torch.full((1, a, c), prior_bias(0.01), dtype=torch.float64)
    empty = [no_objects()]
    terms = retinanet_loss(logits, torch.zeros(1, a, 4, dtype=torch.float64), _boxes(torch.Generator(), a),
                           empty, BoxCoder((1.0, 1.0, 1.0, 1.0)))
    by_hand = a * c * 0.75 * 0.01**2 * -math.log(0.99)
    assert float(terms["loss_cls"]) == pytest.approx(by_hand, rel=1e-12)
    # plain BCE at the same logits: −log(0.99) per anchor × class, 4 / 0.01² ≈ 40 000 times more
    bce = retinanet_loss(logits, torch.zeros(1, a, 4, dtype=torch.float64), _boxes(torch.Generator(), a),
                         empty, BoxCoder((1.0, 1.0, 1.0, 1.0)), alpha=-1.0, gamma=0.0)
    assert float(bce["loss_cls"]) == pytest.approx(a * c * -math.log(0.99), rel=1e-12)
    assert float(terms["loss_box"]) == 0


def test_retinanet_trains_a_few_steps_and_its_loss_falls():
    torch.manual_seed(0)
    images, targets = few_images(8, 64, max_objects=6, max_size=32, masks=True)
    model = RetinaNet((3, 64, 64), 3, width=8)
    losses, history = train_steps(model, images, targets, steps=15, lr=1e-3)
    assert set(history[-1]) == {"loss_cls", "loss_box"}
    assert min(losses[-3:]) < 0.7 * losses[0]
    out = detect(model, images[:3])
    assert_detections(out, n_images=3, num_classes=3, image_size=64, max_dets=100)
    assert all(bool((o["scores"] > 0.05).all()) for o in out)


def test_retinanet_bad_input():
    with pytest.raises(ValueError, match="in_shape"):
        RetinaNet((3, 48, 48))
    with pytest.raises(ValueError, match="prior"):
        RetinaNet((3, 64, 64), prior=1.0)
    with pytest.raises(ValueError, match="bg_iou"):
        RetinaNet((3, 64, 64), fg_iou=0.4, bg_iou=0.5)
    with pytest.raises(TypeError, match="focal"):
        RetinaNet((3, 64, 64), focal="yes")
    model = RetinaNet((3, 64, 64), 3, width=8)
    with pytest.raises(ValueError, match="targets are required"):
        model(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="images must have shape"):
        model.eval()(torch.rand(2, 3, 32, 64))
    assert isinstance(model, nn.Module)
