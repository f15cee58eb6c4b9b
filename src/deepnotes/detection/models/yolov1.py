"""YOLOv1 (Redmon et al., 2016): one S × S grid, B boxes and one class distribution per cell.

Each cell predicts ``B`` boxes ``(x, y, w, h, C)`` — ``x, y`` the centre's offset inside the cell,
``w, h`` the size as a fraction of the image, ``C`` the confidence — and ``num_classes``
conditional class probabilities. The loss is the paper's sum of squared errors::

    λcoord Σ_i Σ_j 1obj_ij [(x_i − x̂_i)² + (y_i − ŷ_i)²]
  + λcoord Σ_i Σ_j 1obj_ij [(√w_i − √ŵ_i)² + (√h_i − √ĥ_i)²]
  +        Σ_i Σ_j 1obj_ij (C_i − Ĉ_i)²
  + λnoobj Σ_i Σ_j 1noobj_ij (C_i − Ĉ_i)²
  +        Σ_i 1obj_i Σ_c (p_i(c) − p̂_i(c))²

with λcoord = 5 and λnoobj = 0.5. The cell holding an object's centre is responsible for it, and of
its ``B`` boxes the one whose prediction has the highest IoU with the object (1obj_ij); every other
box is 1noobj_ij. The confidence target Ĉ of the responsible box is that IoU (not back-propagated
through). A cell predicts one class distribution, so when several centres fall in one cell the
largest object is its target and the others are not learned (the model's known limit). The sum
is divided by the batch size.

Departures from the paper, to train on a CPU in minutes: a small residual backbone with a
convolutional head instead of 24 conv layers and two fully connected ones, and sigmoid / softmax
outputs (so ``x, y, w, h, C`` lie in (0, 1) and the square roots are defined) instead of a linear
last layer. Images must have the ``in_shape`` given at construction; ``S = H / 16``.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.iou import box_iou_paired
from deepnotes.detection.models._common import check_images, flatten_targets, select_detections
from deepnotes.detection.models.backbone import ConvBNAct, TinyResNet


def yolov1_assign(boxes: torch.Tensor, image: torch.Tensor, grid: int, image_hw) -> tuple[torch.Tensor, torch.Tensor]:
    """The responsible cell of each box and which boxes a cell learns.

    Returns ``cell (K,)`` — the flat index ``image·S² + row·S + col`` of the cell holding each box's
    centre — and ``chosen (K,)`` bool: True for the one box each occupied cell learns (the largest;
    on equal areas the first).
    """
    h, w = image_hw
    cx = ((boxes[:, 0] + boxes[:, 2]) / 2 / w * grid).clamp(0, grid - 1e-4)
    cy = ((boxes[:, 1] + boxes[:, 3]) / 2 / h * grid).clamp(0, grid - 1e-4)
    cell = image * grid * grid + cy.long() * grid + cx.long()
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = torch.argsort(-area, stable=True)  # largest first, ties by position
    _, inverse = torch.unique(cell[order], return_inverse=True)
    first = torch.full((int(inverse.max()) + 1 if len(inverse) else 0,), len(order), dtype=torch.int64, device=boxes.device)
    first = first.scatter_reduce(0, inverse, torch.arange(len(order), device=boxes.device), "amin")
    chosen = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    chosen[order[first]] = True
    return cell, chosen


def _cell_boxes(pred_boxes: torch.Tensor, cell: torch.Tensor, grid: int, image_hw) -> torch.Tensor:
    """Predicted ``(…, B, 4)`` (x, y, w, h) of the cells ``cell`` → xyxy pixels ``(…, B, 4)``."""
    h, w = image_hw
    col = (cell % grid).to(pred_boxes.dtype).unsqueeze(-1)
    row = (cell // grid % grid).to(pred_boxes.dtype).unsqueeze(-1)
    cx = (col + pred_boxes[..., 0]) / grid * w
    cy = (row + pred_boxes[..., 1]) / grid * h
    bw, bh = pred_boxes[..., 2] * w, pred_boxes[..., 3] * h
    return torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)


def yolov1_loss(
    pred: torch.Tensor,
    targets,
    num_boxes: int = 2,
    image_hw=None,
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
) -> dict[str, torch.Tensor]:
    """The YOLOv1 loss (module docstring), as five named terms, each summed and divided by N.

    Parameters
    ----------
    pred : Tensor[N, S, S, 5B + C]
        Per cell: ``B`` groups ``(x, y, w, h, C)`` then ``C`` class probabilities, all already in
        [0, 1] (``x, y`` in cell units, ``w, h`` as fractions of the image).
    targets : list of N dicts with ``boxes`` (xyxy pixels) and ``labels`` (1..C)
    image_hw : (H, W), default ``(S, S)``
    """
    check_type("pred", pred, torch.Tensor)
    if pred.dim() != 4 or pred.shape[1] != pred.shape[2]:
        raise ValueError(f"pred must be (N, S, S, 5B + C), got {tuple(pred.shape)}")
    n, s = pred.shape[0], pred.shape[1]
    b = check_int("num_boxes", num_boxes, min=1)
    c = pred.shape[3] - 5 * b
    if c < 1:
        raise ValueError(f"pred's last dimension {pred.shape[3]} leaves no class scores for {b} boxes")
    image_hw = tuple(image_hw) if image_hw is not None else (s, s)
    gt, labels, image = flatten_targets(targets, n, c, pred.device, pred.dtype)
    cell, chosen = yolov1_assign(gt, image, s, image_hw)
    gt, labels, cell = gt[chosen], labels[chosen], cell[chosen]

    flat = pred.reshape(n * s * s, 5 * b + c)
    boxes = flat[:, : 5 * b].reshape(-1, b, 5)
    mine = boxes[cell]  # (M, B, 5): the B predictions of each object's cell
    pred_xyxy = _cell_boxes(mine[..., :4], cell, s, image_hw)
    ious = box_iou_paired(pred_xyxy.detach().reshape(-1, 4), gt.repeat_interleave(b, 0)).reshape(-1, b)
    best = ious.argmax(1)  # the responsible box: highest IoU (the first on ties)
    resp = mine[torch.arange(len(cell), device=pred.device), best]  # (M, 5)

    h, w = image_hw
    gx = ((gt[:, 0] + gt[:, 2]) / 2 / w * s)
    gy = ((gt[:, 1] + gt[:, 3]) / 2 / h * s)
    gx, gy = gx - (cell % s).to(gx.dtype), gy - (cell // s % s).to(gy.dtype)  # offsets inside the cell
    gw, gh = (gt[:, 2] - gt[:, 0]) / w, (gt[:, 3] - gt[:, 1]) / h

    obj = torch.zeros(n * s * s, b, dtype=torch.bool, device=pred.device)
    obj[cell, best] = True
    conf = boxes[..., 4]
    onehot = torch.nn.functional.one_hot(labels, c).to(pred.dtype)
    return {
        "loss_xy": lambda_coord * ((resp[:, 0] - gx) ** 2 + (resp[:, 1] - gy) ** 2).sum() / n,
        "loss_wh": lambda_coord * ((resp[:, 2].sqrt() - gw.sqrt()) ** 2 + (resp[:, 3].sqrt() - gh.sqrt()) ** 2).sum() / n,
        "loss_obj": ((resp[:, 4] - ious.max(1).values) ** 2).sum() / n,
        "loss_noobj": lambda_noobj * (conf[~obj] ** 2).sum() / n,
        "loss_class": ((flat[cell, 5 * b:] - onehot) ** 2).sum() / n,
    }


@MODELS.register("yolov1", task="detect", description="YOLOv1: S×S grid, B boxes per cell, sum-squared loss",
                 zoo=dict(epochs=10, batch_size=16, lr=2e-3, schedule="cosine", target_map50=0.50))
class YOLOv1(nn.Module):
    """YOLOv1 on a :class:`TinyResNet` (stride 16).

    ``forward(images, targets=None)``: in training mode returns the loss terms
    (``loss_xy, loss_wh, loss_obj, loss_noobj, loss_class``); in eval mode a list of
    ``{"boxes" (xyxy pixels), "scores", "labels" (1..C)}`` per image, scores being
    ``C · p(class)`` after per-class NMS.
    """

    def __init__(
        self,
        in_shape=(3, 128, 128),
        num_classes: int = 3,
        num_boxes: int = 2,
        width: int = 32,
        lambda_coord: float = 5.0,
        lambda_noobj: float = 0.5,
        score_thresh: float = 0.01,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
    ):
        super().__init__()
        check_type("in_shape", in_shape, (tuple, list))
        if len(in_shape) != 3 or in_shape[1] % 16 or in_shape[2] != in_shape[1]:
            raise ValueError(f"in_shape must be (C, H, H) with H a multiple of 16, got {tuple(in_shape)}")
        self.in_shape = tuple(int(v) for v in in_shape)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.num_boxes = check_int("num_boxes", num_boxes, min=1)
        self.grid = self.in_shape[1] // 16
        self.lambda_coord = check_float("lambda_coord", lambda_coord, min=0.0)
        self.lambda_noobj = check_float("lambda_noobj", lambda_noobj, min=0.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        w = check_int("width", width, min=1)
        self.backbone = TinyResNet(self.in_shape[0], (w // 2, w, 2 * w, 4 * w), stem_width=w // 2)
        self.head = nn.Sequential(
            ConvBNAct(4 * w, 4 * w), nn.Conv2d(4 * w, 5 * self.num_boxes + self.num_classes, 1)
        )

    loss_names = ("loss_xy", "loss_wh", "loss_obj", "loss_noobj", "loss_class")

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        """The activated grid ``Tensor[N, S, S, 5B + C]`` (sigmoid boxes, softmax classes)."""
        out = self.head(self.backbone(check_images(images, self.in_shape))[-1]).permute(0, 2, 3, 1)
        b = self.num_boxes
        return torch.cat([out[..., : 5 * b].sigmoid(), out[..., 5 * b:].softmax(-1)], -1)

    def forward(self, images: torch.Tensor, targets=None):
        pred = self.raw(images)
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode (call model.eval() to detect)")
            return yolov1_loss(pred, targets, self.num_boxes, self.in_shape[1:], self.lambda_coord, self.lambda_noobj)
        return self.postprocess(pred)

    def postprocess(self, pred: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        n, s, b = pred.shape[0], self.grid, self.num_boxes
        flat = pred.reshape(n * s * s, -1)
        cell = torch.arange(n * s * s, device=pred.device)
        boxes = _cell_boxes(flat[:, : 5 * b].reshape(-1, b, 5)[..., :4], cell, s, self.in_shape[1:])
        prob, label = flat[:, 5 * b:].max(1)
        scores = flat[:, 4 : 5 * b : 5] * prob.unsqueeze(1)  # (cells, B): C · p(class)
        h, w = self.in_shape[1:]
        boxes = torch.stack([boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h),
                             boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], -1)
        image = (cell // (s * s)).unsqueeze(1).expand(-1, b)
        return select_detections(boxes.reshape(-1, 4), scores.reshape(-1), label.unsqueeze(1).expand(-1, b).reshape(-1),
                                 image.reshape(-1), n, score_thresh=self.score_thresh, nms_thresh=self.nms_thresh,
                                 detections_per_img=self.detections_per_img)
