"""Chapter 17 (one-stage detectors): the easy negatives of a dense detector, with plain binary
cross-entropy and with the focal loss."""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.data import shapes
from deepnotes.detection import box_iou, mean_average_precision, sigmoid_focal_loss
from deepnotes.detection.models import RetinaNet, retinanet_match
from deepnotes.detection.models._common import flatten_targets
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.train.tasks import get_task
from deepnotes.viz import new_figure

_SIZE = 64
EARLY = 20  # the verdict's window: the first training steps, the same in quick and full mode
_EASY = 0.1  # a background (anchor, class) pair is "easy" when its predicted probability is below this


def _loss_parts(model: RetinaNet, images: torch.Tensor, targets: list[dict], focal: bool) -> dict[str, float]:
    """The classification loss of ``model`` on a batch split into positives, hard negatives and
    easy negatives (p < 0.1), under the focal loss or the plain BCE; and how many pairs each is."""
    with torch.no_grad():
        cls, _ = model.raw(images)
        n, a, c = cls.shape
        boxes, labels, image = flatten_targets(targets, n, c, cls.device, cls.dtype)
        matched = retinanet_match(box_iou(boxes, model.anchors), image, n)
        onehot = torch.zeros_like(cls)
        fg = matched >= 0
        onehot[fg] = torch.nn.functional.one_hot(labels[matched[fg]], c).to(cls.dtype)
        valid = (matched != -2).unsqueeze(-1).expand_as(cls)
        alpha, gamma = (0.25, 2.0) if focal else (-1.0, 0.0)
        loss = sigmoid_focal_loss(cls, onehot, alpha, gamma)
        easy = (onehot == 0) & (cls.sigmoid() < _EASY) & valid
        pos = (onehot == 1) & valid
        total = float(loss[valid].sum())
    return {"easy_share": float(loss[easy].sum()) / total, "pos_share": float(loss[pos].sum()) / total,
            "easy_count_share": float(easy.sum()) / float(valid.sum())}


def _train(focal: bool, seed: int, steps: int, train, probe, test) -> dict:
    task = get_task("detect")
    torch.manual_seed(seed)  # the same initial weights for both losses
    model = RetinaNet((3, _SIZE, _SIZE), 3, width=8, focal=focal)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)  # the same batches for both losses
    # the early window (every 2nd of the first EARLY steps) in both modes, then 10 points to the end
    probe_at = set(range(0, EARLY + 1, 2)) | set(range(0, steps + 1, max(steps // 10, 1)))
    trace = []
    for step in range(steps + 1):
        if step in probe_at:
            model.eval()
            trace.append({"step": step, **_loss_parts(model, *probe, focal)})
            model.train()
        if step == steps:
            break
        batch = task.collate([train[int(i)] for i in torch.randint(0, len(train), (8,), generator=g)])
        loss = sum(model(*batch).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        preds = model(test[0])
    return {"trace": trace, "map_50": float(mean_average_precision(preds, test[1])["map_50"])}


@claim(
    "17f",
    title="A dense detector's anchor × class pairs are almost all easy negatives; the focal loss takes their weight out of the loss",
    topics=("17.7",),
    source="notes 1010, 1291-1293",
    statement="A one-stage detector classifies every preset anchor, and an image holds far fewer objects "
    "than anchors, so positives and negatives are extremely unbalanced and the classifier trains "
    "poorly; RetinaNet's focal loss is the answer to this imbalance.",
    kind="experiment",
)
def focal_vs_bce(quick: bool, seed: int) -> ClaimResult:
    steps = 20 if quick else 300
    n_test = 16 if quick else 100
    splits = shapes(seed=seed, n_train=32 if quick else 400, n_val=1, n_test=n_test, image_size=_SIZE,
                    min_size=8, max_size=32, max_objects=4)
    task = get_task("detect")
    probe = task.collate([splits.train[i] for i in range(16)])
    test = task.collate([splits.test[i] for i in range(n_test)])
    runs = {name: _train(name == "focal", seed, steps, splits.train, probe, test) for name in ("focal", "bce")}
    early = {k: [t for t in r["trace"] if t["step"] <= EARLY] for k, r in runs.items()}
    share = {k: np.array([t["easy_share"] for t in tr]) for k, tr in early.items()}
    count = np.mean([t["easy_count_share"] for tr in early.values() for t in tr])
    late = {k: r["trace"][-1]["easy_share"] for k, r in runs.items()}
    holds = bool(count >= 0.9 and share["focal"].mean() <= share["bce"].mean() / 10)

    fig, (ax, ax2) = new_figure(2, width=4.6, height=3.4)
    for k, label in (("bce", "plain BCE"), ("focal", "focal loss (α 0.25, γ 2)")):
        steps_axis = [t["step"] for t in runs[k]["trace"]]
        ax.plot(steps_axis, [100 * t["easy_share"] for t in runs[k]["trace"]], marker="o", label=label)
    if steps > EARLY:
        ax.axvspan(0, EARLY, color="0.9", zorder=0, label=f"verdict window (first {EARLY} steps)")
    ax.set_yscale("log")
    ax.set(xlabel="training step (batch 8)", ylabel="easy negatives' share of the class loss (%)", ylim=(1e-3, 100),
           title=f"{100 * count:.1f}% of anchor × class pairs are easy negatives")
    ax.legend(fontsize=8)
    ax2.bar(["plain BCE", "focal loss"], [runs["bce"]["map_50"], runs["focal"]["map_50"]], color=["tab:blue", "tab:orange"])
    ax2.set(ylabel=f"test mAP@0.5 ({n_test} images)", ylim=(0, 1), title=f"after {steps} steps, same init and batches")
    return ClaimResult(
        measured={"easy_negative_loss_share_bce": round(float(share["bce"].mean()), 4),
                  "easy_negative_loss_share_focal": round(float(share["focal"].mean()), 6),
                  "easy_negative_pair_share": round(float(count), 4),
                  "map50_bce": round(runs["bce"]["map_50"], 4), "map50_focal": round(runs["focal"]["map_50"], 4),
                  "late_easy_share_bce": round(float(late["bce"]), 4),
                  "late_easy_share_focal": round(float(late["focal"]), 6),
                  "steps": steps},
        test="RetinaNet (P3–P5, 9 anchors per location, π = 0.01 bias) on 64 × 64 shapes, trained with each "
        "loss from the same initial weights on the same batches, measured on a fixed batch of 16 training "
        "images every 2nd step of the first 20 training steps (the same window in quick and full mode; full "
        "mode trains on to 300 steps for the observation): the imbalance — at least 90 % of the anchor × class pairs are easy "
        "negatives (background, p < 0.1) — and the focal loss's answer to it — their mean share of the "
        "classification loss is at least 10 × smaller with the focal loss than with plain BCE. The test "
        "mAP@0.5 after the same budget is reported, not part of the verdict (the budget is short)",
        holds=holds,
        figures=[fig],
        details=f"Easy-negative share per checkpoint — BCE: {np.round(share['bce'], 3).tolist()}; "
        f"focal: {np.round(share['focal'], 5).tolist()}.",
        observation="The imbalance is in the counts — almost every anchor × class pair is an easy negative. "
        "With the π = 0.01 bias init, plain BCE does not let them swamp the loss here (about "
        f"{100 * share['bce'].mean():.0f} % on average, falling as training goes on; this detector has "
        "756 anchors per image, the paper's ~100 000); the focal loss's (1 − p_t)^γ factor cuts their share "
        f"to {100 * share['focal'].mean():.2f} %. After {steps} steps the shares are {100 * late['bce']:.1f} % "
        f"(BCE) and {100 * late['focal']:.2f} % (focal): the gap narrows as the detector learns. Test mAP@0.5 "
        f"after {steps} steps: BCE {runs['bce']['map_50']:.3f}, focal {runs['focal']['map_50']:.3f}.",
    )
