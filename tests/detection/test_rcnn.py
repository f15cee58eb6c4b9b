"""R-CNN and SPPNet: the SVM hinge loss and hard-negative mining by hand on a tiny case, the SVM
targets, the staged training (fine-tuning loss falls, then the SVM + regression stage with a
frozen CNN), the step counter in checkpoints, the Selective Search proposal cache, images without
objects, bad input, and the CLI end to end (train, then ``deepnotes detect``)."""

import functools
import json

import pytest
import torch

from deepnotes.cli import main
from deepnotes.core.registry import MODELS
from deepnotes.data import shapes
from deepnotes.detection.roi_pool import roi_spatial_pyramid_pool
from deepnotes.detection.two_stage import (
    RCNN,
    SelectiveSearchProposals,
    SPPNet,
    label_proposals,
    mine_hard_negatives,
    svm_hinge_loss,
    svm_targets,
)
from deepnotes.detection.two_stage.rcnn import enlarge_for_context

from ._helpers import few_images, no_objects, train_steps

TINY = dict(n_train=12, n_val=4, n_test=4, image_size=32, max_objects=2, min_size=8, max_size=16)


def _batch(n=4):
    return few_images(n, masks=True)


# --- the SVM pieces, by hand ----------------------------------------------------------------------

def test_hard_negative_mining_and_hinge_loss_by_hand():
    # one class; rows: a positive (s = 2), negatives with s = 0.5, -0.5, -3, and an ignored row (s = 9)
    scores = torch.tensor([[2.0], [0.5], [-0.5], [-3.0], [9.0]], dtype=torch.float64)
    targets = torch.tensor([[1], [-1], [-1], [-1], [0]])
    keep = mine_hard_negatives(scores, targets, num_hard=1)
    assert keep.flatten().tolist() == [True, True, False, False, False]  # the hardest negative only
    # hinge: max(0, 1 - 2) = 0 for the positive, max(0, 1 + 0.5) = 1.5 for the negative; mean of 2 rows
    assert svm_hinge_loss(scores, targets, keep).item() == pytest.approx(0.75)
    keep2 = mine_hard_negatives(scores, targets, num_hard=5)
    # s = -3 is outside the margin (zero hinge): never mined, however many are asked for
    assert keep2.flatten().tolist() == [True, True, True, False, False]
    assert svm_hinge_loss(scores, targets, keep2).item() == pytest.approx((0 + 1.5 + 0.5) / 3)


def test_mining_is_per_class_and_the_hinge_is_averaged_over_classes():
    scores = torch.tensor([[0.0, 3.0], [1.0, -2.0], [0.2, 0.9]], dtype=torch.float64)
    targets = torch.tensor([[1, -1], [-1, 1], [-1, -1]])
    keep = mine_hard_negatives(scores, targets, num_hard=1)
    assert keep.tolist() == [[True, True], [True, True], [False, False]]
    # class 0: rows 0 (+, hinge 1) and 1 (−, hinge 2) → 1.5; class 1: rows 0 (−, 4) and 1 (+, 3) → 3.5
    assert svm_hinge_loss(scores, targets, keep).item() == pytest.approx((1.5 + 3.5) / 2)
    nothing = torch.zeros_like(keep)
    assert svm_hinge_loss(scores, targets, nothing).item() == 0.0  # no kept row: 0, not NaN


def test_mining_bad_input():
    with pytest.raises(ValueError, match="targets"):
        mine_hard_negatives(torch.zeros(3, 2), torch.zeros(3, 1), 1)
    with pytest.raises(ValueError, match="num_hard"):
        mine_hard_negatives(torch.zeros(3, 2), torch.zeros(3, 2), -1)


def test_svm_targets_positives_are_ground_truth_only():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    labels = torch.tensor([1, 2])
    rows = torch.cat([torch.tensor([[0.0, 0.0, 10.0, 9.0],  # IoU 0.9 with object 1: ignored for class 1
                                    [0.0, 0.0, 10.0, 2.0],  # IoU 0.2: negative for class 1
                                    [40.0, 40.0, 50.0, 50.0]]), gt])
    is_gt = torch.tensor([False, False, False, True, True])
    t = svm_targets(rows, is_gt, gt, labels, num_classes=2, neg_iou=0.3)
    assert t.tolist() == [[0, -1], [-1, -1], [-1, -1], [1, -1], [-1, 1]]
    empty = svm_targets(rows, is_gt, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), 2, 0.3)
    assert (empty == -1).all()  # an image without objects: every row is a negative


def test_label_proposals_thresholds_and_empty_image():
    gt, lab = torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([3])
    props = torch.tensor([[0.0, 0.0, 10.0, 5.0], [0.0, 0.0, 10.0, 0.5], [50.0, 50.0, 60.0, 60.0],
                          [0.0, 0.0, 10.0, 9.0]])  # IoU 0.5, 0.05, 0, 0.9
    labels, matched, iou = label_proposals(props, gt, lab, 0.5, 0.1, 0.5)
    assert labels.tolist() == [3, -1, -1, 3]  # IoU below 0.1: ignored (Fast R-CNN's bg range [0.1, 0.5))
    assert torch.equal(matched[0], gt[0])
    labels, _, _ = label_proposals(props, gt, lab, 0.5, 0.0, 0.5)
    assert labels.tolist() == [3, 0, 0, 3]
    labels, _, _ = label_proposals(props, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), 0.5, 0.1, 0.5)
    assert labels.tolist() == [0, 0, 0, 0]


def test_context_enlargement_puts_the_box_in_the_centre():
    box = torch.tensor([[10.0, 20.0, 34.0, 44.0]])  # 24 × 24
    big = enlarge_for_context(box, crop_size=32, context=4)
    assert torch.allclose(big, torch.tensor([[6.0, 16.0, 38.0, 48.0]]))  # 24 · 32/24 = 32 wide


# --- proposals -------------------------------------------------------------------------------------

def test_proposal_cache_is_bounded_and_reused():
    images, _ = _batch(3)
    proposer = SelectiveSearchProposals(max_proposals=5, max_cached=2)
    first = proposer(images)
    assert len(proposer) == 2 and all(1 <= len(p) <= 5 for p in first)
    again = proposer(images[2:])  # the most recent image: served from the cache
    assert again[0] is first[2]
    assert all(((p[:, 2:] - p[:, :2]) >= 2).all() for p in first)
    with pytest.raises(ValueError, match="images"):
        proposer(images[0])


# --- the models ------------------------------------------------------------------------------------

def _steps(model, images, targets, n, lr=3e-3):
    """Each of ``n`` Adam steps' loss terms (of the parameters that require gradients), the global
    seed reset first."""
    torch.manual_seed(0)
    return train_steps(model, images, targets, steps=n, lr=lr)[1]


@pytest.mark.parametrize("make", [
    lambda: RCNN((3, 32, 32), 3, crop_size=16, context=2, width=8, representation_size=32, finetune_steps=8,
                 max_proposals=20),
    lambda: SPPNet((3, 32, 32), 3, width=16, representation_size=32, finetune_steps=8, max_proposals=20),
])
def test_staged_training_fine_tunes_then_trains_svms_on_a_frozen_cnn(make):
    torch.manual_seed(0)
    model = make()
    images, targets = _batch(4)
    hist = _steps(model, images, targets, 8)
    assert model.stage == "svm" and int(model.steps_done) == 8
    assert all(h["loss_svm"] == 0 and h["loss_box"] == 0 for h in hist)
    assert hist[-1]["loss_cls"] < hist[0]["loss_cls"]  # stage 1: the fine-tuning loss falls
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(("svm", "bbox_pred"))}
    frozen.pop("steps_done")
    model.svm.weight.data.zero_()
    model.steps_done.fill_(8)  # the first SVM step starts the SVMs from the softmax
    hist = _steps(model, images, targets, 12, lr=1e-3)
    assert all(h["loss_cls"] == 0 for h in hist)
    for term in ("loss_svm", "loss_box"):
        assert sum(h[term] for h in hist[-3:]) < sum(h[term] for h in hist[:3]), term
    for k, v in model.state_dict().items():  # stage 2 leaves the CNN (and its batch norm) alone
        if k in frozen:
            assert torch.equal(v, frozen[k]), k
    model.eval()
    out = model(images)
    assert len(out) == 4 and all(set(o) == {"boxes", "scores", "labels"} for o in out)
    assert all(((o["scores"] > 0) & (o["scores"] < 1)).all() for o in out)


def test_warm_start_copies_the_softmax_log_odds():
    model = RCNN((3, 32, 32), 3, crop_size=16, width=8, representation_size=16, finetune_steps=0)
    model.warm_start_svms()
    fc7 = torch.randn(5, 16)
    logits = model.cls_score(fc7)
    assert torch.allclose(model.svm(fc7), logits[:, 1:] - logits[:, :1], atol=1e-6)


def test_the_stage_counter_is_saved_in_the_state_dict():
    a = RCNN((3, 32, 32), 3, crop_size=16, width=8, finetune_steps=3)
    a.steps_done.fill_(5)
    b = RCNN((3, 32, 32), 3, crop_size=16, width=8, finetune_steps=3)
    assert b.stage == "finetune"
    b.load_state_dict(a.state_dict())
    assert b.stage == "svm"


def test_images_without_objects_train_in_both_stages_without_nan():
    images, targets = _batch(2)
    targets = [no_objects(), targets[1]]
    for stage_steps in (100, 0):
        model = RCNN((3, 32, 32), 3, crop_size=16, width=8, finetune_steps=stage_steps, max_proposals=10)
        terms = model(images, targets)
        assert all(torch.isfinite(v) for v in terms.values())
        terms = model(images[:1], targets[:1])  # a batch with no object at all
        assert all(torch.isfinite(v) for v in terms.values())


def test_sppnet_pools_every_proposal_to_a_fixed_length():
    model = SPPNet((3, 32, 32), 3, width=16, levels=(4, 2, 1))
    images, _ = _batch(2)
    boxes = [torch.tensor([[0.0, 0.0, 31.0, 31.0], [3.0, 5.0, 9.0, 30.0]]), torch.tensor([[10.0, 10.0, 12.0, 12.0]])]
    p5 = model.pool5(images, boxes)
    assert p5.shape == (3, 16 * (16 + 4 + 1))
    fmap = model.features(images)[-1]
    assert torch.equal(p5, roi_spatial_pyramid_pool(fmap, boxes, (4, 2, 1), 1 / 8))


@pytest.mark.parametrize("name", ["rcnn", "sppnet"])
def test_bad_input(name):
    model = MODELS.create(name, in_shape=(3, 32, 32), num_classes=3)
    images, targets = _batch(2)
    with pytest.raises(ValueError, match="images"):
        model(images[:, :, :16])
    with pytest.raises(ValueError, match="targets are required"):
        model(images)
    with pytest.raises(ValueError, match="labels"):
        model(images, [{"boxes": targets[0]["boxes"], "labels": targets[0]["labels"] + 3}, targets[1]])
    with pytest.raises(ValueError, match="in_shape"):
        MODELS.create(name, in_shape=(1, 32, 32), num_classes=3)
    with pytest.raises(ValueError, match="finetune_steps"):
        MODELS.create(name, in_shape=(3, 32, 32), num_classes=3, finetune_steps=-1)


def test_rcnn_crop_size_must_divide_by_8():
    with pytest.raises(ValueError, match="crop_size"):
        RCNN((3, 32, 32), 3, crop_size=20)


@pytest.fixture
def tiny_shapes(monkeypatch):
    import deepnotes.data as data

    real = data.resolve_dataset
    monkeypatch.setattr(data, "resolve_dataset",
                        lambda name: functools.partial(shapes, **TINY) if name == "shapes" else real(name))


def test_cli_trains_both_stages_and_detects(tmp_path, tiny_shapes):
    from PIL import Image

    run = tmp_path / "run"
    assert main(["train", "--task", "detect", "--model", "rcnn", "--data", "shapes", "--epochs", "2",
                 "--batch-size", "4", "--model-kw", "width=8", "--model-kw", "crop_size=16",
                 "--model-kw", "finetune_steps=3", "--model-kw", "max_proposals=10",
                 "--out", str(run), "--no-progress"]) == 0
    rows = (run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    first, last = (dict(zip(header, r.split(","))) for r in (rows[1], rows[-1]))
    assert float(first["train_loss_cls"]) > 0 and float(last["train_loss_svm"]) > 0  # both stages ran
    summary = json.loads((run / "summary.json").read_text())
    assert 0 <= summary["test_map_50"] <= 1
    image, _ = shapes(**TINY).test[0]
    path = tmp_path / "a.png"
    Image.fromarray((image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()).save(path)
    assert main(["detect", str(run), str(path), "--out", str(tmp_path / "det"), "--score-thresh", "0"]) == 0


@pytest.mark.parametrize("name", ["rcnn", "sppnet", "fast_rcnn"])
def test_no_usable_proposal_trains_on_the_ground_truth_and_detects_nothing(name):
    kw = {"crop_size": 16, "width": 8} if name == "rcnn" else {"width": 8}
    model = MODELS.create(name, in_shape=(3, 32, 32), num_classes=3, **kw)
    model.proposer.min_side = 1e6  # every Selective Search box is dropped
    images = torch.full((2, 3, 32, 32), 0.5)
    targets = [{"boxes": torch.tensor([[2.0, 2.0, 20.0, 20.0]]), "labels": torch.tensor([1])}] * 2
    model.eval()
    assert [len(o["boxes"]) for o in model(images)] == [0, 0]
    model.train()
    terms = model(images, targets)  # the appended ground truth still trains the classifier
    assert all(torch.isfinite(v) for v in terms.values()) and sum(terms.values()) > 0
