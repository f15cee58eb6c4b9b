"""Chapter 17 (YOLO family): multi-scale training and small objects; the YOLOv4 bag of tricks.

Both experiments train YOLOv3 (:class:`deepnotes.detection.models.YOLOv3`, width 4) from scratch on
64 × 64 ``shapes`` images with every object relabelled as one class (so that seconds of CPU teach
the detector something), with Adam, batch 16, the same seeds and the same number of steps for
every variant. The budgets are tiny (seconds, not the zoo's minutes): the claims report what such
budgets can and cannot show, and their thresholds are set from the spread over seeds.
"""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.data import shapes
from deepnotes.detection.map import mean_average_precision
from deepnotes.detection.models import SHAPES_ANCHORS_9, YOLOv3
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.viz import new_figure

_SIZE = 64
_ANCHORS = tuple((w * _SIZE / 128, h * _SIZE / 128) for w, h in SHAPES_ANCHORS_9)  # the k-means anchors, rescaled


def _data(split: str, n: int, min_size: float, max_size: float, seed: int):
    splits = shapes(seed=seed, n_train=n, n_val=1, n_test=n, image_size=_SIZE, max_objects=2,
                    min_size=min_size, max_size=max_size)
    data = getattr(splits, split)
    items = [data[i] for i in range(len(data))]
    return (torch.stack([x for x, _ in items]),
            [{"boxes": t["boxes"], "labels": torch.ones_like(t["labels"])} for _, t in items])


def _train(train, tests, steps: int, seed: int, lr: float = 3e-3, cosine: bool = False, **kw) -> list[float]:
    """mAP@0.5 on each of ``tests`` after ``steps`` Adam steps of YOLOv3 with keywords ``kw``."""
    torch.manual_seed(seed)
    model = YOLOv3((3, _SIZE, _SIZE), 1, width=4, anchors=_ANCHORS, **kw)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cosine else None
    images, targets = train
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(images), (16,), generator=g)
        loss = sum(model(images[idx], [targets[int(j)] for j in idx]).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    model.eval()
    with torch.no_grad():
        return [float(mean_average_precision(model(x), t)["map_50"]) for x, t in tests]


@claim(
    "17x",
    title="Multi-scale training improves the AP of small objects",
    topics=("17.12", "17.7"),
    source="notes 1213, 1476-1478, 1547",
    statement="Training on images resized to several scales (YOLOv2 changes the input size during "
    "training) makes the detector robust to scale; shrinking images creates small-object samples, "
    "which helps detect small objects.",
    expected="refuted",
    reason="at the lab's budget (seconds of CPU per model) YOLOv3 trained with multi-scale batches is "
    "not measurably better on small objects than at a fixed scale: both detectors are still weak and "
    "the difference stays within the spread over seeds",
)
def multi_scale_small_objects(quick: bool, seed: int) -> ClaimResult:
    steps, repeats = (30, 2) if quick else (200, 3)
    n = 48 if quick else 96
    train = _data("train", n, 16, 32, seed)
    small = _data("test", n // 2, 6, 12, seed)  # smaller than any training object
    usual = _data("test", n // 2, 16, 32, seed)
    ap = {"fixed": [], "multi-scale": []}
    for r in range(repeats):
        ap["fixed"].append(_train(train, (small, usual), steps, 100 * seed + r))
        ap["multi-scale"].append(_train(train, (small, usual), steps, 100 * seed + r, multi_scale=True,
                                        scales=(0.5, 0.75, 1.0)))
    a = {k: np.array(v) for k, v in ap.items()}  # (repeats, 2): small, usual
    diff = a["multi-scale"][:, 0] - a["fixed"][:, 0]
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    holds = bool(diff.mean() > max(3 * se, 0.02))

    fig, ax = new_figure(width=5.5, height=3.6)
    x = np.arange(2)
    for i, (k, colour) in enumerate((("fixed", "tab:blue"), ("multi-scale", "tab:orange"))):
        ax.bar(x + (i - 0.5) * 0.38, a[k].mean(0), 0.38, yerr=a[k].std(0), color=colour, label=k, capsize=3)
    ax.set_xticks(x, ["small objects (6–12 px)", "training sizes (16–32 px)"])
    ax.set(ylabel="AP@0.5 on the test images", title=f"YOLOv3, {steps} steps, {repeats} seeds")
    ax.legend()
    return ClaimResult(
        measured={"ap50_small_fixed": a["fixed"][:, 0].round(4).tolist(),
                  "ap50_small_multiscale": a["multi-scale"][:, 0].round(4).tolist(),
                  "ap50_usual_fixed": a["fixed"][:, 1].round(4).tolist(),
                  "ap50_usual_multiscale": a["multi-scale"][:, 1].round(4).tolist(),
                  "mean_gain_small": round(float(diff.mean()), 4), "se_gain_small": round(se, 4), "steps": steps},
        test=f"AP@0.5 on test objects of 6–12 px (training objects are 16–32 px) after {steps} steps, with "
        f"multi-scale batches (sizes 32–64 px) vs fixed 64 px, {repeats} paired seeds: holds if the mean gain "
        "exceeds both 3 standard errors and 0.02",
        holds=holds,
        figures=[fig],
        observation="At this budget even the objects of the training sizes reach an AP@0.5 of only a few "
        "hundredths: the experiment bounds what seconds of training show, not what multi-scale training "
        "does over the zoo's minutes.",
    )


TECHNIQUES = {
    "CSP backbone": dict(csp=True), "SPP": dict(spp=True), "PAN": dict(pan=True), "ASFF": dict(fusion="asff"),
    "SE fusion": dict(fusion="se"), "Mish": dict(act="mish"), "DropBlock": dict(dropblock=0.1),
    "Mosaic": dict(mosaic=0.5), "CutMix": dict(cutmix=0.5), "label smoothing": dict(label_smoothing=0.1),
    "CIoU loss": dict(box_loss="ciou"), "DIoU-NMS": dict(nms="diou"), "cosine schedule": dict(cosine=True),
}
QUICK = ("CIoU loss",)


@claim(
    "17z",
    title="The YOLOv4 techniques each raise YOLOv3's accuracy",
    topics=("17.7", "17.10"),
    source="notes 1249-1259, 1285",
    statement="YOLOv4 is YOLOv3 plus a bag of freebies and specials — CSP, SPP, PAN, Mosaic and CutMix, "
    "DropBlock, label smoothing, Mish, CIoU loss, DIoU-NMS, cosine annealing — which together raise "
    "its accuracy a level.",
    expected="refuted",
    reason="at the lab's budget (seconds of CPU per model) no technique, and not all of them together, "
    "raises YOLOv3's mAP@0.5 beyond the spread of the baseline over seeds; the regularizers and "
    "augmentations (DropBlock, Mosaic, CutMix) pay off over long training, which a seconds-long run "
    "cannot show",
)
def yolov4_ablation(quick: bool, seed: int) -> ClaimResult:
    steps, repeats = (20, 2) if quick else (100, 3)
    names = QUICK if quick else tuple(TECHNIQUES)
    n = 48 if quick else 96
    train = _data("train", n, 12, 32, seed)
    test = _data("test", n // 2, 12, 32, seed)
    base = np.array([_train(train, (test,), steps, 100 * seed + r)[0] for r in range(repeats)])
    all_kw = {k: v for name in TECHNIQUES for k, v in TECHNIQUES[name].items() if name != "SE fusion"}
    full = np.array([_train(train, (test,), steps, 100 * seed + r, **all_kw)[0] for r in range(1 if quick else repeats)])
    single = {name: _train(train, (test,), steps, 100 * seed, **TECHNIQUES[name])[0] for name in names}
    spread = float(base.std(ddof=1)) if repeats > 1 else 0.0
    bar = float(base.mean()) + max(3 * spread, 0.02)
    helped = [n for n, v in single.items() if v > bar]
    full_helps = bool(full.mean() > bar)
    holds = full_helps and len(helped) == len(single)

    fig, ax = new_figure(width=7.5, height=3.8)
    labels = ["YOLOv3", *single, "all (ASFF)"]
    values = [base.mean(), *single.values(), full.mean()]
    ax.barh(labels, values, color=["0.5", *["tab:blue"] * len(single), "tab:green"])
    ax.axvline(bar, color="tab:red", ls="--", label="baseline + max(3 sd, 0.02)")
    ax.set(xlabel=f"mAP@0.5 after {steps} steps", title="YOLOv3 with one YOLOv4 technique each", xlim=(0, max(0.05, 1.2 * max(values + [bar]))))
    ax.invert_yaxis()
    ax.legend(fontsize=7)
    return ClaimResult(
        measured={"baseline_map50": base.round(4).tolist(), "all_map50": full.round(4).tolist(),
                  **{f"{n}_map50": round(v, 4) for n, v in single.items()}, "threshold": round(bar, 4),
                  "steps": steps},
        test=f"mAP@0.5 after {steps} Adam steps (same seed, same data): a technique helps if YOLOv3 with it "
        f"beats the baseline's mean over {repeats} seeds by more than max(3 sd, 0.02); holds if every "
        "technique and all of them together (with ASFF) help",
        holds=holds,
        figures=[fig],
        partly=bool(helped) or full_helps,
        details="Techniques above the bar: " + (", ".join(helped) if helped else "none") + ".",
    )
