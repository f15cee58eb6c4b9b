"""Boxes, NMS, box losses and COCO mAP against torchvision and pycocotools (CPU, float32).

* ``nms``: 1,000 and 10,000 random boxes in a 1000 × 1000 image (sides up to 100 px, most boxes
  kept) — targets <= 1.0 at 1k and <= 0.5 at 10k; ``nms_clustered``: the same counts crowded
  around 20 objects (a detector's raw output, most boxes suppressed) — reported, no target;
* ``batched_nms``: 10,000 boxes in 20 classes — target <= 1.0;
* ``box_iou``: 2,000 × 2,000 pairwise — target <= 1.0;
* ``giou_loss`` / ``diou_loss`` / ``ciou_loss``: 100,000 pairs, mean reduction — target <= 1.0;
* ``coco_map``: 500 images × 5 classes (crowds, all area ranges): ours end to end (from
  torchmetrics-style dicts) vs ``COCOeval.evaluate() + accumulate()`` on prebuilt COCO objects —
  target <= 0.1; the 12 summary numbers are checked equal before timing.

Every case checks that both sides return the same result before it is timed.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch

from deepnotes.bench.api import BenchItem, bench_case


def _boxes(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 1000
    wh = torch.rand(n, 2, generator=g) * 100 + 1
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


def _clustered(n: int, seed: int = 0, objects: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(objects, 2, generator=g) * 900 + 50
    sizes = torch.rand(objects, 2, generator=g) * 90 + 10
    k = torch.randint(objects, (n,), generator=g)
    c = centres[k] + torch.randn(n, 2, generator=g) * 4
    wh = sizes[k] * (1 + 0.1 * torch.randn(n, 2, generator=g)).clamp(min=0.2)
    return torch.cat([c - wh / 2, c + wh / 2], 1), torch.rand(n, generator=g)


def _same(a, b) -> None:
    if not torch.equal(a, b):
        raise AssertionError("ours and the reference disagree")


@bench_case(
    "nms",
    reference="torchvision.ops.nms",
    requires=("torchvision",),
    target=0.5,
    description="greedy NMS at IoU 0.5 on random boxes (target 1.0 at 1k boxes, 0.5 at 10k)",
)
def nms_case(quick: bool) -> list[BenchItem]:
    import torchvision

    from deepnotes.detection import nms

    items = []
    for n in (1000,) if quick else (1000, 10_000):
        b, s = _boxes(n)
        _same(nms(b, s, 0.5), torchvision.ops.nms(b, s, 0.5))
        items.append(
            BenchItem(
                size=f"{n} boxes" + (" (target 1.0)" if n == 1000 else ""),
                ours=lambda b=b, s=s: nms(b, s, 0.5),
                reference=lambda b=b, s=s: torchvision.ops.nms(b, s, 0.5),
                repeats=7 if n < 10_000 else 3,
            )
        )
    return items


@bench_case(
    "nms_clustered",
    reference="torchvision.ops.nms",
    requires=("torchvision",),
    target=None,
    description="greedy NMS at IoU 0.5 on boxes crowded around 20 objects (most suppressed)",
)
def nms_clustered_case(quick: bool) -> list[BenchItem]:
    import torchvision

    from deepnotes.detection import nms

    items = []
    for n in (1000,) if quick else (1000, 10_000):
        b, s = _clustered(n)
        _same(nms(b, s, 0.5), torchvision.ops.nms(b, s, 0.5))
        items.append(
            BenchItem(
                size=f"{n} boxes, 20 objects",
                ours=lambda b=b, s=s: nms(b, s, 0.5),
                reference=lambda b=b, s=s: torchvision.ops.nms(b, s, 0.5),
            )
        )
    return items


@bench_case(
    "batched_nms",
    reference="torchvision.ops.batched_nms",
    requires=("torchvision",),
    target=1.0,
    description="per-class NMS at IoU 0.5, 20 classes",
)
def batched_nms_case(quick: bool) -> list[BenchItem]:
    import torchvision

    from deepnotes.detection import batched_nms

    n = 2000 if quick else 10_000
    b, s = _boxes(n)
    idx = torch.randint(0, 20, (n,), generator=torch.Generator().manual_seed(1))
    _same(batched_nms(b, s, idx, 0.5), torchvision.ops.batched_nms(b, s, idx, 0.5))
    return [
        BenchItem(
            size=f"{n} boxes, 20 classes",
            ours=lambda: batched_nms(b, s, idx, 0.5),
            reference=lambda: torchvision.ops.batched_nms(b, s, idx, 0.5),
        )
    ]


@bench_case(
    "box_iou",
    reference="torchvision.ops.box_iou",
    requires=("torchvision",),
    target=1.0,
    description="pairwise IoU matrix",
)
def box_iou_case(quick: bool) -> list[BenchItem]:
    import torchvision

    from deepnotes.detection import box_iou

    n = 500 if quick else 2000
    a, _ = _boxes(n, 0)
    b, _ = _boxes(n, 1)
    _same(box_iou(a, b), torchvision.ops.box_iou(a, b))
    return [
        BenchItem(
            size=f"{n} x {n}",
            ours=lambda: box_iou(a, b),
            reference=lambda: torchvision.ops.box_iou(a, b),
        )
    ]


def _register_loss(case: str, ours_name: str, ref_name: str) -> None:
    @bench_case(
        case,
        reference=f"torchvision.ops.{ref_name}",
        requires=("torchvision",),
        target=1.0,
        description=f"{ours_name} on box pairs, mean reduction",
    )
    def loss_case(quick: bool) -> list[BenchItem]:
        import torchvision

        from deepnotes import detection

        n = 10_000 if quick else 100_000
        p, _ = _boxes(n, 0)
        t, _ = _boxes(n, 1)
        ours, ref = getattr(detection, ours_name), getattr(torchvision.ops, ref_name)
        torch.testing.assert_close(ours(p, t, reduction="mean"), ref(p, t, reduction="mean"))
        return [
            BenchItem(
                size=f"{n} pairs",
                ours=lambda: ours(p, t, reduction="mean"),
                reference=lambda: ref(p, t, reduction="mean"),
                repeats=11,
            )
        ]


for _case, _ours, _ref in (
    ("giou_loss", "generalized_box_iou_loss", "generalized_box_iou_loss"),
    ("diou_loss", "distance_box_iou_loss", "distance_box_iou_loss"),
    ("ciou_loss", "complete_box_iou_loss", "complete_box_iou_loss"),
):
    _register_loss(_case, _ours, _ref)


def _coco_problem(n_images: int, seed: int = 0, n_classes: int = 5):
    """Ground truth with crowds and all area ranges, and detections jittered around it plus clutter."""
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for _ in range(n_images):
        m = int(rng.integers(1, 10))
        xy = rng.uniform(0, 500, (m, 2))
        wh = np.exp(rng.uniform(np.log(4), np.log(300), (m, 2)))
        gt = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(1, n_classes + 1, m)
        reps = rng.integers(0, 4, m)
        d = np.repeat(gt, reps, 0) + rng.normal(0, 0.1, (int(reps.sum()), 4)) * np.repeat(
            np.tile(wh, 2), reps, 0
        )
        k = int(rng.integers(0, 8))
        cxy = rng.uniform(0, 500, (k, 2))
        d = np.concatenate([d, np.concatenate([cxy, cxy + rng.uniform(4, 200, (k, 2))], 1)])
        d = np.concatenate([np.minimum(d[:, :2], d[:, 2:]), np.maximum(d[:, :2], d[:, 2:])], 1)
        dl = np.concatenate([np.repeat(labels, reps), rng.integers(1, n_classes + 1, k)])
        preds.append(
            {
                "boxes": torch.from_numpy(d),
                "scores": torch.from_numpy(rng.random(len(d))),
                "labels": torch.from_numpy(dl),
            }
        )
        targets.append(
            {
                "boxes": torch.from_numpy(gt),
                "labels": torch.from_numpy(labels),
                "iscrowd": torch.from_numpy((rng.random(m) < 0.05).astype(np.int64)),
            }
        )
    return preds, targets


def _coco_objects(preds, targets):
    from pycocotools.coco import COCO

    images, anns, results = [], [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        images.append({"id": i, "width": 1000, "height": 1000})
        for b, lab, c in zip(t["boxes"].tolist(), t["labels"].tolist(), t["iscrowd"].tolist()):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": lab,
                    "iscrowd": c,
                    "area": w * h,
                    "bbox": [b[0], b[1], w, h],
                }
            )
        for b, lab, s in zip(p["boxes"].tolist(), p["labels"].tolist(), p["scores"].tolist()):
            results.append(
                {
                    "image_id": i,
                    "category_id": lab,
                    "score": s,
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                }
            )
    cats = sorted({a["category_id"] for a in anns} | {r["category_id"] for r in results})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": anns,
            "categories": [{"id": c} for c in cats],
        }
        gt.createIndex()
        dt = gt.loadRes(results)
    return gt, dt


@bench_case(
    "coco_map",
    reference="pycocotools COCOeval.evaluate + accumulate",
    requires=("pycocotools",),
    target=0.1,
    description="COCO-style mAP (12 numbers) of 500 images, checked equal to COCOeval",
)
def coco_map_case(quick: bool) -> list[BenchItem]:
    from pycocotools.cocoeval import COCOeval

    from deepnotes.detection import mean_average_precision
    from deepnotes.detection.map import COCO_KEYS

    n = 100 if quick else 500
    preds, targets = _coco_problem(n)
    gt, dt = _coco_objects(preds, targets)

    def reference():
        ev = COCOeval(gt, dt, "bbox")
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
        return ev

    ev = reference()
    with contextlib.redirect_stdout(io.StringIO()):
        ev.summarize()
    ours = mean_average_precision(preds, targets)
    if np.abs(np.array([float(ours[k]) for k in COCO_KEYS]) - ev.stats).max() > 1e-6:
        raise AssertionError("mean_average_precision differs from COCOeval")
    return [
        BenchItem(
            size=f"{n} images, 5 classes",
            ours=lambda: mean_average_precision(preds, targets),
            reference=reference,
            repeats=5,
        )
    ]
