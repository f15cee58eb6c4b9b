"""YOLOv3 and its YOLOv4/v5 switches: the responsible-anchor assignment and every loss term against
values computed by hand on a 2 × 2 grid, CIoU against torchvision, DropBlock / SPP / Mosaic /
CutMix / multi-scale pieces, every switch building and training, output format and bad input."""

import math

import pytest
import torch
import torchvision

from deepnotes.core.registry import MODELS
from deepnotes.detection.models import (
    SPP,
    YOLOv3,
    cutmix_batch,
    drop_block,
    mosaic_batch,
    rescale_batch,
    smooth_labels,
    yolo_assign,
    yolo_loss,
)
from deepnotes.detection.models.yolo_loss import decode

from ._helpers import assert_detections, assert_rejects, detect, few_images, no_objects, train_steps

LOG2 = math.log(2)


def _few_images(n=4):
    return few_images(n, 64, max_objects=3, max_size=24)


def test_yolo_assign_picks_the_best_shaped_anchor_over_all_levels():
    anchors = [torch.tensor([[10.0, 10.0]]), torch.tensor([[20.0, 40.0], [40.0, 20.0]])]
    boxes = torch.tensor([
        [1.0, 2.0, 19.0, 40.0],   # 18 × 38: IoU with (20, 40) is 684/800 — level 1, anchor 0
        [0.0, 0.0, 9.0, 11.0],    # 9 × 11: only (10, 10) overlaps well — level 0, anchor 0
        [4.0, 6.0, 36.0, 18.0],   # 32 × 12, centre (20, 12): (40, 20) — level 1, anchor 1, cell (0, 1)
        [25.0, 0.0, 55.0, 14.0],  # 30 × 14, centre (40, 7) beyond the 32 px image: (40, 20), col clamped to 1
    ])
    level, anchor, row, col = yolo_assign(boxes, anchors, (8, 16), ((4, 4), (2, 2)))
    assert level.tolist() == [1, 0, 1, 1]
    assert anchor.tolist() == [0, 0, 1, 1]
    assert row.tolist() == [1, 0, 0, 0]  # centre y 21 → 21 // 16 = 1; 5.5 // 8 = 0; 12 // 16 = 0; 7 // 16 = 0
    assert col.tolist() == [0, 0, 1, 1]  # 10 // 16 = 0; 4.5 // 8 = 0; 20 // 16 = 1; 40 // 16 = 2 → 1


# one level, stride 4, a 2 × 2 grid (8 × 8 px image), one 4 × 4 anchor, two classes; all raw
# outputs 0 except the class logits (2, −1) of cell (0, 0). The object [1, 1, 5, 3]: centre (3, 2)
# → cell (0, 0), offsets (0.75, 0.5), size 4 × 2 → log-ratios (0, −log 2). With t = 0 every
# decoded box is the 4 × 4 cell box: IoU 6/18 = 1/3 with the object at cell (0, 0), 2/22 at (0, 1),
# 0 in row 1.
GT = torch.tensor([[1.0, 1.0, 5.0, 3.0]])


def _raw():
    raw = torch.zeros(1, 1, 2, 2, 7, dtype=torch.float64)
    raw[0, 0, 0, 0, 5:] = torch.tensor([2.0, -1.0])
    return raw


def _loss(**kw):
    return yolo_loss([_raw()], [torch.tensor([[4.0, 4.0]])], (4,), GT.double(), torch.tensor([0]), torch.tensor([0]), **kw)


def _bce(x, y):
    return math.log1p(math.exp(x)) - x * y  # softplus(x) − x·y


def test_yolo_loss_terms_by_hand():
    terms = _loss()
    assert float(terms["loss_xy"]) == pytest.approx((0.5 - 0.75) ** 2 + (0.5 - 0.5) ** 2, abs=1e-12)
    assert float(terms["loss_wh"]) == pytest.approx(0.0**2 + LOG2**2, abs=1e-12)
    assert float(terms["loss_obj"]) == pytest.approx(4 * LOG2, abs=1e-12)  # BCE(0, y) = log 2 for every cell
    assert float(terms["loss_class"]) == pytest.approx(_bce(2.0, 1.0) + _bce(-1.0, 0.0), abs=1e-12)


def test_yolo_loss_ignores_unassigned_boxes_that_already_overlap():
    # ignore_thresh 0.05 < 1/11: cell (0, 1) is neither positive nor negative
    assert float(_loss(ignore_thresh=0.05)["loss_obj"]) == pytest.approx(3 * LOG2, abs=1e-12)
    # 0.4 > 1/3: the positive cell is always counted
    assert float(_loss(ignore_thresh=0.4)["loss_obj"]) == pytest.approx(4 * LOG2, abs=1e-12)


def test_yolo_loss_label_smoothing_and_softmax_classes_by_hand():
    eps = 0.2
    smooth = _loss(label_smoothing=eps)["loss_class"]
    assert float(smooth) == pytest.approx(_bce(2.0, 1 - eps / 2) + _bce(-1.0, eps / 2), abs=1e-12)
    soft = _loss(class_loss="softmax")["loss_class"]
    assert float(soft) == pytest.approx(math.log1p(math.exp(-3.0)), abs=1e-12)  # −log softmax(2, −1)[0]
    torch.testing.assert_close(smooth_labels(torch.tensor([1.0, 0.0]), eps), torch.tensor([0.9, 0.1]))


def test_yolo_ciou_term_equals_torchvision():
    terms = _loss(box_loss="ciou")
    assert set(terms) == {"loss_box", "loss_obj", "loss_class"}
    decoded = decode(_raw(), torch.tensor([[4.0, 4.0]]), 4)[0, 0, 0, 0].unsqueeze(0)
    assert torch.equal(decoded, torch.tensor([[0.0, 0.0, 4.0, 4.0]], dtype=torch.float64))
    ref = torchvision.ops.complete_box_iou_loss(decoded, GT.double(), reduction="sum")
    torch.testing.assert_close(terms["loss_box"], ref, rtol=1e-7, atol=1e-7)


def test_yolo_loss_is_divided_by_the_batch_and_empty_images_only_teach_objectness():
    raw = torch.cat([_raw(), _raw()])
    two = yolo_loss([raw], [torch.tensor([[4.0, 4.0]])], (4,), GT.double(), torch.tensor([0]), torch.tensor([0]))
    one = _loss()
    assert float(two["loss_xy"]) == pytest.approx(float(one["loss_xy"]) / 2, abs=1e-12)
    assert float(two["loss_obj"]) == pytest.approx(8 * LOG2 / 2, abs=1e-12)
    none = yolo_loss([_raw()], [torch.tensor([[4.0, 4.0]])], (4,), torch.zeros(0, 4, dtype=torch.float64),
                     torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    assert float(none["loss_obj"]) == pytest.approx(4 * LOG2, abs=1e-12)
    assert float(none["loss_xy"]) == 0 and float(none["loss_class"]) == 0


def test_drop_block_rate_blocks_and_identity():
    x = torch.ones(200, 1, 12, 12)
    assert drop_block(x, 0.0, 3) is x and drop_block(x, 0.3, 3, training=False) is x
    torch.manual_seed(0)
    y = drop_block(x, 0.2, 3)
    dropped = float((y == 0).double().mean())
    assert 0.15 < dropped < 0.21  # ≈ p, a little less where blocks overlap
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, y.numel() / (y != 0).sum().item()))
    # one forced centre: exactly one 3 × 3 square of zeros
    torch.manual_seed(1)
    z = drop_block(torch.ones(1, 1, 7, 7), 0.999, 7)  # block = the whole map: everything dropped
    assert float(z.abs().sum()) == 0.0


def test_spp_concatenates_stride_one_max_pools():
    torch.manual_seed(0)
    spp = SPP(2, kernel_sizes=(3, 5))
    x = torch.randn(1, 2, 6, 6)
    cat = torch.cat([x, torch.nn.functional.max_pool2d(x, 3, 1, 1), torch.nn.functional.max_pool2d(x, 5, 1, 2)], 1)
    torch.testing.assert_close(spp(x), spp.mix(cat))
    assert spp(x).shape == x.shape


def test_batch_augmentations_keep_boxes_inside_and_p0_is_identity():
    x, t = _few_images(4)
    assert mosaic_batch(x, t, 0.0)[0] is x and cutmix_batch(x, t, 0.0)[0] is x
    torch.manual_seed(0)
    for fn in (mosaic_batch, cutmix_batch):
        xs, ts = fn(x, t, 1.0)
        assert xs.shape == x.shape and len(ts) == 4
        for target in ts:
            b = target["boxes"]
            assert set(target) == {"boxes", "labels"} and len(b) == len(target["labels"])
            assert ((b >= 0) & (b <= 64)).all() and (b[:, 2:] > b[:, :2]).all()
    xs, ts = rescale_batch(x, t, 32)
    assert xs.shape == (4, 3, 32, 32) and torch.allclose(ts[0]["boxes"], t[0]["boxes"] / 2)


SWITCHES = [
    dict(csp=True), dict(spp=True), dict(pan=True), dict(fusion="asff"), dict(fusion="se"), dict(act="mish"),
    dict(dropblock=0.1), dict(mosaic=1.0), dict(cutmix=1.0), dict(label_smoothing=0.1), dict(box_loss="ciou"),
    dict(nms="diou"), dict(multi_scale=True, scales=(0.5, 1.0, 1.5)),
]


@pytest.mark.parametrize("kw", SWITCHES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_every_switch_builds_trains_and_detects(kw):
    torch.manual_seed(0)
    model = YOLOv3((3, 64, 64), 3, width=4, **kw)
    x, t = _few_images(4)
    terms = model(x, t)
    assert set(terms) == set(model.loss_names) and all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    out = detect(model, x)
    assert len(out) == 4 and all(set(d) == {"boxes", "scores", "labels"} for d in out)


def test_yolov3_trains_and_its_loss_falls():
    torch.manual_seed(0)
    model = MODELS.create("yolov3", (3, 64, 64), 3, width=4)
    assert MODELS.meta("yolov3")["task"] == "detect" and "zoo" in MODELS.meta("yolov3")
    x, t = _few_images(4)
    t[1] = no_objects()
    losses, _ = train_steps(model, x, t, steps=25, lr=3e-3, loss_names=model.loss_names)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.5 * losses[0], losses


def test_yolov3_output_format_and_diou_nms_keeps_other_classes():
    torch.manual_seed(0)
    model = YOLOv3((3, 64, 64), 3, width=4, detections_per_img=7, score_thresh=0.0)
    x, _ = _few_images(3)
    out = detect(model, x)
    assert_detections(out, n_images=3, num_classes=3, image_size=64, max_dets=7, min_dets=1)
    # identical raw outputs for all three classes: per-class (DIoU-)NMS keeps one box per class
    for nms in ("nms", "diou"):
        m = YOLOv3((3, 64, 64), 3, width=4, nms=nms, score_thresh=0.0).eval()
        levels = [torch.full((1, 3, s, s, 8), -20.0) for s in (8, 4, 2)]
        levels[0][0, 0, 3, 3, :4] = 0.0
        levels[0][0, 0, 3, 3, 4:] = 5.0
        det = m.postprocess(levels)[0]
        top = det["scores"] > 0.5
        assert sorted(det["labels"][top].tolist()) == [1, 2, 3]


def test_yolov3_bad_input():
    model = YOLOv3((3, 64, 64), 3, width=4)
    x, t = _few_images(2)
    assert_rejects(model, x, t, wrong_size=96, bad_label=4, outside=(-6.0, 20.0, 12.0, 80.0))
    with pytest.raises(ValueError, match="in_shape"):
        YOLOv3((3, 48, 48), 3)
    with pytest.raises(ValueError, match="anchors"):
        YOLOv3((3, 64, 64), 3, anchors=[[10.0, 10.0]] * 5)
    with pytest.raises(ValueError, match="anchors"):
        YOLOv3((3, 64, 64), 3, anchors=[[10.0, -1.0]] * 9)
    with pytest.raises(ValueError, match="fusion"):
        YOLOv3((3, 64, 64), 3, fusion="bifpn")
    with pytest.raises(ValueError, match="act"):
        YOLOv3((3, 64, 64), 3, act="swish")
    with pytest.raises(ValueError, match="box_loss"):
        YOLOv3((3, 64, 64), 3, box_loss="giou")
    with pytest.raises(ValueError, match="mosaic"):
        YOLOv3((3, 64, 64), 3, mosaic=1.5)
    with pytest.raises(ValueError, match="drop_prob"):
        YOLOv3((3, 64, 64), 3, dropblock=1.0)
