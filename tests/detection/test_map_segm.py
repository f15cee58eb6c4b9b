"""Segmentation mAP (``iou_type="segm"``) against pycocotools' ``COCOeval(iouType="segm")``, and
``mask_iou`` against ``pycocotools.mask.iou`` (run-length codes of the same masks)."""

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from deepnotes.detection import mask_iou, mean_average_precision
from deepnotes.detection.map import COCO_KEYS

from ._coco_ref import run_cocoeval


def _rle(m: np.ndarray) -> dict:
    return mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))


def _blob(rng, h, w, lo, hi):
    """A random ellipse or rectangle (a few pixels flipped), its side between ``lo`` and ``hi``."""
    bw, bh = np.minimum(np.exp(rng.uniform(np.log(lo), np.log(hi), 2)), (w, h))
    x0, y0 = rng.uniform(-0.2 * bw, w - 0.8 * bw), rng.uniform(-0.2 * bh, h - 0.8 * bh)
    yy, xx = np.mgrid[:h, :w] + 0.5
    if rng.random() < 0.5:
        m = (xx >= x0) & (xx < x0 + bw) & (yy >= y0) & (yy < y0 + bh)
    else:
        cx, cy = x0 + bw / 2, y0 + bh / 2
        m = ((xx - cx) / (bw / 2)) ** 2 + ((yy - cy) / (bh / 2)) ** 2 <= 1
    return m ^ (rng.random((h, w)) < 0.01) & m


def random_segmentations(seed, n_images=10, n_classes=3, crowd_p=0.1, tie_scores=False):
    """Targets with masks of all three COCO area ranges (some empty, some crowds, images of
    different sizes), predictions perturbing them (dilated, shifted, cut) plus clutter."""
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for i in range(n_images):
        h, w = int(rng.integers(60, 200)), int(rng.integers(60, 200))
        m = int(rng.integers(0, 7)) if i % 6 != 2 else 0  # some images without ground truth
        gm = (
            np.stack([_blob(rng, h, w, 3, 190) for _ in range(m)])
            if m
            else np.zeros((0, h, w), bool)
        )
        if m and i % 4 == 1:
            gm[0] = False  # an empty ground-truth mask
        labels = rng.integers(1, n_classes + 1, m)
        crowd = rng.random(m) < crowd_p
        t = {
            "masks": torch.tensor(gm),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "iscrowd": torch.tensor(crowd.astype(np.int64)),
        }
        if i % 3 == 0:  # explicit areas on some images (else: the mask's pixel count)
            t["area"] = torch.tensor(gm.sum((1, 2)) * rng.uniform(0.8, 1.2, m))
        targets.append(t)
        reps = rng.integers(0, 4, m)
        dm = []
        for k in np.repeat(np.arange(m), reps):
            d = np.roll(gm[k], tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
            cut = rng.random((h, w)) < rng.uniform(0, 0.2)
            dm.append(d & ~cut | (rng.random((h, w)) < 0.2) & np.roll(d, 1, axis=1))
        dl = list(np.repeat(labels, reps))
        for _ in range(int(rng.integers(0, 5)) if i % 6 != 4 else 0):
            dm.append(_blob(rng, h, w, 3, 100))
            dl.append(int(rng.integers(1, n_classes + 1)))
        if dm and i % 5 == 3:
            dm[-1] = np.zeros((h, w), bool)  # an empty predicted mask
        s = rng.random(len(dm))
        if tie_scores:
            s = np.round(s * 4) / 4
        preds.append(
            {
                "masks": torch.tensor(np.stack(dm) if dm else np.zeros((0, h, w), bool)),
                "scores": torch.tensor(s),
                "labels": torch.tensor(dl, dtype=torch.int64),
            }
        )
    return preds, targets


def coco_segm_reference(preds, targets, iou_thresholds=None):
    """COCOeval(iouType="segm") on run-length codes of our masks: 12 numbers and the eval object."""
    images, anns, results, cats = [], [], [], set()
    for i, (p, t) in enumerate(zip(preds, targets)):
        h, w = t["masks"].shape[1:]
        images.append({"id": i, "height": h, "width": w})
        gm = t["masks"].numpy()
        area = t["area"].tolist() if "area" in t else gm.sum((1, 2)).tolist()
        for m, lab, c, a in zip(gm, t["labels"].tolist(), t["iscrowd"].tolist(), area):
            cats.add(lab)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": lab,
                    "iscrowd": c,
                    "area": float(a),
                    "segmentation": _rle(m),
                }
            )
        for m, lab, s in zip(p["masks"].numpy(), p["labels"].tolist(), p["scores"].tolist()):
            cats.add(lab)
            # segmentation only: loadRes then sets the area to the mask's pixel count
            results.append({"image_id": i, "category_id": lab, "score": s, "segmentation": _rle(m)})
    return run_cocoeval(images, anns, results, cats, "segm", iou_thresholds)


def ours(preds, targets, **kw):
    out = mean_average_precision(preds, targets, iou_type="segm", **kw)
    return np.array([float(out[k]) for k in COCO_KEYS]), out


@pytest.mark.parametrize("seed", range(12))
def test_segm_equals_pycocotools(seed):
    preds, targets = random_segmentations(
        seed,
        n_images=8 + seed % 5,
        n_classes=1 + seed % 3,
        tie_scores=seed % 2 == 1,
        crowd_p=0.15,
    )
    ref, _ = coco_segm_reference(preds, targets)
    np.testing.assert_allclose(ours(preds, targets)[0], ref, rtol=0, atol=1e-6)


def test_segm_per_class_and_custom_thresholds_equal_pycocotools():
    preds, targets = random_segmentations(7, n_images=14, n_classes=3)
    thr = [0.3, 0.5, 0.75, 0.9]
    ref, ev = coco_segm_reference(preds, targets, iou_thresholds=thr)
    got, out = ours(preds, targets, iou_thresholds=thr, class_metrics=True)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    prec = ev.eval["precision"][:, :, :, 0, -1]
    for k in range(prec.shape[2]):
        p = prec[:, :, k]
        assert (
            abs(float(out["map_per_class"][k]) - (p[p > -1].mean() if (p > -1).any() else -1))
            < 1e-9
        )


def test_segm_integer_masks_and_boxes_ignored():
    preds, targets = random_segmentations(3, n_images=6)
    base, _ = ours(preds, targets)
    # uint8 masks give the same numbers; boxes, when present, do not change mask AP
    p8 = [
        dict(p, masks=p["masks"].to(torch.uint8), boxes=torch.zeros(len(p["scores"]), 4))
        for p in preds
    ]
    t8 = [dict(t, masks=t["masks"].to(torch.uint8)) for t in targets]
    np.testing.assert_array_equal(ours(p8, t8)[0], base)


def test_segm_edge_cases():
    m = torch.zeros(1, 8, 8, dtype=torch.bool)
    m[0, 2:6, 2:6] = True
    one = {"masks": m, "labels": torch.tensor([1])}
    perfect, _ = ours([dict(one, scores=torch.tensor([0.9]))], [one])
    assert abs(perfect[0] - 1.0) < 1e-12
    none, _ = ours(
        [
            {
                "masks": torch.zeros(0, 8, 8, dtype=torch.bool),
                "scores": torch.zeros(0),
                "labels": torch.zeros(0, dtype=torch.int64),
            }
        ],
        [one],
    )
    assert none[0] == 0.0
    empty, _ = ours([], [])
    assert (empty == -1).all()


def test_mask_iou_equals_pycocotools_iou():
    rng = np.random.default_rng(0)
    a = np.stack([_blob(rng, 50, 70, 2, 60) for _ in range(9)])
    b = np.stack([_blob(rng, 50, 70, 2, 60) for _ in range(7)])
    a[3] = False
    b[2] = False
    crowd = np.array([0, 1, 0, 0, 1, 0, 0])
    ref = mask_utils.iou([_rle(x) for x in a], [_rle(x) for x in b], crowd.tolist())
    got = mask_iou(torch.tensor(a), torch.tensor(b), iscrowd=torch.tensor(crowd))
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-12)
    # a plain loop over pairs
    for i in range(len(a)):
        for j in range(len(b)):
            inter = (a[i] & b[j]).sum()
            union = a[i].sum() if crowd[j] else (a[i] | b[j]).sum()
            assert float(got[i, j]) == (inter / union if union else 0.0)


def test_bad_input():
    preds, targets = random_segmentations(1, n_images=3)
    with pytest.raises(ValueError, match="has no 'masks'"):
        mean_average_precision(
            [{k: v for k, v in p.items() if k != "masks"} for p in preds], targets, iou_type="segm"
        )
    with pytest.raises(TypeError, match="threshold probabilities first"):
        mean_average_precision(
            [dict(p, masks=p["masks"].float()) for p in preds], targets, iou_type="segm"
        )
    with pytest.raises(ValueError, match="must hold only 0 and 1"):
        mean_average_precision(
            [dict(p, masks=p["masks"].to(torch.uint8) * 2) for p in preds], targets, iou_type="segm"
        )
    with pytest.raises(ValueError, match="must have 3 dimensions"):
        mean_average_precision(
            [dict(p, masks=p["masks"][:, None]) for p in preds], targets, iou_type="segm"
        )
    with pytest.raises(ValueError, match="must share one image size"):
        mean_average_precision(
            [dict(p, masks=p["masks"][:, :-1]) for p in preds], targets, iou_type="segm"
        )
    with pytest.raises(ValueError, match="labels'\\] must have one entry per box"):
        mean_average_precision(
            [dict(p, labels=torch.zeros(len(p["labels"]) + 1, dtype=torch.int64)) for p in preds],
            targets,
            iou_type="segm",
        )
    with pytest.raises(ValueError, match="boxes'\\] must have one entry per box"):
        mean_average_precision(
            [dict(p, boxes=torch.zeros(len(p["labels"]) + 1, 4)) for p in preds],
            targets,
            iou_type="segm",
        )
    with pytest.raises(ValueError, match="iou_type must be one of"):
        mean_average_precision(preds, targets, iou_type="mask")
    with pytest.raises(ValueError, match="needs style='coco'"):
        mean_average_precision(preds, targets, iou_type="segm", style="voc12")
    with pytest.raises(ValueError, match="masks1 and masks2 must share one image size"):
        mask_iou(torch.zeros(1, 4, 4, dtype=torch.bool), torch.zeros(1, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="iscrowd must have one entry per mask"):
        mask_iou(
            torch.zeros(1, 4, 4, dtype=torch.bool),
            torch.zeros(2, 4, 4, dtype=torch.bool),
            iscrowd=torch.zeros(3),
        )
