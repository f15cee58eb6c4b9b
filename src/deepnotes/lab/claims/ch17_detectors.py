"""Chapter 17 (detectors): YOLOv1's one-object-per-cell limit."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.patches import Rectangle

from deepnotes.detection import box_iou
from deepnotes.detection.models import YOLOv1, yolov1_assign
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.viz import new_figure

_SIZE, _GRID = 128, 8  # 128 px images, 16 px cells (YOLOv1 at stride 16)


def _scene(g: torch.Generator, same_cell: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Two objects (sides 12–40 px, classes 1–3, distinct classes) whose centres share one cell
    or lie in two cells at least two cells apart."""
    cell = _SIZE / _GRID
    a = torch.randint(2, _GRID - 2, (2,), generator=g).double()
    if same_cell:
        b = a
    else:
        b = (a + torch.randint(2, 4, (2,), generator=g).double() * torch.where(a < _GRID / 2, 1.0, -1.0))
    centres = torch.stack([a, b]) * cell + torch.rand(2, 2, generator=g, dtype=torch.float64) * cell
    sides = 12 + torch.rand(2, 2, generator=g, dtype=torch.float64) * 28
    boxes = torch.cat([centres - sides / 2, centres + sides / 2], 1).clamp(0, _SIZE)
    first = int(torch.randint(1, 4, (1,), generator=g))
    labels = torch.tensor([first, first % 3 + 1])
    return boxes.float(), labels


def _ideal_output(boxes: torch.Tensor, labels: torch.Tensor, model: YOLOv1) -> torch.Tensor:
    """The grid that minimizes YOLOv1's loss on this target: each occupied cell's learned object
    exactly in box 0 with confidence 1 (its IoU) and a one-hot class; every other confidence 0."""
    s, b, c = model.grid, model.num_boxes, model.num_classes
    pred = torch.zeros(s * s, 5 * b + c)
    pred[:, 5 * b:] = 1.0 / c
    cell, chosen = yolov1_assign(boxes, torch.zeros(len(boxes), dtype=torch.int64), s, (_SIZE, _SIZE))
    cell, boxes, labels = cell[chosen], boxes[chosen], labels[chosen]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 / _SIZE * s, (boxes[:, 1] + boxes[:, 3]) / 2 / _SIZE * s
    pred[cell, 0], pred[cell, 1] = cx - cx.floor(), cy - cy.floor()
    pred[cell, 2], pred[cell, 3] = (boxes[:, 2] - boxes[:, 0]) / _SIZE, (boxes[:, 3] - boxes[:, 1]) / _SIZE
    pred[cell, 4] = 1.0
    pred[cell, 5 * b:] = torch.nn.functional.one_hot(labels - 1, c).float()
    return pred.view(1, s, s, -1)


def _recall(det: dict, boxes: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of the objects matched by a detection of their class at IoU ≥ 0.5."""
    if not len(det["boxes"]):
        return 0.0
    iou = box_iou(boxes, det["boxes"]) * (labels.view(-1, 1) == det["labels"].view(1, -1))
    return float((iou.max(1).values >= 0.5).double().mean())


@claim(
    "17y",
    title="YOLOv1 detects only one of two objects whose centres fall in the same cell",
    topics=("17.7",),
    source="notes 1168, 1200, 1269",
    statement="Each YOLOv1 grid cell has a single set of class probabilities, so a cell ends up "
    "predicting only one object; objects lying close together (in one cell) are detected poorly.",
    kind="worked example",
)
def yolov1_one_object_per_cell(quick: bool, seed: int) -> ClaimResult:
    g = torch.Generator().manual_seed(seed)
    model = YOLOv1((3, _SIZE, _SIZE), 3, width=4, score_thresh=0.5).eval()
    scenes = 20 if quick else 200
    recall, example = {}, {}
    for case in ("same cell", "different cells"):
        values = []
        for _ in range(scenes):
            boxes, labels = _scene(g, case == "same cell")
            det = model.postprocess(_ideal_output(boxes, labels, model))[0]
            values.append(_recall(det, boxes, labels))
            example.setdefault(case, (boxes, labels, det))
        recall[case] = values
    same, apart = np.mean(recall["same cell"]), np.mean(recall["different cells"])
    holds = bool(np.all(np.array(recall["same cell"]) == 0.5) and np.all(np.array(recall["different cells"]) == 1.0))

    fig, axes = new_figure(ncols=3, width=3.6, height=3.6)
    for ax, case in zip(axes[:2], ("same cell", "different cells")):
        boxes, labels, det = example[case]
        ax.set(xlim=(0, _SIZE), ylim=(_SIZE, 0), aspect="equal", title=f"centres in {case}",
               xlabel="x (px)", ylabel="y (px)")
        for k in range(_GRID + 1):
            ax.axhline(k * _SIZE / _GRID, color="0.85", lw=0.6)
            ax.axvline(k * _SIZE / _GRID, color="0.85", lw=0.6)
        for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="tab:blue", lw=2,
                                   label="ground truth" if i == 0 else None))
        for i, (x1, y1, x2, y2) in enumerate(det["boxes"].tolist()):
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="tab:red", ls="--", lw=1.5,
                                   label="detected" if i == 0 else None))
        ax.legend(fontsize=7, loc="lower right")
    axes[2].bar(["same cell", "different cells"], [same, apart], color=["tab:red", "tab:green"])
    axes[2].set(ylim=(0, 1.05), ylabel="objects detected (recall at IoU 0.5)",
                title=f"{scenes} scenes per case")
    return ClaimResult(
        measured={"recall_same_cell": round(float(same), 4), "recall_different_cells": round(float(apart), 4),
                  "scenes_per_case": scenes},
        test="decoding the output that minimizes YOLOv1's loss (S = 8, B = 2) on two-object scenes "
        "finds exactly 1 of 2 objects in every scene whose centres share a cell, and 2 of 2 in every "
        "scene whose centres are in different cells (recall at IoU 0.5, class must match)",
        holds=holds,
        figures=[fig],
        observation="The limit is in the loss, not only the output layer: the cell's single class "
        "distribution and its one responsible box give the second object no target at all, so even "
        "a perfectly trained YOLOv1 never learns it — the second box B of the cell is trained "
        "towards confidence 0.",
    )
