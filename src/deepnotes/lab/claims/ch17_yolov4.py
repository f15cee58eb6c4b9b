"""Chapter 17 (one-stage detectors): an ablation of the YOLOv4 techniques on YOLOv3 — each added
alone to the same baseline, and all together, on the same budget."""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.core.threads import torch_threads
from deepnotes.data import shapes
from deepnotes.detection import mean_average_precision
from deepnotes.detection.models import YOLOv3, dataset_anchors
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.lab.claims._detector_steps import train_steps
from deepnotes.train.tasks import get_task
from deepnotes.viz import new_figure

_SIZE, _BATCH, _LR = 64, 8, 5e-3
# each technique as YOLOv3 keywords; "cosine" is the learning-rate schedule, "diou_nms" changes only
# inference (scored on the baseline's own weights)
TECHNIQUES: dict[str, dict] = {
    "CSP backbone": {"csp": True},
    "SPP": {"spp": True},
    "PAN neck": {"pan": True},
    "ASFF fusion": {"fusion": "asff"},
    "SE fusion": {"fusion": "se"},
    "Mish": {"act": "mish"},
    "DropBlock": {"dropblock": 0.1},
    "Mosaic": {"mosaic": 0.5},
    "CutMix": {"cutmix": 0.5},
    "label smoothing": {"label_smoothing": 0.1},
    "CIoU loss": {"box_loss": "ciou"},
    "DIoU-NMS": {"nms": "diou"},
    "cosine schedule": {"cosine": True},
}
# YOLOv4 = CSPDarknet + SPP + PAN + YOLOv3 head, with its bag of freebies and specials
YOLOV4 = {"csp": True, "spp": True, "pan": True, "act": "mish", "dropblock": 0.1, "mosaic": 0.5, "cutmix": 0.5,
          "label_smoothing": 0.1, "box_loss": "ciou", "nms": "diou", "cosine": True}
QUICK = ("DIoU-NMS",)  # quick mode: the full set and this inference-only switch (each technique: ~2 CPU minutes)
ALL = "YOLOv4 (all)"


def _train(kw: dict, seed: int, steps: int, items: list, anchors: torch.Tensor) -> YOLOv3:
    """YOLOv3 (width 4) with the switches ``kw``, ``steps`` Adam steps: the same initial weights
    (where the architecture allows), batches and augmentation draws for every setting."""
    kw = dict(kw)
    cosine = kw.pop("cosine", False)
    torch.manual_seed(seed)
    model = YOLOv3((3, _SIZE, _SIZE), 3, width=4, anchors=anchors, **kw)
    return train_steps(model, items, steps, _BATCH, seed, lr=_LR, cosine=cosine)


@torch.no_grad()
def _score(model: YOLOv3, test) -> tuple[float, float]:
    r = mean_average_precision(model(test[0]), test[1])
    return float(r["map_50"]), float(r["map"])


def _repeat(seed: int, steps: int, names: list[str]) -> dict[str, tuple[float, float]]:
    """mAP@0.5 and mAP@[.5:.95] of the baseline, of each technique in ``names`` added to it and
    of all of YOLOv4's together, on one draw of the data."""
    task = get_task("detect")
    splits = shapes(seed=seed, n_train=300, n_val=1, n_test=100, image_size=_SIZE, min_size=8, max_size=32,
                    max_objects=3)
    items = [splits.train[i] for i in range(len(splits.train))]  # rendered once
    anchors = dataset_anchors(splits.train, 9, seed=seed).float()
    test = task.collate([splits.test[i] for i in range(len(splits.test))])
    out = {}
    with torch_threads(1):
        base = _train({}, seed, steps, items, anchors)
        out["baseline"] = _score(base, test)
        for name in names:
            kw = TECHNIQUES[name]
            if set(kw) == {"nms"}:  # inference only: the baseline's weights
                base.nms = kw["nms"]
                out[name] = _score(base, test)
                base.nms = "nms"
            else:
                out[name] = _score(_train(kw, seed, steps, items, anchors), test)
        out[ALL] = _score(_train(YOLOV4, seed, steps, items, anchors), test)
    return out


@claim(
    "17v",
    title="YOLOv4's bag of freebies and specials, technique by technique, on YOLOv3",
    topics=("17.7",),
    source="notes 1251-1257, 1285",
    statement="YOLOv4 is YOLOv3 with a CSPDarknet backbone, SPP and PAN, plus a bag of freebies (CutMix and "
    "Mosaic, DropBlock, label smoothing, CIoU loss, cosine annealing, …) and of specials (Mish, SPP, PAN, "
    "DIoU-NMS, …); these techniques lift the accuracy a step.",
    kind="experiment",
    expected="refuted",
    reason="On a budget of a few CPU seconds per detector (the lab's; the baseline reaches a test "
    "mAP@0.5 of only a few hundredths), all of YOLOv4's techniques together lower YOLOv3's mAP: the "
    "regularizers (Mosaic, CutMix, DropBlock, label smoothing) and the cosine decay slow early learning "
    "and the extra parts need longer training. Single techniques sit close to the baseline: a few lift "
    "it beyond the noise on some seeds, none on every seed (per technique in the details). A budget "
    "like the paper's is out of the lab's reach.",
)
def yolov4_ablation(quick: bool, seed: int) -> ClaimResult:
    repeats, steps = 2, 200
    names = list(QUICK) if quick else list(TECHNIQUES)
    runs = [_repeat(seed + 1000 * r, steps, names) for r in range(repeats)]
    keys = names + [ALL]
    base50 = np.array([run["baseline"][0] for run in runs])
    delta = np.array([[run[k][0] - run["baseline"][0] for run in runs] for k in keys])  # (techniques, repeats)
    delta_coco = np.array([[run[k][1] - run["baseline"][1] for run in runs] for k in keys])
    mean = delta.mean(1)
    # training noise: the spread of a paired difference over repeats, pooled over the trained
    # settings (an inference-only switch shares the baseline's training and has none)
    trained = [i for i, k in enumerate(keys) if TECHNIQUES.get(k) != {"nms": "diou"}]
    se = float(np.sqrt(delta[trained].var(1, ddof=1).mean() / repeats))
    effect = {k: "helps" if m > 2 * se else "hurts" if m < -2 * se else "within noise" for k, m in zip(keys, mean)}
    helps = [k for k in names if effect[k] == "helps"]
    hurts = [k for k in names if effect[k] == "hurts"]
    holds = effect[ALL] == "helps"

    fig, ax = new_figure(1, width=6.4, height=0.42 * len(keys) + 1.6)
    y = np.arange(len(keys))[::-1]
    colors = {"helps": "tab:green", "hurts": "tab:red", "within noise": "0.6"}
    ax.barh(y, mean, xerr=2 * se, color=[colors[effect[k]] for k in keys], capsize=3, height=0.6)
    for r in range(repeats):
        ax.plot(delta[:, r], y, "k.", ms=5, label="one repeat" if r == 0 else None)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, keys)
    ax.set(xlabel="Δ test mAP@0.5 vs YOLOv3 baseline (bar: mean, whiskers: ±2 SE)",
           title=f"YOLOv3 + one technique, {steps} steps; baseline mAP@0.5 {base50.mean():.3f}")
    for label, c in colors.items():
        ax.barh([np.nan], [np.nan], color=c, label=label)
    ax.legend(fontsize=8, loc="lower right")

    def r4(v) -> float:
        return round(float(v), 4)

    table = "\n".join(f"| {k} | {mean[i]:+.3f} | {', '.join(f'{d:+.3f}' for d in delta[i])} | "
                      f"{delta_coco[i].mean():+.3f} | {effect[k]} |" for i, k in enumerate(keys))
    return ClaimResult(
        measured={"baseline_map50": [r4(v) for v in base50], "delta_map50": {k: r4(mean[i]) for i, k in enumerate(keys)},
                  "delta_map": {k: r4(delta_coco[i].mean()) for i, k in enumerate(keys)}, "se": r4(se),
                  "effect": effect, "repeats": repeats, "steps": steps},
        test=f"YOLOv3 (width 4, three scales) on {_SIZE} px shapes (300 training images, 100 test), "
        f"{steps} Adam steps (lr {_LR}, batch {_BATCH}) per detector: the baseline and the baseline with "
        f"all of YOLOv4's techniques together (CSP, SPP, PAN, Mish, DropBlock, Mosaic, CutMix, label "
        "smoothing, CIoU, DIoU-NMS, cosine), and the baseline with one technique added "
        f"({'quick mode: only DIoU-NMS, which needs no training' if quick else 'each of ' + str(len(names))}), "
        "paired — same data, initial weights (where the architecture allows), batches and augmentation "
        f"draws — over {repeats} repeats (seed, seed + 1000). Holds when the full set's mean Δ mAP@0.5 "
        "exceeds 2 SE (it lifts accuracy a step), refuted otherwise; SE: the spread of the paired "
        "differences over the repeats, pooled over the trained settings, / √repeats. Each single "
        "technique is labelled by the same rule (helps > 2 SE, hurts < −2 SE, else within noise) — "
        "reported, not part of the verdict",
        holds=holds,
        figures=[fig],
        details="| technique | mean Δ mAP@0.5 | per repeat | mean Δ mAP@[.5:.95] | effect |\n|---|---|---|---|---|\n" + table,
        observation=f"Helps: {', '.join(helps) or 'none'}; hurts: {', '.join(hurts) or 'none'}; within noise: "
        f"{', '.join(k for k in names if effect[k] == 'within noise') or 'none'}"
        f"; all of YOLOv4 together: {effect[ALL]} ({mean[-1]:+.3f})"
        f". SE {se:.3f} on a baseline mAP@0.5 of {base50.mean():.3f}: the budget is a few CPU seconds per "
        "detector, far from the paper's, so this measures how fast each variant starts to learn rather "
        "than the accuracy it ends at; regularizers pay off over long training. The single-technique "
        "labels change with the seed (most settings sit close together, a little below the baseline); "
        "the full set's shortfall does not.",
    )
