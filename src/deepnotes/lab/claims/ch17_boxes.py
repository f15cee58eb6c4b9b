"""Chapter 17 (boxes): IoU vs GIoU losses, GIoU inside an enclosing box, k-means anchors with
1 − IoU. Soft-NMS and the AP definitions are in :mod:`ch17_nms_ap`."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.patches import Rectangle

from deepnotes.data.shapes import ShapesDataset
from deepnotes.detection import (
    box_iou,
    distance_box_iou,
    generalized_box_iou,
    generalized_box_iou_loss,
    iou_loss,
    kmeans_anchors,
)
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.viz import new_figure


@claim(
    "17a",
    title="The IoU loss has zero gradient for disjoint boxes; the GIoU loss does not",
    topics=("17.9",),
    source="notes 1512, 1519",
    statement="When the predicted and the target box do not intersect, IoU is 0 whatever their "
    "distance, so the IoU loss cannot tell how far apart they are and gives nothing to optimize; "
    "GIoU also looks at the empty part of the smallest enclosing box, so it still reflects how the "
    "boxes sit relative to each other.",
    kind="worked example",
)
def iou_vs_giou_gradient(quick: bool, seed: int) -> ClaimResult:
    target = torch.tensor([[40.0, 40.0, 60.0, 60.0]], dtype=torch.float64)
    offsets = np.linspace(-60, 60, 61 if quick else 241)
    rows = []
    for d in offsets:
        p = torch.tensor(
            [[40.0 + d, 40.0, 60.0 + d, 60.0]], dtype=torch.float64, requires_grad=True
        )
        out = []
        for f in (iou_loss, generalized_box_iou_loss):
            loss = f(p, target).sum()
            (g,) = torch.autograd.grad(loss, p)
            out += [loss.item(), g.norm().item()]
        rows.append(out)
    r = np.array(rows)  # columns: IoU loss, |grad|, GIoU loss, |grad|
    disjoint = np.abs(offsets) >= 20  # the 20-px boxes share no area
    iou_flat = bool((r[disjoint, 1] == 0).all() and np.allclose(r[disjoint, 0], 1.0, atol=1e-6))
    giou_moves = bool((r[disjoint, 3] > 0).all())
    far = offsets >= 20
    giou_grows = bool(np.all(np.diff(r[far, 2]) > 0))
    # gradient descent from a disjoint start: only the GIoU loss pulls the box to the target
    steps = 80 if quick else 200
    final = {}
    for f in (iou_loss, generalized_box_iou_loss):
        p = torch.tensor([[90.0, 40.0, 110.0, 60.0]], dtype=torch.float64, requires_grad=True)
        for _ in range(
            steps
        ):  # normalized gradient descent: 1 px along −∇ per step (none if ∇ = 0)
            (g,) = torch.autograd.grad(f(p, target).sum(), p)
            with torch.no_grad():
                p -= g / g.norm() if g.norm() > 0 else 0.0
        final[f.__name__] = float(box_iou(p.detach(), target))
    fig, (ax1, ax2) = new_figure(ncols=2)
    ax1.plot(offsets, r[:, 0], label="IoU loss")
    ax1.plot(offsets, r[:, 2], label="GIoU loss")
    ax2.plot(offsets, r[:, 1], label="IoU loss")
    ax2.plot(offsets, r[:, 3], label="GIoU loss")
    for ax in (ax1, ax2):
        ax.axvspan(-20, 20, color="0.9", label="boxes overlap")
        ax.set_xlabel("horizontal offset of the 20 px prediction from the target (px)")
        ax.legend(fontsize=8)
    ax1.set(ylabel="loss", title="Loss")
    ax2.set(ylabel="gradient norm w.r.t. the box (1/px)", title="Gradient")
    holds = iou_flat and giou_moves and giou_grows
    return ClaimResult(
        measured={
            "disjoint_positions": int(disjoint.sum()),
            "iou_loss_max_grad_disjoint": float(r[disjoint, 1].max()),
            "giou_loss_min_grad_disjoint": float(r[disjoint, 3].min()),
            "giou_loss_at_offsets_20_40_60": [
                float(r[np.argmin(np.abs(offsets - v)), 2]) for v in (20, 40, 60)
            ],
            "final_iou_after_descent_from_disjoint": final,
        },
        test="a 20×20 px prediction slid horizontally past a 20×20 px target: at every disjoint position "
        "the IoU loss must be exactly 1 with a gradient of exactly 0, while the GIoU loss has a non-zero "
        "gradient and grows strictly with the distance",
        holds=holds,
        figures=[fig],
        observation=f"{steps} normalized gradient steps of 1 px from a disjoint start: IoU loss ends at IoU "
        f"{final['iou_loss']:.3f} (the box never moves), GIoU loss at IoU "
        f"{final['generalized_box_iou_loss']:.3f}.",
    )


@claim(
    "17b",
    title="GIoU equals IoU when the target encloses the prediction, so it cannot tell where inside",
    topics=("17.1", "17.9"),
    source="notes 1521",
    statement="When the target box completely contains the predicted box, IoU and GIoU are equal, so "
    "GIoU cannot distinguish the relative position of the two boxes.",
    kind="worked example",
)
def giou_inside(quick: bool, seed: int) -> ClaimResult:
    target = torch.tensor([[0.0, 0.0, 10.0, 10.0]], dtype=torch.float64)
    corners = [(0.0, 0.0), (3.0, 3.0), (6.0, 6.0), (6.0, 0.0), (1.5, 4.5)]
    inner = torch.tensor([[x, y, x + 4.0, y + 4.0] for x, y in corners], dtype=torch.float64)
    iou = box_iou(inner, target)[:, 0]
    giou = generalized_box_iou(inner, target)[:, 0]
    diou = distance_box_iou(inner, target)[:, 0]
    equal = bool(torch.equal(iou, giou))
    same_everywhere = bool((iou == iou[0]).all())
    holds = equal and same_everywhere and abs(float(iou[0]) - 0.16) < 1e-12
    fig, (ax1, ax2) = new_figure(ncols=2)
    ax1.add_patch(Rectangle((0, 0), 10, 10, fill=False, lw=2, color="k"))
    for k, (x, y) in enumerate(corners):
        ax1.add_patch(Rectangle((x, y), 4, 4, fill=False, color=f"C{k}"))
        ax1.text(x + 2, y + 2, str(k), ha="center", va="center", color=f"C{k}")
    ax1.set(
        xlim=(-1, 11),
        ylim=(-1, 11),
        aspect="equal",
        xlabel="x (px)",
        ylabel="y (px)",
        title="4×4 boxes inside a 10×10 target",
    )
    xs = np.arange(len(corners))
    ax2.bar(xs - 0.25, iou.numpy(), 0.25, label="IoU")
    ax2.bar(xs, giou.numpy(), 0.25, label="GIoU")
    ax2.bar(xs + 0.25, diou.numpy(), 0.25, label="DIoU")
    ax2.set(
        xticks=xs,
        xlabel="inner box",
        ylabel="overlap score",
        title="Same IoU = GIoU at every position",
        ylim=(0, 0.22),
    )
    ax2.legend(fontsize=8)
    return ClaimResult(
        measured={"iou": iou.tolist(), "giou": giou.tolist(), "diou": diou.tolist()},
        test="five 4×4 boxes at different places inside a 10×10 target: IoU must be 16/100 for all, and "
        "GIoU must equal IoU exactly (the enclosing box is the target, so the GIoU penalty is 0)",
        holds=holds,
        figures=[fig],
        observation="DIoU, which subtracts the normalized centre distance, does separate the positions "
        f"({float(diou.min()):.3f} to {float(diou.max()):.3f}).",
    )


def _shapes_wh(n_images: int, seed: int, first: int = 0) -> torch.Tensor:
    """Widths and heights of the boxes of shapes training images ``first … first + n_images − 1``."""
    ds = ShapesDataset(first + n_images, "train", seed=seed)
    boxes = torch.cat([ds[i][1]["boxes"] for i in range(first, first + n_images)]).double()
    return boxes[:, 2:] - boxes[:, :2]


def _best_run(
    wh: torch.Tensor, distance: str, restarts: int, seed: int
) -> tuple[torch.Tensor, float]:
    """The restart that is best by the method's own objective (mean IoU, or the sum of squares)."""
    runs = [kmeans_anchors(wh, 5, distance, seed=seed + r) for r in range(restarts)]
    if distance == "iou":
        return max(runs, key=lambda run: run[1])
    return min(runs, key=lambda run: float((torch.cdist(wh, run[0]) ** 2).min(1).values.sum()))


@claim(
    "17c",
    title="k-means anchors with the 1 − IoU distance fit the boxes better than Euclidean k-means",
    topics=("17.5",),
    source="notes 1210",
    statement="YOLOv2 chooses its prior boxes by k-means (k = 5) on the training boxes, with the "
    "distance d(box, centroid) = 1 − IoU(box, centroid) instead of the Euclidean distance.",
)
def kmeans_anchor_distance(quick: bool, seed: int) -> ClaimResult:
    n_sets, n_images, restarts = (8, 20, 20) if quick else (12, 60, 30)
    ious, eucs, sets = [], [], []
    for b in range(n_sets):
        wh = _shapes_wh(n_images, seed, first=b * n_images)
        a_iou, s_iou = _best_run(wh, "iou", restarts, seed * 1000)
        a_euc, s_euc = _best_run(wh, "euclidean", restarts, seed * 1000)
        ious.append(s_iou)
        eucs.append(s_euc)
        sets.append((wh, a_iou, a_euc))
    ious, eucs = np.array(ious), np.array(eucs)
    diff = ious - eucs
    se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    holds = bool(diff.mean() > 3 * se)
    wh, a_iou, a_euc = sets[0]
    fig, (ax1, ax2) = new_figure(ncols=2)
    ax1.scatter(wh[:, 0], wh[:, 1], s=4, color="0.6", label="shapes boxes (one set)")
    ax1.scatter(a_iou[:, 0], a_iou[:, 1], marker="x", s=60, label="1 − IoU k-means")
    ax1.scatter(a_euc[:, 0], a_euc[:, 1], marker="+", s=80, label="Euclidean k-means")
    ax1.set(xlabel="box width (px)", ylabel="box height (px)", title="Anchors (k = 5)")
    ax1.legend(fontsize=8)
    ax2.plot(ious, "o-", label="1 − IoU")
    ax2.plot(eucs, "s-", label="Euclidean")
    ax2.set(
        xlabel="box set", ylabel="mean best IoU of a box with an anchor", title="Fit per box set"
    )
    ax2.legend(fontsize=8)
    return ClaimResult(
        measured={
            "box_sets": n_sets,
            "boxes_per_set": [int(len(w)) for w, _, _ in sets],
            "restarts": restarts,
            "mean_best_iou_iou_kmeans": float(ious.mean()),
            "mean_best_iou_euclidean_kmeans": float(eucs.mean()),
            "paired_difference_mean": float(diff.mean()),
            "paired_difference_se": se,
            "sets_where_iou_wins": int((diff > 0).sum()),
        },
        test=f"box sizes from {n_sets} disjoint sets of {n_images} shapes training images, k = 5; on each "
        f"set each distance keeps the best of {restarts} k-means++ restarts by its own objective, scored "
        "by the mean over boxes of the best IoU with an anchor; holds if the 1 − IoU score exceeds the "
        "Euclidean one by more than 3 standard errors of the paired difference over the sets",
        holds=holds,
        figures=[fig],
        details=f"1 − IoU {ious.mean():.4f}, Euclidean {eucs.mean():.4f} (difference "
        f"{diff.mean():.4f} ± {se:.4f}; 1 − IoU better on {(diff > 0).sum()} of {n_sets} sets).",
        observation="The gap is small on shapes, whose sizes span only 8–64 px: Euclidean k-means "
        "spends its centroids where the squared errors are largest, on the large boxes, while 1 − IoU "
        "weighs a small box's relative error as much as a large one's.",
    )
