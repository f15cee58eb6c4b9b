"""The anchor-based YOLO loss of v2 and v3 (and its v4 switches), on one or several grids.

Every level ``l`` predicts, per cell ``(row, col)`` and anchor ``a`` of size ``(p_w, p_h)``, the raw
``(t_x, t_y, t_w, t_h, t_o, t_c…)``; the box is (YOLOv2's sigmoid-bounded offsets)::

    b_x = (σ(t_x) + col) · stride     b_w = p_w · exp(t_w)
    b_y = (σ(t_y) + row) · stride     b_h = p_h · exp(t_h)

Assignment (:func:`yolo_assign`): each object goes to the one anchor, over all levels, whose
``(w, h)`` has the highest IoU with its own (both placed at a common corner), at the cell of its
centre on that anchor's level. Two objects given the same anchor of the same cell both train that
prediction (neither is dropped). The terms, each summed and divided by the batch size N::

    loss_xy    = Σ_pos (σ(t_x) − g_x)² + (σ(t_y) − g_y)²        g_x = c_x / stride − col
    loss_wh    = Σ_pos (t_w − log(g_w / p_w))² + (t_h − log(g_h / p_h))²
    loss_obj   = Σ_pos BCE(t_o, 1) + Σ_neg BCE(t_o, 0)
    loss_class = Σ_pos Σ_c BCE(t_c, y_c)        (YOLOv3: independent logistic classifiers)
               = Σ_pos CE(softmax(t), y)          (YOLOv2)

A negative is every unassigned prediction whose decoded box overlaps no object of its image by
more than ``ignore_thresh`` (YOLOv3's rule: a good box that is not the chosen one is not pushed
down). With ``box_loss="ciou"`` (YOLOv4) ``loss_xy + loss_wh`` become ``loss_box = Σ_pos 1 − CIoU``
of the decoded box; ``label_smoothing = ε`` turns the binary class targets into ``ε/2, 1 − ε/2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepnotes.core.checks import check_choice, check_float
from deepnotes.detection.anchors import wh_iou
from deepnotes.detection.iou import box_iou
from deepnotes.detection.losses import complete_box_iou_loss
from deepnotes.detection.models.yolo_parts import smooth_labels

MAX_LOG_SCALE = 8.0  # exp(8) ≈ 3000 × the anchor: bounds t_w, t_h before exp so a wild output cannot overflow


def decode(raw: torch.Tensor, anchors: torch.Tensor, stride: float) -> torch.Tensor:
    """Raw ``(N, A, H, W, ≥4)`` of one level → xyxy pixel boxes ``(N, A, H, W, 4)`` (differentiable)."""
    _, _, h, w, _ = raw.shape
    rows = torch.arange(h, device=raw.device, dtype=raw.dtype).view(1, 1, h, 1)
    cols = torch.arange(w, device=raw.device, dtype=raw.dtype).view(1, 1, 1, w)
    cx = (raw[..., 0].sigmoid() + cols) * stride
    cy = (raw[..., 1].sigmoid() + rows) * stride
    anchors = anchors.to(raw.dtype)
    bw = anchors[:, 0].view(1, -1, 1, 1) * raw[..., 2].clamp(max=MAX_LOG_SCALE).exp()
    bh = anchors[:, 1].view(1, -1, 1, 1) * raw[..., 3].clamp(max=MAX_LOG_SCALE).exp()
    return torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)


def yolo_assign(boxes: torch.Tensor, anchors: list[torch.Tensor], strides, grids) -> tuple[torch.Tensor, ...]:
    """The responsible ``(level, anchor, row, col)`` of each box ``(K, 4)`` xyxy pixels.

    ``anchors``: one ``(A_l, 2)`` tensor of ``(w, h)`` per level; ``strides``: pixels per cell of
    each level; ``grids``: each level's ``(H_l, W_l)``. Ties between anchors go to the first
    (smallest level, then lowest index); a centre outside the image is clamped to the border cell.
    """
    all_anchors = torch.cat([a.to(boxes.dtype) for a in anchors])
    level_of = torch.cat([torch.full((len(a),), i, dtype=torch.int64) for i, a in enumerate(anchors)]).to(boxes.device)
    index_in = torch.cat([torch.arange(len(a)) for a in anchors]).to(boxes.device)
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-6)
    best = wh_iou(wh, all_anchors.to(boxes.device)).argmax(1) if len(boxes) else torch.zeros(0, dtype=torch.int64, device=boxes.device)
    level, anchor = level_of[best], index_in[best]
    stride = torch.as_tensor([float(s) for s in strides], dtype=boxes.dtype, device=boxes.device)[level]
    gh = torch.as_tensor([g[0] for g in grids], device=boxes.device)[level]
    gw = torch.as_tensor([g[1] for g in grids], device=boxes.device)[level]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 / stride, (boxes[:, 1] + boxes[:, 3]) / 2 / stride
    col = torch.minimum(cx.floor().clamp(min=0).long(), gw - 1)
    row = torch.minimum(cy.floor().clamp(min=0).long(), gh - 1)
    return level, anchor, row, col


def yolo_loss(
    preds: list[torch.Tensor],
    anchors: list[torch.Tensor],
    strides,
    gt: torch.Tensor,
    labels: torch.Tensor,
    image: torch.Tensor,
    *,
    class_loss: str = "bce",
    box_loss: str = "mse",
    ignore_thresh: float = 0.5,
    label_smoothing: float = 0.0,
) -> dict[str, torch.Tensor]:
    """The loss terms (module docstring) for raw ``preds`` (one ``(N, A_l, H_l, W_l, 5 + C)`` per
    level) and flattened targets (``gt (K, 4)`` xyxy pixels, ``labels (K,)`` in 0..C-1, ``image (K,)``)."""
    check_choice("class_loss", class_loss, ("bce", "softmax"))
    check_choice("box_loss", box_loss, ("mse", "ciou"))
    ignore_thresh = check_float("ignore_thresh", ignore_thresh, min=0.0, max=1.0)
    n, num_classes = preds[0].shape[0], preds[0].shape[-1] - 5
    grids = [tuple(p.shape[2:4]) for p in preds]
    level, anchor, row, col = yolo_assign(gt, anchors, strides, grids)
    zero = preds[0].sum() * 0
    terms = {k: zero for k in (("loss_box",) if box_loss == "ciou" else ("loss_xy", "loss_wh"))}
    terms.update(loss_obj=zero, loss_class=zero)
    for lvl, (raw, anc, stride) in enumerate(zip(preds, anchors, strides)):
        anc = anc.to(raw)
        mine = (level == lvl).nonzero().flatten()
        i, a, r, c = image[mine], anchor[mine], row[mine], col[mine]
        g, lab = gt[mine], labels[mine]
        p = raw[i, a, r, c]  # (K_l, 5 + C): the responsible predictions
        boxes = decode(raw, anc, stride)  # (N, A, H, W, 4)
        if box_loss == "ciou":
            terms["loss_box"] = terms["loss_box"] + complete_box_iou_loss(boxes[i, a, r, c], g, reduction="sum")
        else:
            gxy = torch.stack([(g[:, 0] + g[:, 2]) / 2 / stride - c, (g[:, 1] + g[:, 3]) / 2 / stride - r], 1)
            gwh = (g[:, 2:] - g[:, :2]).clamp(min=1e-6) / anc[a]
            terms["loss_xy"] = terms["loss_xy"] + ((p[:, :2].sigmoid() - gxy) ** 2).sum()
            terms["loss_wh"] = terms["loss_wh"] + ((p[:, 2:4] - gwh.log()) ** 2).sum()
        # objectness: positives, and negatives that do not already overlap an object well
        target = torch.zeros(raw.shape[:4], dtype=raw.dtype, device=raw.device)
        target[i, a, r, c] = 1.0
        with torch.no_grad():
            flat = boxes.detach().reshape(n, -1, 4)
            best = torch.zeros(flat.shape[:2], dtype=raw.dtype, device=raw.device)
            if len(gt):
                iou = box_iou(flat.reshape(-1, 4), gt).view(n, -1, len(gt))
                iou = iou * (image.view(1, 1, -1) == torch.arange(n, device=raw.device).view(-1, 1, 1))
                best = iou.amax(2)
        counted = (target == 1) | (best.view(target.shape) <= ignore_thresh)
        bce = F.binary_cross_entropy_with_logits(raw[..., 4], target, reduction="none")
        terms["loss_obj"] = terms["loss_obj"] + (bce * counted).sum()
        if class_loss == "softmax":
            terms["loss_class"] = terms["loss_class"] + F.cross_entropy(p[:, 5:], lab, reduction="sum")
        else:
            y = smooth_labels(F.one_hot(lab, num_classes).to(raw.dtype), label_smoothing)
            terms["loss_class"] = terms["loss_class"] + F.binary_cross_entropy_with_logits(p[:, 5:], y, reduction="sum")
    return {k: v / n for k, v in terms.items()}
