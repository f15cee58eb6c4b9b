"""Mask R-CNN and Mask Scoring R-CNN as detectors: registration, training steps with a falling mask
loss, output format, images without objects, boxes outside the image, the MaskIoU head's targets
(against a slow loop over torchvision's paste), loss and re-scoring, and bad input."""

import math

import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste

from deepnotes.core.registry import MODELS
from deepnotes.data import shapes
from deepnotes.data.export import rle_to_mask
from deepnotes.detection.two_stage import (
    MSRCNN,
    MSRCNNFPN,
    MaskIoUHead,
    MaskRCNN,
    MaskRCNNFPN,
    maskiou_loss,
    maskiou_targets,
    rescore,
)

from ._helpers import few_images, train_steps

SMALL = dict(width=8, representation_size=32, rpn_batch_size_per_image=64, box_batch_size_per_image=32)


def _data(n=8):
    return few_images(n, 64, max_objects=3, max_size=32, masks=True)


PYRAMID = dict(fpn_channels=8, anchor_sizes=(4, 8, 16, 32))


def _model(cls=MaskRCNN, seed=0, **kw):
    torch.manual_seed(seed)
    return cls((3, 64, 64), 3, **{**SMALL, **(PYRAMID if issubclass(cls, MaskRCNNFPN) else {}), **kw})


def test_registered_with_zoo_settings():
    for name, cls in (("mask_rcnn", MaskRCNN), ("ms_rcnn", MSRCNN), ("mask_rcnn_fpn", MaskRCNNFPN),
                      ("ms_rcnn_fpn", MSRCNNFPN)):
        meta = MODELS.meta(name)
        assert meta["task"] == "detect" and MODELS.get(name) is cls
        assert meta["zoo"]["target_map50"] == 0.85 and meta["zoo"]["epochs"] >= 1


@pytest.mark.parametrize("cls", [MaskRCNN, MSRCNN, MaskRCNNFPN, MSRCNNFPN])
def test_training_steps_lower_the_mask_loss(cls):
    x, t = _data()
    model = _model(cls)
    _, history = train_steps(model, x, t, steps=30, lr=3e-3, loss_names=model.loss_names)
    assert all(math.isfinite(v) for h in history for v in h.values())
    first = sum(h["loss_mask"] for h in history[:3]) / 3
    last = sum(h["loss_mask"] for h in history[-3:]) / 3
    assert last < 0.8 * first, (first, last)
    total = [sum(h.values()) for h in history]
    assert sum(total[-3:]) < sum(total[:3])


@pytest.mark.parametrize("cls", [MaskRCNN, MSRCNN, MaskRCNNFPN, MSRCNNFPN])
def test_eval_output_format(cls):
    x, _ = _data(3)
    model = _model(cls, box_score_thresh=0.0).eval()
    with torch.no_grad():
        out = model(x)
    assert len(out) == 3
    for det in out:
        d = len(det["boxes"])
        assert d > 0 and det["masks"].shape == (d, 1, 64, 64) and det["masks"].dtype == torch.float32
        assert (det["masks"] >= 0).all() and (det["masks"] <= 1).all()
        if issubclass(cls, MSRCNN):  # mask scores = box scores × predicted mask IoU in [0, 1]
            assert det["mask_scores"].shape == (d,) and (det["mask_scores"] <= det["scores"] + 1e-7).all()
        else:
            assert "mask_scores" not in det


@pytest.mark.parametrize("cls", [MSRCNN, MaskRCNNFPN, MSRCNNFPN])
def test_images_without_objects_train_and_evaluate(cls):
    x, _ = _data(2)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 64, 64, dtype=torch.uint8)}
    model = _model(cls)
    model.train()
    terms = model(x, [empty, empty])
    assert all(torch.isfinite(v) for v in terms.values())
    assert terms["loss_mask"].item() == 0.0 and terms.get("loss_maskiou", torch.zeros(())).item() == 0.0
    sum(terms.values()).backward()
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 64, 64))
    for det in out:
        assert det["masks"].shape[1:] == (1, 64, 64) and torch.isfinite(det["masks"]).all()


@pytest.mark.parametrize("cls", [MSRCNN, MaskRCNNFPN, MSRCNNFPN])
def test_mask_head_given_boxes_outside_the_image(cls):
    x, t = _data(2)
    model = _model(cls).eval()
    feats = model.features(x)
    outside = [torch.tensor([[70.0, 70.0, 90.0, 95.0], [-40.0, -30.0, -5.0, -2.0], [50.0, -10.0, 80.0, 20.0]])] * 2
    with torch.no_grad():
        pooled, logits = model.roi_heads._mask_logits(feats, outside, [(64, 64)] * 2)
    assert torch.isfinite(logits).all()
    # training with objects reaching past the border (their masks cut by the image) stays finite
    t = [dict(ti, boxes=ti["boxes"] + torch.tensor([20.0, 20.0, 40.0, 40.0])) for ti in t]
    model.train()
    terms = model(x, t)
    assert all(torch.isfinite(v) for v in terms.values())


def test_maskiou_targets_equal_a_slow_loop():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(9, 1, 28, 28, generator=g, dtype=torch.float64)
    xy = torch.rand(9, 2, generator=g, dtype=torch.float64) * 50 - 5
    boxes = torch.cat([xy, xy + 4 + torch.rand(9, 2, generator=g, dtype=torch.float64) * 30], 1)
    gt = torch.rand(9, 48, 56, generator=g) < 0.3
    gt[4] = False
    got = maskiou_targets(probs, boxes, gt)
    for k in range(9):
        pred = tv_paste(probs[k : k + 1], boxes[k : k + 1], (48, 56))[0, 0] > 0.5
        inter, union = (pred & gt[k]).sum().item(), (pred | gt[k]).sum().item()
        assert abs(float(got[k]) - (inter / union if union else 0.0)) < 1e-12


def test_maskiou_loss_and_rescore_by_hand():
    pred = torch.tensor([[0.0, 0.2, 0.9], [0.0, 0.7, 0.1], [0.0, 1.4, -0.3]], requires_grad=True)
    labels, target = torch.tensor([2, 1, 2]), torch.tensor([0.5, 0.5, 0.0])
    loss = maskiou_loss(pred, labels, target)
    assert abs(loss.item() - ((0.9 - 0.5) ** 2 + (0.7 - 0.5) ** 2 + 0.3**2) / 3) < 1e-7
    loss.backward()
    assert maskiou_loss(pred[:0], labels[:0], target[:0]).item() == 0.0
    s = rescore([torch.tensor([0.8, 0.5]), torch.tensor([0.9])], pred.detach(), [labels[:2], labels[2:]])
    assert torch.allclose(s[0], torch.tensor([0.8 * 0.9, 0.5 * 0.7])) and s[1].item() == 0.0  # clamped at 0


def test_maskiou_head_shapes_and_bad_input():
    head = MaskIoUHead(6, 4, pool_size=8, conv_width=5, representation_size=16)
    out = head(torch.randn(3, 6, 8, 8), torch.rand(3, 1, 16, 16))
    assert out.shape == (3, 4)
    assert MaskIoUHead(6, 4, pool_size=7)(torch.randn(2, 6, 7, 7), torch.rand(2, 1, 14, 14)).shape == (2, 4)
    with pytest.raises(ValueError, match="pool_size must be >= 1"):
        MaskIoUHead(6, 4, pool_size=0)
    with pytest.raises(ValueError, match="mask \\(K, 1, 16, 16\\)"):
        head(torch.randn(3, 6, 8, 8), torch.rand(3, 1, 14, 14))
    with pytest.raises(ValueError, match="one row per RoI"):
        head(torch.randn(3, 6, 8, 8), torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="one entry per RoI"):
        maskiou_loss(torch.zeros(2, 3), torch.zeros(3, dtype=torch.int64), torch.zeros(2))
    with pytest.raises(ValueError, match="one mask per RoI"):
        maskiou_targets(torch.rand(2, 1, 7, 7), torch.zeros(2, 4), torch.zeros(3, 8, 8))


@pytest.mark.parametrize("cls", [MaskRCNNFPN, MSRCNNFPN])
def test_fpn_mask_branch_pools_by_level_as_torchvision(cls):
    """The FPN models' mask branch (and MS R-CNN's MaskIoU head, which reads the same features)
    takes each RoI (14 × 14) from the level torchvision's ``MultiScaleRoIAlign`` maps it to."""
    from torchvision.ops import MultiScaleRoIAlign as TVMultiScaleRoIAlign

    x, _ = _data(2)
    model = _model(cls).eval()
    feats = model.features(x)
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(2, 10, 2, generator=g) * 40
    boxes = list(torch.cat([xy, xy + 2 + torch.rand(2, 10, 2, generator=g) * 40], -1))
    ref = TVMultiScaleRoIAlign(["p2", "p3", "p4"], 14, 2, canonical_scale=56, canonical_level=4)
    with torch.no_grad():
        pooled, logits = model.roi_heads._mask_logits(feats, boxes, [(64, 64)] * 2)
    torch.testing.assert_close(pooled, ref(feats, boxes, [(64, 64)] * 2), rtol=1e-5, atol=1e-6)
    assert logits.shape == (20, 4, 28, 28)
    if cls is MSRCNNFPN:  # the MaskIoU head takes those pooled P2-P4 features and a mask per RoI
        assert model.roi_heads.maskiou_head(pooled, logits[:, :1].sigmoid()).shape == (20, 4)


def test_model_bad_input():
    with pytest.raises(ValueError, match="mask_stride must be one of"):
        _model(mask_stride=2)
    with pytest.raises(ValueError, match="mask_stride: the FPN model"):
        _model(MaskRCNNFPN, mask_stride=8)
    with pytest.raises(ValueError, match="mask_stride: the FPN model"):
        _model(MSRCNNFPN, mask_stride=8)
    with pytest.raises(ValueError, match="one size per pyramid level"):
        _model(MaskRCNNFPN, anchor_sizes=(8, 16))
    with pytest.raises(ValueError, match="mask_pool_size must be >= 2"):
        _model(mask_pool_size=1)
    x, t = _data(2)
    model = _model()
    model.train()
    with pytest.raises(ValueError, match="'masks' entry"):
        model(x, [{k: v for k, v in ti.items() if k != "masks"} for ti in t])
    with pytest.raises(ValueError, match="one mask per box"):
        model(x, [dict(ti, masks=ti["masks"][:0]) for ti in t if len(ti["boxes"])])


# --- the command line: deepnotes train --task detect, then deepnotes detect ------------------------
@pytest.mark.parametrize("name", ["mask_rcnn", "ms_rcnn", "mask_rcnn_fpn", "ms_rcnn_fpn"])
def test_cli_trains_and_detects_with_mask_models(name, tmp_path, monkeypatch):
    import functools
    import json

    from PIL import Image

    import deepnotes.data as data
    from deepnotes.cli import main

    real = data.resolve_dataset
    tiny = dict(n_train=8, n_val=2, n_test=2, image_size=32, max_objects=2, min_size=8, max_size=16)
    monkeypatch.setattr(data, "resolve_dataset", lambda n: functools.partial(shapes, **tiny) if n == "shapes" else real(n))
    run = tmp_path / "run"
    assert main(["train", "--task", "detect", "--model", name, "--data", "shapes", "--epochs", "1",
                 "--batch-size", "4", "--model-kw", "width=8", "--model-kw",
                 "anchor_sizes=(4,8,16,32)" if name.endswith("_fpn") else "anchor_sizes=(8,16)",
                 "--model-kw", "mask_pool_size=7", "--out", str(run), "--no-progress"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    for key in ("test_map_50", "test_map_segm_50"):  # box and mask mAP of the test split
        assert 0 <= summary[key] <= 1 or summary[key] == -1
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val_map_segm_50" in header and "train_loss_mask" in header
    image, _ = shapes(**tiny).test[0]
    path = tmp_path / "a.png"
    Image.fromarray((image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()).save(path)
    assert main(["detect", str(run), str(path), "--out", str(tmp_path / "det"), "--score-thresh", "0"]) == 0
    assert (tmp_path / "det" / "a.png").exists()
    found = json.loads((tmp_path / "det" / "detections.json").read_text())
    assert found, "score threshold 0 keeps every detection"
    for r in found:  # every detection carries its mask as an uncompressed RLE of the file's size
        assert rle_to_mask(r["segmentation"]).shape == (32, 32)
        assert ("mask_score" in r) == name.startswith("ms_rcnn")


def test_detect_masks_are_resized_to_the_file_and_thresholded():
    from deepnotes.commands.detect import _masks_at

    probs = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    keep = torch.tensor([True, False, True])
    got = _masks_at({"masks": probs}, keep, (40, 24))
    want = torch.nn.functional.interpolate(probs[[0, 2]], size=(40, 24), mode="bilinear", align_corners=False)[:, 0] > 0.5
    assert got.dtype == torch.bool and torch.equal(got, want)
    assert _masks_at({"masks": probs}, torch.zeros(3, dtype=torch.bool), (40, 24)).shape == (0, 40, 24)
    assert _masks_at({"boxes": torch.zeros(0, 4)}, keep, (40, 24)) is None
