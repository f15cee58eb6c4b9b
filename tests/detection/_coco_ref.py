"""Run pycocotools' COCOeval on detections in torchmetrics' format (the reference for mAP tests)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def random_detections(
    seed: int,
    n_images: int = 20,
    n_classes: int = 3,
    crowd_p: float = 0.1,
    tie_scores: bool = False,
):
    """Ground truth with crowds and all three area ranges, and detections jittered around it plus clutter."""
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for i in range(n_images):
        m = int(rng.integers(0, 8))
        if i % 7 == 3:
            m = 0  # images without ground truth
        xy = rng.uniform(0, 300, (m, 2))
        wh = np.exp(rng.uniform(np.log(4), np.log(200), (m, 2)))
        gt = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(1, n_classes + 1, m)
        crowd = rng.random(m) < crowd_p
        area = wh[:, 0] * wh[:, 1] * rng.uniform(0.6, 1.0, m)  # a mask area below the box area
        targets.append(
            {
                "boxes": torch.tensor(gt).reshape(-1, 4),
                "labels": torch.tensor(labels, dtype=torch.int64),
                "iscrowd": torch.tensor(crowd.astype(np.int64)),
                "area": torch.tensor(area, dtype=torch.float64),
            }
        )
        reps = rng.integers(0, 4, m)
        d = (
            np.repeat(gt, reps, axis=0)
            + rng.normal(0, 1, (int(reps.sum()), 4))
            * np.repeat(wh, reps, axis=0).repeat(2, 1)
            * 0.15
        )
        dl = np.repeat(labels, reps)
        flip = rng.random(len(dl)) < 0.1
        dl = np.where(flip, rng.integers(1, n_classes + 1, len(dl)), dl)
        k = int(rng.integers(0, 6)) if i % 7 != 5 else 0
        cxy = rng.uniform(0, 300, (k, 2))
        cwh = np.exp(rng.uniform(np.log(4), np.log(150), (k, 2)))
        d = np.concatenate([d, np.concatenate([cxy, cxy + cwh], 1)])
        dl = np.concatenate([dl, rng.integers(1, n_classes + 1, k)])
        if i % 7 == 5:
            d, dl = d[:0], dl[:0]  # an image without detections
        d = (
            np.concatenate([np.minimum(d[:, :2], d[:, 2:]), np.maximum(d[:, :2], d[:, 2:])], 1)
            if len(d)
            else d.reshape(0, 4)
        )
        s = rng.random(len(d))
        if tie_scores:
            s = np.round(s * 4) / 4
        preds.append(
            {
                "boxes": torch.tensor(d).reshape(-1, 4),
                "scores": torch.tensor(s),
                "labels": torch.tensor(dl, dtype=torch.int64),
            }
        )
    return preds, targets


def coco_reference(preds, targets, iou_thresholds=None):
    """The 12 summary numbers of COCOeval (bbox) and the eval object, on our inputs."""
    images, anns, results = [], [], []
    cats = set()
    for i, (p, t) in enumerate(zip(preds, targets)):
        images.append({"id": i, "width": 1000, "height": 1000})
        tb = t["boxes"].double().numpy()
        crowd = t.get("iscrowd", torch.zeros(len(tb), dtype=torch.int64)).numpy()
        area = (
            t["area"].double().numpy()
            if "area" in t
            else (tb[:, 2] - tb[:, 0]) * (tb[:, 3] - tb[:, 1])
        )
        for b, lab, c, a in zip(tb, t["labels"].tolist(), crowd.tolist(), area.tolist()):
            cats.add(lab)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": lab,
                    "iscrowd": int(c),
                    "area": float(a),
                    "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                }
            )
        for b, lab, s in zip(
            p["boxes"].double().numpy(), p["labels"].tolist(), p["scores"].double().tolist()
        ):
            cats.add(lab)
            results.append(
                {
                    "image_id": i,
                    "category_id": lab,
                    "score": float(s),
                    "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                }
            )
    return run_cocoeval(images, anns, results, cats, "bbox", iou_thresholds)


def run_cocoeval(images, anns, results, cats, iou_type, iou_thresholds=None):
    """COCOeval (``iou_type`` "bbox" or "segm", its printing silenced) of COCO-format results against
    COCO-format ground truth of the category ids ``cats``: the 12 summary numbers and the eval object."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": anns,
            "categories": [{"id": c} for c in sorted(cats)],
        }
        gt.createIndex()
        dt = gt.loadRes(results) if results else COCO()
        if not results:
            dt.dataset = {
                "images": images,
                "annotations": [],
                "categories": gt.dataset["categories"],
            }
            dt.createIndex()
        ev = COCOeval(gt, dt, iou_type)
        if iou_thresholds is not None:
            ev.params.iouThrs = np.array(iou_thresholds)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats, ev
