"""FPN (equal to torchvision's ``FeaturePyramidNetwork``; RoI levels equal to ``MultiScaleRoIAlign``'s
mapper), PANet (adaptive pooling against ``torchvision.ops.roi_align`` and a plain loop), Cascade
R-CNN (stage thresholds, refinement and score averaging by hand), the 4-step alternating training,
and each model's training, output format and bad input."""

import math
from collections import OrderedDict

import pytest
import torch
from torchvision.ops import FeaturePyramidNetwork as TVFPN
from torchvision.ops import MultiScaleRoIAlign as TVMultiScaleRoIAlign
from torchvision.ops import roi_align as tv_roi_align
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from deepnotes.core.registry import MODELS
from deepnotes.data import shapes
from deepnotes.detection.two_stage import (
    AdaptiveFeaturePooling,
    AdaptiveTwoMLPHead,
    CascadeFPN,
    CascadeRCNN,
    CascadeRoIHeads,
    FasterRCNN,
    FeaturePyramid,
    FPNFasterRCNN,
    MultiScaleRoIAlign,
    PANet,
    train_alternating,
)

from ._helpers import assert_detections, assert_rejects, detect, few_images, no_objects, train_steps

SMALL = dict(width=8, representation_size=32, rpn_batch_size_per_image=64, box_batch_size_per_image=32)
PYRAMID = dict(SMALL, fpn_channels=8, anchor_sizes=(4, 8, 16, 32))


# --- FPN -----------------------------------------------------------------------------------------
def test_feature_pyramid_equals_torchvision_forward_and_backward():
    torch.manual_seed(0)
    chans = [3, 5, 7]
    ours = FeaturePyramid(chans, 6, extra_pool=True).double()
    ref = TVFPN(chans, 6, extra_blocks=LastLevelMaxPool()).double()
    with torch.no_grad():
        for i in range(3):
            ref.inner_blocks[i][0].weight.copy_(ours.lateral[i].weight)
            ref.inner_blocks[i][0].bias.copy_(ours.lateral[i].bias)
            ref.layer_blocks[i][0].weight.copy_(ours.output[i].weight)
            ref.layer_blocks[i][0].bias.copy_(ours.output[i].bias)
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(2, c, s, s + 2, generator=g, dtype=torch.float64, requires_grad=True)
          for c, s in zip(chans, (16, 8, 4))]
    got = ours(xs)
    want = list(ref(OrderedDict((str(i), x) for i, x in enumerate(xs))).values())
    assert len(got) == len(want) == 4
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    w = [torch.randn(a.shape, generator=g, dtype=torch.float64) for a in got]
    ga = torch.autograd.grad(sum((a * v).sum() for a, v in zip(got, w)), xs)
    gb = torch.autograd.grad(sum((b * v).sum() for b, v in zip(want, w)), xs)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_fpn_level_assignment_equals_torchvision_multiscale_roi_align():
    torch.manual_seed(0)
    model = FPNFasterRCNN((3, 128, 128), 3, width=8, fpn_channels=8).double().eval()
    images = torch.rand(2, 3, 128, 128, dtype=torch.float64)
    with torch.no_grad():
        feats = model.features(images)
    g = torch.Generator().manual_seed(3)
    boxes = []
    for _ in range(2):  # sides 6-120 px: every level P2-P4 gets RoIs
        wh = torch.exp(torch.empty(40, 2, dtype=torch.float64).uniform_(math.log(6), math.log(120), generator=g))
        xy = torch.rand(40, 2, generator=g, dtype=torch.float64) * (128 - wh).clamp(min=1)
        boxes.append(torch.cat([xy, xy + wh], 1))
    sizes = [(128, 128)] * 2
    pool = model.roi_heads.box_roi_pool
    assert isinstance(pool, MultiScaleRoIAlign) and pool.canonical_level == 4
    ref = TVMultiScaleRoIAlign(["p2", "p3", "p4"], 7, 2, canonical_scale=56, canonical_level=4)
    got, want = pool(feats, boxes, sizes), ref(feats, boxes, sizes)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    _, mapper = pool._levels([feats[n] for n in ("p2", "p3", "p4")], sizes)
    ours, theirs = mapper(boxes), ref.map_levels(boxes)
    assert torch.equal(ours, theirs.to(ours.dtype))
    assert set(ours.tolist()) == {0, 1, 2}


# --- PANet ---------------------------------------------------------------------------------------
def test_adaptive_pooling_reads_every_level_as_torchvision_roi_align():
    g = torch.Generator().manual_seed(0)
    feats = {n: torch.randn(2, 3, 32 // s, 32 // s, generator=g, dtype=torch.float64)
             for n, s in (("p2", 4), ("p3", 8), ("p4", 16))}
    boxes = [torch.tensor([[1.0, 2.0, 20.0, 30.0], [5.0, 5.0, 9.0, 12.0]], dtype=torch.float64),
             torch.tensor([[0.0, 0.0, 32.0, 32.0]], dtype=torch.float64)]
    out = AdaptiveFeaturePooling(["p2", "p3", "p4"], 5, 2)(feats, boxes, [(32, 32)] * 2)
    assert out.shape == (3, 3, 3, 5, 5)
    for level, (name, s) in enumerate((("p2", 4), ("p3", 8), ("p4", 16))):
        torch.testing.assert_close(out[:, level], tv_roi_align(feats[name], boxes, 5, 1 / s, 2),
                                   rtol=1e-12, atol=1e-12)


def test_adaptive_head_fuses_levels_by_max_as_a_plain_loop():
    torch.manual_seed(0)
    head = AdaptiveTwoMLPHead(3, 2 * 2 * 2, 5).double()
    x = torch.randn(4, 3, 2, 2, 2, dtype=torch.float64)
    want = torch.empty(4, 5, dtype=torch.float64)
    for k in range(4):
        fused = torch.full((5,), -math.inf, dtype=torch.float64)
        for level in range(3):
            fused = torch.maximum(fused, torch.relu(head.fc6[level](x[k, level].flatten())))
        want[k] = torch.relu(head.fc7(fused))
    torch.testing.assert_close(head(x), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="levels"):
        head(torch.randn(4, 2, 2, 2, 2, dtype=torch.float64))


# --- Cascade -------------------------------------------------------------------------------------
def test_cascade_stage_iou_thresholds():
    heads = CascadeRCNN((3, 32, 32), 3, **SMALL).roi_heads
    assert heads.stage_ious == (0.5, 0.6, 0.7)
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    # proposals of IoU 0.55, 0.65 and 0.75 with the object (same height, shorter width)
    props = torch.tensor([[0.0, 0.0, 5.5, 10.0], [0.0, 0.0, 6.5, 10.0], [0.0, 0.0, 7.5, 10.0]])
    labels = [s.assign_targets_to_proposals([props], [gt], [torch.tensor([2])])[1][0].tolist()
              for s in heads.stages]
    assert labels == [[2, 2, 2], [0, 2, 2], [0, 0, 2]]


def _set_stage(stage, dx_bias, cls_bias):
    with torch.no_grad():
        for layer in (stage.box_predictor.cls_score, stage.box_predictor.bbox_pred):
            layer.weight.zero_()
            layer.bias.zero_()
        stage.box_predictor.bbox_pred.bias[0] = dx_bias
        stage.box_predictor.cls_score.bias.copy_(torch.tensor(cls_bias))


def test_cascade_refines_boxes_stage_by_stage_and_averages_scores():
    torch.manual_seed(0)
    heads = CascadeRCNN((3, 32, 32), 3, **SMALL).roi_heads.eval()
    # stage 1 and 2 each move every box right by 0.1 of its width (dx = bias / weight_x), stage 3 not
    cls = ([0.0, 2.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 3.0, 0.0, 0.0])
    for stage, dx, c in zip(heads.stages, (10 * 0.1, 20 * 0.1, 0.0), cls):
        _set_stage(stage, dx, c)
    feats = {"0": torch.randn(1, SMALL["width"] * 4, 2, 2)}
    props = [torch.tensor([[2.0, 4.0, 12.0, 14.0]])]
    det = heads(feats, props, [(32, 32)])[0][0]
    p1 = sum(torch.softmax(torch.tensor(c), 0) for c in cls) / 3  # the mean of the stages' softmax
    assert det["labels"][0] == 1
    torch.testing.assert_close(det["scores"][0], p1[1])
    torch.testing.assert_close(det["boxes"][0], torch.tensor([2.0 + 2.0, 4.0, 12.0 + 2.0, 14.0]), rtol=0, atol=1e-5)


def test_cascade_rejects_bad_stages():
    pool = MultiScaleRoIAlign(["0"], 7, 2)
    kw = dict(batch_size_per_image=8, positive_fraction=0.25, score_thresh=0.1, nms_thresh=0.5, detections_per_img=5)
    with pytest.raises(ValueError, match="stage_ious"):
        CascadeRoIHeads(pool, 8, 4, 3, stage_ious=(0.5, 0.6, 0.7, 0.8), stage_weights=(1, 1, 1, 1), **kw)
    with pytest.raises(ValueError, match="stage_ious"):
        CascadeRoIHeads(pool, 8, 4, 3, stage_ious=(0.5, 0.6), stage_weights=(1.0,), **kw)
    with pytest.raises(ValueError, match=r"stage_ious\[1\]"):
        CascadeRoIHeads(pool, 8, 4, 3, stage_ious=(0.5, 1.5), stage_weights=(1, 1), **kw)


# --- the four as detectors -----------------------------------------------------------------------
MODELS_KW = {"fpn": PYRAMID, "panet": PYRAMID, "cascade_rcnn": dict(SMALL, anchor_sizes=(8, 16)), "cascade_fpn": PYRAMID}


@pytest.mark.parametrize("name", sorted(MODELS_KW))
def test_detector_trains_and_its_loss_falls(name):
    assert MODELS.meta(name)["task"] == "detect" and "zoo" in MODELS.meta(name)
    torch.manual_seed(0)
    model = MODELS.create(name, (3, 32, 32), 3, **MODELS_KW[name])
    x, t = few_images(4)
    t[1] = no_objects()
    losses, _ = train_steps(model, x, t, steps=25, lr=3e-3, loss_names=model.loss_names)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", sorted(MODELS_KW))
def test_detector_output_format_and_empty_batches(name):
    torch.manual_seed(0)
    model = MODELS.create(name, (3, 32, 32), 3, box_detections_per_img=7, **MODELS_KW[name])
    x, _ = few_images(3)
    terms = model(x, [no_objects()] * 3)  # no object anywhere: finite losses
    assert all(torch.isfinite(v) for v in terms.values())
    out = detect(model, x)
    assert_detections(out, n_images=3, num_classes=3, image_size=32, max_dets=7)


@pytest.mark.parametrize("cls", [FPNFasterRCNN, PANet, CascadeRCNN, CascadeFPN])
def test_detector_bad_input(cls):
    kw = MODELS_KW[{FPNFasterRCNN: "fpn", PANet: "panet", CascadeRCNN: "cascade_rcnn", CascadeFPN: "cascade_fpn"}[cls]]
    model = cls((3, 32, 32), 3, **kw)
    x, t = few_images(2)
    assert_rejects(model, x, t, wrong_size=48, bad_label=4)
    with pytest.raises(ValueError, match="in_shape"):
        cls((3, 30, 30), 3)


def test_cascade_fpn_stages_pool_by_level_as_torchvision():
    """Every stage of the FPN cascade reads its RoIs from the level torchvision's
    ``MultiScaleRoIAlign`` maps them to (k0 = 4, the model's canonical scale)."""
    torch.manual_seed(0)
    model = CascadeFPN((3, 64, 64), 3, **dict(PYRAMID, box_batch_size_per_image=16)).eval()
    x, _ = few_images(2, 64)
    feats = model.features(x)
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(2, 12, 2, generator=g) * 40
    boxes = list(torch.cat([xy, xy + 2 + torch.rand(2, 12, 2, generator=g) * 40], -1))
    ref = TVMultiScaleRoIAlign(["p2", "p3", "p4"], 7, 2, canonical_scale=56, canonical_level=4)
    want = ref(feats, boxes, [(64, 64)] * 2)
    heads = model.roi_heads
    torch.testing.assert_close(heads.box_roi_pool(feats, boxes, [(64, 64)] * 2), want, rtol=1e-5, atol=1e-6)
    assert all(stage.box_roi_pool is heads.box_roi_pool for stage in heads.stages)


def test_pyramid_models_need_one_anchor_size_per_level():
    for cls in (FPNFasterRCNN, CascadeFPN):
        with pytest.raises(ValueError, match="one size per pyramid level"):
            cls((3, 32, 32), 3, anchor_sizes=(8, 16))
    with pytest.raises(ValueError, match="canonical_scale"):
        FPNFasterRCNN((3, 32, 32), 3, canonical_scale=0)


# --- 4-step alternating training -----------------------------------------------------------------
def test_alternating_training_shares_the_features_of_step_2():
    x, t = few_images(4)
    batches = [(x[:2], t[:2]), (x[2:], t[2:])]

    def run(epochs):
        torch.manual_seed(0)
        model = FasterRCNN((3, 32, 32), 3, **dict(SMALL, anchor_sizes=(8, 16)))
        start = {k: v.clone() for k, v in model.state_dict().items()}
        history = train_alternating(model, batches, epochs=epochs, lr=1e-3)
        return model, start, history

    two, start, h2 = run((1, 1, 0, 0))
    four, _, h4 = run((1, 1, 2, 2))
    assert [len(v) for v in h4.values()] == [2, 2, 4, 4] and all(math.isfinite(v) for vs in h4.values() for v in vs)
    same = lambda a, b: all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))  # noqa: E731
    # steps 3 and 4 freeze the backbone of step 2 (batch-norm statistics included)
    assert same(two.backbone, four.backbone)
    assert not torch.equal(two.backbone.stem[0].weight, start["backbone.stem.0.weight"])
    # step 3 trains the RPN, step 4 the RoI heads
    assert not same(two.rpn, four.rpn) and not same(two.roi_heads, four.roi_heads)
    four.eval()
    with torch.no_grad():
        assert len(four(x)) == 4
    with pytest.raises(ValueError, match="epochs"):
        train_alternating(four, batches, epochs=(1, 1, 1))



# --- the command line: deepnotes train --task detect, then deepnotes detect ------------------------
@pytest.mark.parametrize("name", ["faster_rcnn", "fpn", "panet", "cascade_rcnn", "cascade_fpn"])
def test_cli_trains_and_detects_with_each_two_stage_model(name, tmp_path, monkeypatch):
    import functools
    import json

    from PIL import Image

    import deepnotes.data as data
    from deepnotes.cli import main

    real = data.resolve_dataset
    tiny = dict(n_train=8, n_val=2, n_test=2, image_size=32, max_objects=2, min_size=8, max_size=16)
    monkeypatch.setattr(data, "resolve_dataset",
                        lambda n: functools.partial(shapes, **tiny) if n == "shapes" else real(n))
    anchors = "anchor_sizes=(4,8,16,32)" if name in ("fpn", "panet", "cascade_fpn") else "anchor_sizes=(8,16)"
    run = tmp_path / "run"
    assert main(["train", "--task", "detect", "--model", name, "--data", "shapes", "--epochs", "1",
                 "--batch-size", "4", "--model-kw", "width=8", "--model-kw", anchors, "--out", str(run),
                 "--no-progress"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert 0 <= summary["test_map_50"] <= 1 or summary["test_map_50"] == -1
    image, _ = shapes(**tiny).test[0]
    path = tmp_path / "a.png"
    Image.fromarray((image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()).save(path)
    assert main(["detect", str(run), str(path), "--out", str(tmp_path / "det"), "--score-thresh", "0"]) == 0
    assert (tmp_path / "det" / "a.png").exists()
