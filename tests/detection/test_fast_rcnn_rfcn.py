"""Fast R-CNN (multi-task loss by hand, RoI sampling fractions, training) and R-FCN
(position-sensitive RoI pooling equal to torchvision's, voting, OHEM, training), with images
without objects and bad input."""

import pytest
import torch
import torchvision

from deepnotes.core.registry import MODELS
from deepnotes.detection.iou import box_iou
from deepnotes.detection.two_stage import RFCN, FastRCNN, fast_rcnn_loss, ohem_select, ps_roi_pool

from ._helpers import assert_detections, detect, few_images, no_objects, train_steps


def _batch(n=4):
    return few_images(n, masks=True)


def _steps(model, images, targets, n, lr=2e-3):
    """The total loss of each of ``n`` Adam steps, the global seed reset first (the RoI sampling draws)."""
    torch.manual_seed(0)
    return train_steps(model, images, targets, steps=n, lr=lr)[0]


# --- Fast R-CNN ------------------------------------------------------------------------------------

def test_fast_rcnn_multi_task_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.5, 0.5, 0.0]], dtype=torch.float64)
    deltas = torch.arange(24, dtype=torch.float64).view(2, 12) / 10
    labels = torch.tensor([2, 0])
    targets = torch.tensor([[0.8, 1.2, 0.0, 3.0], [9.0, 9.0, 9.0, 9.0]], dtype=torch.float64)
    cls, box = fast_rcnn_loss(logits, deltas, labels, targets, beta=1.0, box_weight=1.0)
    ce = (-torch.log_softmax(logits, 1)[0, 2] - torch.log_softmax(logits, 1)[1, 0]) / 2
    # RoI 0, class 2: deltas 0.8, 0.9, 1.0, 1.1 vs targets 0.8, 1.2, 0.0, 3.0 → |d| = 0, 0.3, 1.0, 1.9
    smooth = 0 + 0.5 * 0.3**2 + (1.0 - 0.5) + (1.9 - 0.5)
    assert cls.item() == pytest.approx(ce.item(), abs=1e-12)
    assert box.item() == pytest.approx(smooth / 2, abs=1e-12)  # averaged over both RoIs; the background one adds 0
    _, none = fast_rcnn_loss(logits, deltas, torch.tensor([0, 0]), targets)
    assert none.item() == 0.0


def test_fast_rcnn_roi_sampling_fractions():
    torch.manual_seed(0)
    model = FastRCNN((3, 64, 64), 3, width=8, batch_size_per_image=64, positive_fraction=0.25)
    gt = torch.tensor([[10.0, 10.0, 40.0, 40.0]])
    g = torch.Generator().manual_seed(1)
    jitter = (torch.rand(300, 4, generator=g) - 0.5) * torch.tensor([40.0, 40.0, 40.0, 40.0])
    props = (gt + jitter).clamp(0, 64)
    props[:, 2:] = torch.maximum(props[:, 2:], props[:, :2] + 1)
    rois, labels, reg = model.sample([props], [{"boxes": gt, "labels": torch.tensor([2])}])
    iou = box_iou(rois[0], gt).flatten()
    n_fg = int((labels > 0).sum())
    assert len(labels) == 64 and n_fg == 16  # 25 % of 64, enough foreground available
    assert ((iou >= 0.5) == (labels > 0)).all() and (labels[labels > 0] == 2).all()
    assert ((iou[labels == 0] >= 0.1) & (iou[labels == 0] < 0.5)).all()  # background from [0.1, 0.5)
    assert (reg[labels == 0] == 0).all() and torch.isfinite(reg).all()
    # few foreground: all of it is taken and background fills the rest
    few = model.sample([props[:20]], [{"boxes": gt, "labels": torch.tensor([2])}])[1]
    iou20 = box_iou(torch.cat([props[:20], gt]), gt).flatten()  # the ground truth is appended
    n_fg, n_bg = int((iou20 >= 0.5).sum()), int(((iou20 >= 0.1) & (iou20 < 0.5)).sum())
    assert n_fg + n_bg < 64  # fewer labelled RoIs than the batch: every one is taken
    assert int((few > 0).sum()) == min(n_fg, 16) and int((few == 0).sum()) == n_bg


def test_fast_rcnn_trains_and_detects():
    torch.manual_seed(0)
    model = FastRCNN((3, 32, 32), 3, width=16, representation_size=32, max_proposals=30)
    images, targets = _batch(4)
    hist = _steps(model, images, targets, 12)
    assert sum(hist[-3:]) < sum(hist[:3])
    out = detect(model, images)
    assert_detections(out, n_images=4, num_classes=3, image_size=32)  # boxes clipped to the image
    assert all((o["scores"] > 0.05).all() for o in out)


# --- PS-RoI pooling ----------------------------------------------------------------------------

def _random_rois(g, n, k, h, w, scale, inside=False):
    if inside:  # bins stay off the last row and column (where the reference's backward disagrees with its forward)
        xy = torch.rand(k, 2, generator=g, dtype=torch.float64) * torch.tensor([w, h]) * 0.4
        wh = torch.rand(k, 2, generator=g, dtype=torch.float64) * torch.tensor([w, h]) * 0.4
    else:
        xy = torch.rand(k, 2, generator=g, dtype=torch.float64) * torch.tensor([w, h]) / scale * 1.2 - 2
        wh = torch.rand(k, 2, generator=g, dtype=torch.float64) * 10 / scale
    return torch.cat([torch.randint(0, n, (k, 1), generator=g).double(), xy, xy + wh], 1)


@pytest.mark.parametrize("seed", range(40))
def test_ps_roi_pool_equals_torchvision(seed):
    g = torch.Generator().manual_seed(seed)
    ph, pw = (int(v) for v in torch.randint(1, 4, (2,), generator=g))
    h, w = (int(v) for v in torch.randint(1, 12, (2,), generator=g))
    scale = (1.0, 0.5, 0.25)[seed % 3]
    x = torch.randn(2, 2 * ph * pw, h, w, dtype=torch.float64, generator=g)
    rois = _random_rois(g, 2, 6, h, w, scale)
    torch.testing.assert_close(ps_roi_pool(x, rois, (ph, pw), scale),
                               torchvision.ops.ps_roi_pool(x, rois, (ph, pw), scale), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("seed", range(20))
def test_ps_roi_pool_gradient_equals_torchvision_inside_the_map(seed):
    g = torch.Generator().manual_seed(seed)
    ph, pw = (int(v) for v in torch.randint(1, 4, (2,), generator=g))
    h, w = (int(v) for v in torch.randint(8, 14, (2,), generator=g))
    x = torch.randn(2, 3 * ph * pw, h, w, dtype=torch.float64, generator=g, requires_grad=True)
    rois = _random_rois(g, 2, 6, h, w, 1.0, inside=True)
    ours, ref = ps_roi_pool(x, rois, (ph, pw)), torchvision.ops.ps_roi_pool(x, rois, (ph, pw))
    gy = torch.randn(ours.shape, dtype=torch.float64, generator=g)
    torch.testing.assert_close(torch.autograd.grad(ours, x, gy)[0], torch.autograd.grad(ref, x, gy)[0],
                               rtol=1e-7, atol=1e-7)


def test_ps_roi_pool_gradcheck_and_batch_equals_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 6, 7, dtype=torch.float64, generator=g, requires_grad=True)
    rois = _random_rois(g, 2, 5, 6, 7, 0.5)
    assert torch.autograd.gradcheck(lambda t: ps_roi_pool(t, rois, 2, 0.5), (x,))
    whole = ps_roi_pool(x, rois, 2, 0.5)
    one_by_one = torch.cat([ps_roi_pool(x, rois[i:i + 1], 2, 0.5) for i in range(len(rois))])
    torch.testing.assert_close(whole, one_by_one, rtol=0, atol=1e-12)


def test_ps_roi_pool_bad_input_andempty_target():
    x = torch.zeros(1, 8, 4, 4)
    with pytest.raises(ValueError, match="multiple of PH·PW"):
        ps_roi_pool(x, [torch.tensor([[0.0, 0.0, 2.0, 2.0]])], 3)
    with pytest.raises(ValueError, match="boxes"):
        ps_roi_pool(x, [torch.tensor([[2.0, 0.0, 1.0, 2.0]])], 2)
    assert ps_roi_pool(x, [torch.zeros(0, 4)], 2).shape == (0, 2, 2, 2)


# --- R-FCN ------------------------------------------------------------------------------------------

def test_ohem_keeps_the_highest_losses_per_image():
    losses = torch.tensor([0.1, 0.9, 0.5, 0.3, 2.0, 0.2])
    assert ohem_select(losses, [3, 3], 2).tolist() == [1, 2, 4, 3]
    assert ohem_select(losses, [1, 5], 2).tolist() == [0, 4, 1]


def test_rfcn_vote_is_the_mean_of_the_position_sensitive_bins():
    torch.manual_seed(0)
    model = RFCN((3, 32, 32), 3, width=8, k=2)
    fmap = torch.randn(1, 8, 4, 4)
    boxes = [torch.tensor([[0.0, 0.0, 31.0, 31.0], [4.0, 8.0, 20.0, 30.0]])]
    logits, deltas = model.vote(fmap, boxes)
    maps = model.cls_maps(fmap)
    pooled = torchvision.ops.ps_roi_pool(maps, boxes, 2, 1 / 8)
    torch.testing.assert_close(logits, pooled.mean((2, 3)))
    assert logits.shape == (2, 4) and deltas.shape == (2, 4)


@pytest.mark.parametrize("ohem", [True, False])
def test_rfcn_trains_and_detects(ohem):
    torch.manual_seed(0)
    model = RFCN((3, 32, 32), 3, width=16, anchor_sizes=(8, 16), ohem=ohem)
    images, targets = _batch(4)
    hist = _steps(model, images, targets, 12)
    assert sum(hist[-3:]) < sum(hist[:3])
    out = detect(model, images)
    assert_detections(out, n_images=4, num_classes=3, image_size=32)


@pytest.mark.parametrize("name", ["fast_rcnn", "rfcn"])
def test_images_without_objects_train_without_nan(name):
    kw = {"anchor_sizes": (8, 16)} if name == "rfcn" else {"max_proposals": 10}
    model = MODELS.create(name, in_shape=(3, 32, 32), num_classes=3, width=8, **kw)
    images, targets = _batch(2)
    for tg in ([no_objects(), targets[1]], [no_objects(), no_objects()]):
        terms = model(images, tg)
        assert all(torch.isfinite(v) for v in terms.values())
        sum(terms.values()).backward()


@pytest.mark.parametrize("name", ["fast_rcnn", "rfcn"])
def test_bad_input(name):
    model = MODELS.create(name, in_shape=(3, 32, 32), num_classes=3, width=8)
    images, targets = _batch(2)
    with pytest.raises(ValueError, match="images"):
        model(images[:, :, :16])
    with pytest.raises(ValueError, match="targets are required"):
        model(images)
    with pytest.raises(ValueError, match="targets"):
        model(images, targets[:1])
    with pytest.raises(ValueError, match="finite"):
        model(images, [{"boxes": torch.tensor([[0.0, 0.0, float("nan"), 4.0]]), "labels": torch.tensor([1])},
                       targets[1]])


def test_rfcn_in_shape_must_fit_the_stride():
    with pytest.raises(ValueError, match="in_shape"):
        RFCN((3, 30, 32), 3)


def test_ps_roi_pool_bench_case_builds_and_runs_once():
    from deepnotes.bench.runner import select_cases

    (case,) = select_cases(["ps_roi_pool"])
    for item in case.func(True):  # raises if ours and torchvision disagree
        item.ours()
        item.reference()
