"""Segmentation and tracking: mIoU over a batch of masks vs torchmetrics, assignment (readable and
fast paths) vs scipy, MOT metrics of a sequence vs motmetrics. Ratios are reported, not targeted."""

from __future__ import annotations

import numpy as np

from deepnotes.bench.api import BenchItem, bench_case


@bench_case("mean_iou_masks", reference="torchmetrics MulticlassJaccardIndex", requires=("torchmetrics",))
def mean_iou_case(quick: bool) -> list[BenchItem]:
    import torch
    from torchmetrics.functional.classification import multiclass_jaccard_index

    from deepnotes.metrics import mean_iou

    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 21, (8, 256, 256), generator=g)
    p = torch.where(torch.rand(t.shape, generator=g) < 0.2, torch.randint(0, 21, t.shape, generator=g), t)
    return [BenchItem(size="8x256x256, 21 classes", ours=lambda: mean_iou(t, p, 21),
                      reference=lambda: multiclass_jaccard_index(p, t, 21), repeats=3 if quick else 7)]


@bench_case("linear_assignment", reference="scipy.optimize.linear_sum_assignment", requires=("scipy",))
def assignment_case(quick: bool) -> list[BenchItem]:
    from scipy.optimize import linear_sum_assignment

    from deepnotes.tracking import linear_assignment

    items = []
    for n in (20, 100) if quick else (20, 100, 300):
        cost = np.random.default_rng(n).random((n, n))
        items.append(BenchItem(size=f"{n}x{n}", ours=lambda c=cost: linear_assignment(c),
                               reference=lambda c=cost: linear_sum_assignment(c), repeats=3 if quick else 7))
    return items


@bench_case("linear_assignment_fast", reference="scipy.optimize.linear_sum_assignment", requires=("scipy",))
def assignment_fast_case(quick: bool) -> list[BenchItem]:
    """The fast path (Jonker–Volgenant start, then shortest augmenting paths) that SORT and DeepSORT use."""
    from scipy.optimize import linear_sum_assignment

    from deepnotes.tracking import fast_linear_assignment

    items = []
    shapes = ((20, 20), (100, 100), (50, 80)) if quick else ((20, 20), (100, 100), (300, 300), (50, 80), (200, 300))
    for n, m in shapes:
        cost = np.random.default_rng(n * m).random((n, m))
        items.append(BenchItem(size=f"{n}x{m}", ours=lambda c=cost: fast_linear_assignment(c),
                               reference=lambda c=cost: linear_sum_assignment(c), repeats=5 if quick else 9))
    return items


@bench_case("mot_metrics_sequence", reference="motmetrics (iou distance, compare_to_groundtruth)", requires=("motmetrics", "pandas"))
def mot_metrics_case(quick: bool) -> list[BenchItem]:
    import pandas as pd

    if not hasattr(np, "asfarray"):  # motmetrics 1.4 still calls np.asfarray (removed in NumPy 2)
        np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)
    import motmetrics as mm

    from deepnotes.tracking import mot_metrics

    g = np.random.default_rng(0)
    frames, objects = (50, 10) if quick else (300, 20)
    gt = np.array([[f, o, 10 * o + f, 5 * o, 20, 30] for f in range(1, frames + 1) for o in range(1, objects + 1)], float)
    hyp = gt.copy()
    hyp[:, 2:4] += g.normal(0, 2, (len(gt), 2))
    hyp = hyp[g.random(len(hyp)) > 0.1]

    def df(rows):
        return pd.DataFrame(rows, columns=["FrameId", "Id", "X", "Y", "Width", "Height"]).set_index(["FrameId", "Id"])

    names = ["mota", "motp", "idf1", "num_switches"]

    def reference():
        acc = mm.utils.compare_to_groundtruth(df(gt), df(hyp), "iou", distth=0.5)
        return mm.metrics.create().compute(acc, metrics=names)

    return [BenchItem(size=f"{frames} frames x {objects} objects", ours=lambda: mot_metrics(gt, hyp),
                      reference=reference, repeats=3 if quick else 5)]
