"""mAP: COCO style against pycocotools' COCOeval (all 12 numbers); VOC styles against a slow loop."""

import numpy as np
import pytest
import torch

from deepnotes.detection import mean_average_precision, measure_fps
from deepnotes.detection.map import COCO_KEYS

from ._coco_ref import coco_reference, random_detections


def ours_stats(preds, targets, **kw):
    out = mean_average_precision(preds, targets, **kw)
    return np.array([float(out[k]) for k in COCO_KEYS])


@pytest.mark.parametrize("seed", range(16))
def test_coco_equals_pycocotools(seed):
    preds, targets = random_detections(
        seed, n_images=12, n_classes=1 + seed % 4, tie_scores=seed % 2 == 1, crowd_p=0.15
    )
    ref, _ = coco_reference(preds, targets)
    np.testing.assert_allclose(ours_stats(preds, targets), ref, rtol=0, atol=1e-6)


def test_coco_with_more_than_100_detections_per_image_and_custom_thresholds():
    rng = np.random.default_rng(0)
    preds, targets = random_detections(1, n_images=5)
    for p in preds:
        n = 130
        xy = rng.uniform(0, 300, (n, 2))
        wh = rng.uniform(2, 120, (n, 2))
        p["boxes"] = torch.cat([p["boxes"], torch.tensor(np.concatenate([xy, xy + wh], 1))])
        p["scores"] = torch.cat([p["scores"], torch.tensor(rng.random(n))])
        p["labels"] = torch.cat([p["labels"], torch.ones(n, dtype=torch.int64)])
    ref, _ = coco_reference(preds, targets)
    np.testing.assert_allclose(ours_stats(preds, targets), ref, rtol=0, atol=1e-6)
    thr = [0.3, 0.5, 0.75, 0.9]
    ref, _ = coco_reference(preds, targets, iou_thresholds=thr)
    np.testing.assert_allclose(
        ours_stats(preds, targets, iou_thresholds=thr), ref, rtol=0, atol=1e-6
    )


def test_coco_per_class_numbers_equal_pycocotools():
    preds, targets = random_detections(4, n_images=20, n_classes=4)
    _, ev = coco_reference(preds, targets)
    out = mean_average_precision(preds, targets, class_metrics=True)
    prec = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K) at area all, 100 detections
    rec = ev.eval["recall"][:, :, 0, -1]
    for k in range(prec.shape[2]):
        p, r = prec[:, :, k], rec[:, k]
        assert (
            abs(float(out["map_per_class"][k]) - (p[p > -1].mean() if (p > -1).any() else -1))
            < 1e-9
        )
        assert (
            abs(float(out["mar_100_per_class"][k]) - (r[r > -1].mean() if (r > -1).any() else -1))
            < 1e-9
        )
    assert out["classes"].tolist() == sorted(
        {int(v) for t in targets for v in t["labels"]}
        | {int(v) for p in preds for v in p["labels"]}
    )


def test_coco_edge_cases():
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    perfect = mean_average_precision(
        [{"boxes": b, "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}],
        [{"boxes": b, "labels": torch.tensor([1])}],
    )
    # precision is tp / (tp + fp + eps) as in pycocotools: 1 − 2.2e-16 for a perfect detector
    assert (
        abs(float(perfect["map"]) - 1.0) < 1e-12 and abs(float(perfect["map_small"]) - 1.0) < 1e-12
    )
    assert float(perfect["map_large"]) == -1.0
    none = mean_average_precision(
        [
            {
                "boxes": torch.zeros(0, 4),
                "scores": torch.zeros(0),
                "labels": torch.zeros(0, dtype=torch.int64),
            }
        ],
        [{"boxes": b, "labels": torch.tensor([1])}],
    )
    assert float(none["map"]) == 0.0 and float(none["mar_100"]) == 0.0
    empty = mean_average_precision([], [])
    assert all(float(empty[k]) == -1.0 for k in COCO_KEYS)
    for v in mean_average_precision(*random_detections(3, n_images=6)).values():
        assert torch.isfinite(v).all()


def slow_voc_ap(preds, targets, label, thr, style):
    dets = []
    for i, p in enumerate(preds):
        for j in range(len(p["scores"])):
            if int(p["labels"][j]) == label:
                dets.append((-float(p["scores"][j]), i, j))
    dets.sort(key=lambda t: (t[0], t[1], t[2]))  # score descending, then input order
    gts = {
        i: [
            (t["boxes"][k].tolist(), bool(t["iscrowd"][k]))
            for k in range(len(t["labels"]))
            if int(t["labels"][k]) == label
        ]
        for i, t in enumerate(targets)
    }
    npos = sum(1 for g in gts.values() for _, diff in g if not diff)
    if npos == 0:
        return -1.0
    taken = {i: [False] * len(g) for i, g in gts.items()}
    tp, fp = [], []

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
        return w * h / u if u > 0 else 0.0

    for _, i, j in dets:
        box = preds[i]["boxes"][j].tolist()
        best, arg = -1.0, -1
        for k, (g, _) in enumerate(gts[i]):
            o = iou(box, g)
            if o > best:
                best, arg = o, k
        if best > thr:
            if gts[i][arg][1]:
                continue
            if not taken[i][arg]:
                taken[i][arg] = True
                tp.append(1), fp.append(0)
            else:
                tp.append(0), fp.append(1)
        else:
            tp.append(0), fp.append(1)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / npos
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if style == "voc07":
        return float(
            np.mean(
                [
                    max([p for p, r in zip(prec, rec) if r >= t], default=0.0)
                    for t in np.linspace(0, 1, 11)
                ]
            )
        )
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


@pytest.mark.parametrize("style", ["voc07", "voc12"])
@pytest.mark.parametrize("seed", range(6))
def test_voc_equals_a_slow_loop(style, seed):
    preds, targets = random_detections(seed, n_images=15, n_classes=3, tie_scores=seed % 2 == 1)
    out = mean_average_precision(preds, targets, style=style, class_metrics=True)
    for thr_list in ([0.5], [0.5, 0.75]):
        out = mean_average_precision(
            preds, targets, style=style, iou_thresholds=thr_list, class_metrics=True
        )
        per = []
        for c, label in enumerate(out["classes"].tolist()):
            exp = [slow_voc_ap(preds, targets, label, t, style) for t in thr_list]
            valid = [e for e in exp if e > -1]
            exp_mean = float(np.mean(valid)) if valid else -1.0
            assert abs(float(out["map_per_class"][c]) - exp_mean) < 1e-12
            per += valid
        assert abs(float(out["map"]) - float(np.mean(per))) < 1e-12
    assert float(out["map_small"]) == -1.0


def test_measure_fps_counts_images_per_second():
    fps = measure_fps(lambda x: x * 2, torch.ones(4), warmup=1, repeats=3, batch_size=4)
    assert fps > 0


def _zero_prediction(n=2, box_shape=(2, 4), n_labels=2, label_dtype=torch.int64):
    """One image's prediction of ``n`` zero scores, zero boxes of ``box_shape`` and ``n_labels`` zero labels."""
    return {"boxes": torch.zeros(box_shape), "scores": torch.zeros(n), "labels": torch.zeros(n_labels, dtype=label_dtype)}


def test_bad_input():
    p, t = random_detections(0, n_images=3)
    with pytest.raises(ValueError, match="one entry per image"):
        mean_average_precision(p, t[:2])
    bad = [dict(x) for x in p]
    bad[1] = dict(bad[1], scores=torch.full_like(bad[1]["scores"], float("nan")))
    if len(bad[1]["scores"]):
        with pytest.raises(ValueError, match="scores'\\] must be finite"):
            mean_average_precision(bad, t)
    with pytest.raises(ValueError, match="has no 'scores'"):
        mean_average_precision(
            [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}], t[:1]
        )
    with pytest.raises(ValueError, match="must have shape \\(N, 4\\)"):
        mean_average_precision([_zero_prediction(box_shape=(2, 5))], t[:1])
    with pytest.raises(ValueError, match="labels'\\] must have one entry per box"):
        mean_average_precision([_zero_prediction(n_labels=3)], t[:1])
    with pytest.raises(ValueError, match="style must be one of"):
        mean_average_precision(p, t, style="voc2007")
    with pytest.raises(ValueError, match="iou_thresholds\\[0\\] must be <= 1"):
        mean_average_precision(p, t, iou_thresholds=[1.5])
    with pytest.raises(TypeError, match="labels.* must be an integer tensor"):
        mean_average_precision([_zero_prediction(1, (1, 4), 1, label_dtype=torch.float32)], t[:1])
