"""The detect task with instance masks: targets keep ``masks``, evaluation adds mask mAP
(``map_segm_*``, equal to the toolkit's ``iou_type="segm"`` on the same binarized predictions)
when the detector predicts masks, ranks masks by ``mask_scores`` when given, and keeps the box
keys unchanged."""

import pytest
import torch
from torch import nn

from deepnotes.detection import mean_average_precision
from deepnotes.train.tasks import get_task
from deepnotes.train.tasks.detect import MAP_KEYS, SEGM_KEYS


class _Ctx:
    """The parts of StepContext that evaluate reads (one process)."""

    def __init__(self, module):
        self.module = module

    def all_gather_object(self, obj):
        return [obj]


class _Oracle(nn.Module):
    """Predicts, per image, fixed boxes/scores/labels and soft masks (from a lookup by image sum)."""

    def __init__(self, table, with_masks=True, mask_scores=False):
        super().__init__()
        self.table, self.with_masks, self.mask_scores = table, with_masks, mask_scores

    def forward(self, images):
        out = []
        for x in images:
            p = dict(self.table[round(float(x.sum()), 3)])
            if not self.with_masks:
                p = {k: p[k] for k in ("boxes", "scores", "labels")}
            elif not self.mask_scores:
                p.pop("mask_scores")
            out.append(p)
        return out


def _data(seed=0, n=6, size=24):
    g = torch.Generator().manual_seed(seed)
    batches, table, expected = [], {}, []
    for i in range(n):
        img = torch.rand(3, size, size, generator=g) + i  # distinct sums
        k = int(torch.randint(0, 4, (1,), generator=g))
        gm = torch.rand(k, size, size, generator=g) < 0.3
        boxes = torch.tensor([[0.0, 0.0, size, size]] * k).reshape(-1, 4)
        target = {"boxes": boxes, "labels": torch.randint(1, 3, (k,), generator=g), "masks": gm.to(torch.uint8)}
        d = k + 2
        soft = torch.rand(d, 1, size, size, generator=g)
        soft[:k, 0] = torch.where(gm, 0.9, soft[:k, 0] * 0.6)  # good masks for the true objects
        table[round(float(img.sum()), 3)] = {
            "boxes": torch.tensor([[0.0, 0.0, size, size]] * d),
            "scores": torch.rand(d, generator=g),
            "labels": torch.cat([target["labels"], torch.randint(1, 3, (2,), generator=g)]),
            "masks": soft,
            "mask_scores": torch.rand(d, generator=g),
        }
        batches.append((img[None], [target]))
        expected.append((table[round(float(img.sum()), 3)], target))
    return batches, table, expected


@pytest.mark.parametrize("mask_scores", [False, True])
def test_evaluate_reports_mask_map_equal_to_the_toolkit(mask_scores):
    task = get_task("detect")
    batches, table, expected = _data()
    got = task.evaluate(_Ctx(_Oracle(table, mask_scores=mask_scores)), batches)
    preds = [
        {"masks": p["masks"][:, 0] > 0.5, "labels": p["labels"],
         "scores": p["mask_scores"] if mask_scores else p["scores"]}
        for p, _ in expected
    ]
    want = mean_average_precision(preds, [t for _, t in expected], iou_type="segm")
    boxes = mean_average_precision(
        [{k: p[k] for k in ("boxes", "scores", "labels")} for p, _ in expected],
        [{k: t[k] for k in ("boxes", "labels")} for _, t in expected],
    )
    assert set(got) == set(MAP_KEYS) | set(SEGM_KEYS)
    for k, s in zip(MAP_KEYS, SEGM_KEYS):
        assert got[s] == float(want[k])
        assert got[k] == float(boxes[k])  # the box keys are the box mAP, unchanged
    assert 0 < got["map_segm_50"] < 1
    assert set(SEGM_KEYS) <= set(task.metrics)  # they become val_/test_ columns


def test_mask_scores_change_only_the_mask_ranking():
    batches, table, _ = _data(1)
    a = get_task("detect").evaluate(_Ctx(_Oracle(table, mask_scores=False)), batches)
    b = get_task("detect").evaluate(_Ctx(_Oracle(table, mask_scores=True)), batches)
    assert all(a[k] == b[k] for k in MAP_KEYS)
    assert any(a[k] != b[k] for k in SEGM_KEYS)


def test_detector_without_masks_reports_box_keys_only():
    task = get_task("detect")
    batches, table, _ = _data(2)
    got = task.evaluate(_Ctx(_Oracle(table, with_masks=False)), batches)
    assert set(got) == set(MAP_KEYS)


def test_collate_checks_masks():
    task = get_task("detect")
    img = torch.rand(3, 8, 8)
    one = {"boxes": torch.tensor([[1.0, 2.0, 5.0, 7.0]]), "labels": torch.tensor([1])}
    _, t = task.collate([(img, dict(one, masks=torch.ones(1, 8, 8, dtype=torch.bool)))])
    assert t[0]["masks"].dtype == torch.uint8 and t[0]["masks"].shape == (1, 8, 8)
    with pytest.raises(ValueError, match="one mask per box"):
        task.collate([(img, dict(one, masks=torch.ones(2, 8, 8)))])
    with pytest.raises(ValueError, match="one mask per box"):
        task.collate([(img, dict(one, masks=torch.ones(8, 8)))])
    with pytest.raises(ValueError, match="only 0 and 1"):
        task.collate([(img, dict(one, masks=torch.full((1, 8, 8), 0.5)))])
