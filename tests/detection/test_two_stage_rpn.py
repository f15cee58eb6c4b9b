"""The RPN equals torchvision's ``RegionProposalNetwork``: proposals in eval mode and the losses in
training (same weights, same inputs, same sampler draws), plus its bad-input errors."""

from collections import OrderedDict

import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork as TVRPN
from torchvision.models.detection.rpn import RPNHead as TVRPNHead

from deepnotes.detection import AnchorGenerator
from deepnotes.detection.two_stage import RegionProposalNetwork, RPNHead, filter_proposals

SIZES = ((16,), (32,), (64,))
RATIOS = ((0.5, 1.0, 2.0),) * 3
C = 6


def settings(pre_nms_top_n, post_nms_top_n, score_thresh=0.0):
    """The RPN's arguments after the anchor generator and the head, in torchvision's order: IoU 0.7
    foreground / 0.3 background, 64 sampled anchors per image with 0.5 positives, the top-n dicts,
    NMS at 0.7 and the score threshold."""
    return 0.7, 0.3, 64, 0.5, pre_nms_top_n, post_nms_top_n, 0.7, score_thresh


def build(seed=0, score_thresh=0.0, pre=(300, 150), post=(200, 60), weight_std=0.2):
    torch.manual_seed(seed)
    args = settings({"training": pre[0], "testing": pre[1]}, {"training": post[0], "testing": post[1]}, score_thresh)
    ours = RegionProposalNetwork(AnchorGenerator(SIZES, RATIOS), RPNHead(C, 3), *args).double()
    for p in ours.parameters():  # larger than the 0.01 init so the deltas move the boxes
        torch.nn.init.normal_(p, std=weight_std)
    theirs = TVRPN(TVAnchorGenerator(SIZES, RATIOS), TVRPNHead(C, 3), *args).double()
    sd = ours.head.state_dict()
    theirs.head.load_state_dict(
        {
            "conv.0.0.weight": sd["conv.weight"],
            "conv.0.0.bias": sd["conv.bias"],
            "cls_logits.weight": sd["cls_logits.weight"],
            "cls_logits.bias": sd["cls_logits.bias"],
            "bbox_pred.weight": sd["bbox_pred.weight"],
            "bbox_pred.bias": sd["bbox_pred.bias"],
        }
    )
    return ours, theirs


def inputs(seed, n=2, batch_shape=(96, 128), image_sizes=((96, 128), (80, 101))):
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 3, *batch_shape, dtype=torch.float64)
    h, w = batch_shape
    feats = OrderedDict(
        (str(i), torch.randn(n, C, h // s, w // s, generator=g, dtype=torch.float64))
        for i, s in enumerate((4, 8, 16))
    )
    return images, feats, [tuple(s) for s in image_sizes[:n]]


def random_targets(seed, sizes, counts=(3, 0)):
    g = torch.Generator().manual_seed(seed + 100)
    out = []
    for (h, w), m in zip(sizes, counts):
        xy = torch.rand(m, 2, generator=g, dtype=torch.float64) * torch.tensor([w * 0.7, h * 0.7])
        wh = 8 + torch.rand(m, 2, generator=g, dtype=torch.float64) * 40
        boxes = torch.cat(
            [xy, torch.minimum(xy + wh, torch.tensor([w, h], dtype=torch.float64))], 1
        )
        out.append({"boxes": boxes, "labels": torch.ones(m, dtype=torch.int64)})
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("score_thresh", [0.0, 0.4])
# more than 1,000 boxes before NMS switches batched NMS to its per-level path
@pytest.mark.parametrize("pre,post", [((300, 150), (200, 60)), ((3000, 2000), (2000, 1000))])
def test_eval_proposals_equal_torchvision(seed, score_thresh, pre, post):
    ours, theirs = build(seed, score_thresh, pre=pre, post=post)
    ours.eval(), theirs.eval()
    images, feats, sizes = inputs(seed)
    with torch.no_grad():
        got, got_losses = ours(images, feats, sizes)
        want, want_losses = theirs(ImageList(images, sizes), feats)
    assert got_losses == {} and want_losses == {}
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.shape[0] > 0
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_filter_proposals_boxes_and_scores_equal_torchvision(seed):
    _, theirs = build(seed, score_thresh=0.3)
    theirs.eval()
    g = torch.Generator().manual_seed(seed)
    levels = [120, 60, 20]
    anchors = torch.rand(2, sum(levels), 2, generator=g, dtype=torch.float64) * 90
    wh = torch.rand(2, sum(levels), 2, generator=g, dtype=torch.float64) * 30
    wh[:, :5] = 1e-4  # some boxes too small to keep
    proposals = torch.cat([anchors - 10, anchors - 10 + wh], 2)  # some stick out of the image
    objectness = torch.randn(2 * sum(levels), 1, generator=g, dtype=torch.float64)
    sizes = [(70, 80), (90, 60)]
    got_b, got_s = filter_proposals(
        proposals,
        objectness,
        sizes,
        levels,
        pre_nms_top_n=150,
        post_nms_top_n=60,
        nms_thresh=0.7,
        score_thresh=0.3,
    )
    want_b, want_s = theirs.filter_proposals(proposals, objectness, sizes, levels)
    for gb, gs, wb, ws in zip(got_b, got_s, want_b, want_s):
        torch.testing.assert_close(gb, wb, rtol=0, atol=0)
        torch.testing.assert_close(gs, ws, rtol=0, atol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_losses_and_proposals_equal_torchvision(seed):
    ours, theirs = build(seed, weight_std=0.05)
    ours.train(), theirs.train()
    images, feats, sizes = inputs(seed)
    targets = random_targets(seed, sizes)  # the second image has no objects
    torch.manual_seed(1234)
    got, got_losses = ours(images, feats, sizes, targets)
    torch.manual_seed(1234)
    want, want_losses = theirs(ImageList(images, sizes), feats, targets)
    assert set(got_losses) == set(want_losses) == {"loss_objectness", "loss_rpn_box_reg"}
    # torchvision labels anchors in float32 whatever the input dtype, so its objectness loss is a
    # float32 number: equal to ours to float32 rounding. The box loss is float64 on both sides.
    torch.testing.assert_close(
        got_losses["loss_objectness"].float(), want_losses["loss_objectness"], rtol=2e-7, atol=0
    )
    torch.testing.assert_close(
        got_losses["loss_rpn_box_reg"], want_losses["loss_rpn_box_reg"], rtol=1e-12, atol=1e-15
    )
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)
    # and the gradients of the summed loss w.r.t. the head
    sum(got_losses.values()).backward()
    sum(want_losses.values()).backward()
    # the box branch only sees the float64 box loss: tight; the shared conv also sees the
    # objectness gradient, which torchvision forms against float32 labels
    torch.testing.assert_close(
        ours.head.bbox_pred.weight.grad, theirs.head.bbox_pred.weight.grad, rtol=1e-10, atol=1e-13
    )
    torch.testing.assert_close(
        ours.head.cls_logits.weight.grad, theirs.head.cls_logits.weight.grad, rtol=1e-6, atol=1e-9
    )
    torch.testing.assert_close(
        ours.head.conv.weight.grad, theirs.head.conv[0][0].weight.grad, rtol=1e-6, atol=1e-9
    )


def test_image_without_objects_trains_without_nan():
    ours, _ = build(0, weight_std=0.05)
    ours.train()
    images, feats, sizes = inputs(0)
    targets = random_targets(0, sizes, counts=(0, 0))
    _, losses = ours(images, feats, sizes, targets)
    assert losses["loss_rpn_box_reg"].item() == 0.0
    assert torch.isfinite(losses["loss_objectness"])


def test_all_proposals_degenerate_after_clipping_gives_empty():
    g = torch.Generator().manual_seed(0)
    proposals = (
        torch.rand(1, 30, 2, generator=g, dtype=torch.float64) * 10 + 200
    )  # all right of the image
    proposals = torch.cat([proposals, proposals + 5], 2)
    boxes, scores = filter_proposals(
        proposals,
        torch.zeros(30, 1, dtype=torch.float64),
        [(50, 50)],
        [30],
        pre_nms_top_n=10,
        post_nms_top_n=5,
        nms_thresh=0.7,
    )
    assert boxes[0].shape == (0, 4) and scores[0].shape == (0,)


# --- bad input -------------------------------------------------------------------------------


def test_wrong_number_of_feature_levels():
    ours, _ = build()
    images, feats, sizes = inputs(0)
    with pytest.raises(ValueError, match="one map per anchor level"):
        ours.eval()(images, list(feats.values())[:2], sizes)


def test_head_and_anchor_generator_disagree_on_anchors_per_location():
    top_n = {"training": 10, "testing": 10}
    with pytest.raises(ValueError, match="anchors per location"):
        RegionProposalNetwork(AnchorGenerator(SIZES, RATIOS), RPNHead(C, 5), *settings(top_n, top_n))


def test_more_anchor_locations_than_image_pixels():
    ours, _ = build()
    images, feats, sizes = inputs(0)
    feats["0"] = torch.randn(2, C, 200, 200, dtype=torch.float64)
    with pytest.raises(ValueError, match="more anchor locations"):
        ours.eval()(images, feats, sizes)


def test_feature_channels_mismatch():
    ours, _ = build()
    images, feats, sizes = inputs(0)
    feats["1"] = feats["1"][:, :3]
    with pytest.raises(ValueError, match=r"features\[1\] must have 6 channels"):
        ours.eval()(images, feats, sizes)


def test_feature_batch_mismatch():
    ours, _ = build()
    images, feats, sizes = inputs(0)
    feats["2"] = feats["2"][:1]
    with pytest.raises(ValueError, match="batch size"):
        ours.eval()(images, feats, sizes)


def test_image_sizes_count_and_extent():
    ours, _ = build()
    images, feats, _ = inputs(0)
    ours.eval()
    with pytest.raises(ValueError, match="one \\(height, width\\) per image"):
        ours(images, feats, [(96, 128)])
    with pytest.raises(ValueError, match="exceeds the batch"):
        ours(images, feats, [(96, 128), (97, 128)])


def test_training_without_targets():
    ours, _ = build()
    images, feats, sizes = inputs(0)
    with pytest.raises(ValueError, match="targets must be given"):
        ours.train()(images, feats, sizes)


def test_target_boxes_of_wrong_shape():
    ours, _ = build()
    images, feats, sizes = inputs(0)
    targets = [
        {"boxes": torch.zeros(3, 5, dtype=torch.float64)},
        {"boxes": torch.zeros(0, 4, dtype=torch.float64)},
    ]
    with pytest.raises(ValueError, match=r"targets\[0\]\['boxes'\] must have shape \(N, 4\)"):
        ours.train()(images, feats, sizes, targets)


def test_target_count_and_missing_boxes():
    ours, _ = build()
    images, feats, sizes = inputs(0)
    ours.train()
    with pytest.raises(ValueError, match="one dict per image"):
        ours(images, feats, sizes, [{"boxes": torch.zeros(0, 4)}])
    with pytest.raises(ValueError, match="'boxes' entry"):
        ours(images, feats, sizes, [{}, {}])


def test_top_n_dict_keys():
    with pytest.raises(ValueError, match="'training' and 'testing'"):
        RegionProposalNetwork(AnchorGenerator(SIZES, RATIOS), RPNHead(C, 3),
                              *settings({"train": 10, "testing": 10}, {"training": 10, "testing": 10}))


def test_rpn_head_rejects_non_4d_features():
    with pytest.raises(ValueError, match=r"features\[0\]"):
        RPNHead(C, 3)([torch.zeros(C, 8, 8)])
