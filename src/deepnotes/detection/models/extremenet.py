"""ExtremeNet (Zhou, Zhuo & Krähenbühl, 2019): a box is four extreme points and a centre.

An object is described by its topmost, leftmost, bottommost and rightmost points (they lie on
the object, unlike CornerNet's corners) and the box they span, ``(l.x, t.y, r.x, b.y)``. At output
stride ``R = 4`` the network predicts, per class, four extreme-point heatmaps and one centre
heatmap, and a class-agnostic sub-pixel offset for each extreme point type (4 × 2 channels).
The loss::

    L = L_extreme + L_centre + γ L_off                                            (γ = 1)

- ``L_extreme``, ``L_centre``: CenterNet's focal-style heatmap loss
  (:func:`~.centernet.centernet_heatmap_loss`) on the four extreme heatmaps (summed) and on the
  centre heatmap; every point is splatted as a Gaussian of CornerNet's radius for the object's
  size (:func:`~.centernet.gaussian_radius`, as our CornerNet does for its corners);
- ``L_off``: smooth L1 between the predicted offsets at each extreme point's cell and
  ``p/R − ⌊p/R⌋`` (as CornerNet's offsets), summed over the four points, over the objects.

Targets (:func:`extreme_points`) come from the instance masks when the targets hold ``masks``;
an object without a mask falls back to the midpoints of its box edges.

**Centre grouping** (:func:`group_extreme_points`), the paper's decoding: the ``top_k`` 3 × 3 peaks
(a max-pool) scoring at least ``peak_thresh`` on each extreme heatmap of a class are enumerated as
all ``K⁴`` combinations ``(t, l, b, r)``; a combination is geometrically consistent when
``t_y ≤ l_y, r_y ≤ b_y`` and ``l_x ≤ t_x, b_x ≤ r_x`` (each point inside the box the four span,
which implies t above b and l left of r) — compared on the peaks' heatmap cells, so points on one
row or column pass. The centre heatmap is read at the cell of the box's geometric centre
``((l_x + r_x) / 2, (t_y + b_y) / 2)`` (offsets included); a combination with a centre score above
``center_thresh`` becomes the box ``(l_x, t_y, r_x, b_y)`` scored by the mean of its five scores.
Class-wise NMS then replaces the paper's soft-NMS, and the ``detections_per_img`` best are kept.
Not done here: the paper's edge aggregation, ghost-box suppression and its octagon masks.

Backbone: the small residual network with two upsampling steps of :class:`~.centernet.CenterNet`
(instead of an Hourglass-104).

The notes name ExtremeNet among the one-stage detectors (line 1000) and give it a heading with no
text (line 1297); what is written here follows the paper.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor
from deepnotes.core.registry import MODELS
from deepnotes.detection.models._common import (
    check_images,
    check_in_shape,
    flatten_targets,
    select_detections,
)
from deepnotes.detection.models.backbone import ConvBNAct, TinyResNet
from deepnotes.detection.models.centernet import centernet_heatmap_loss, centernet_targets

EXTREMES = ("top", "left", "bottom", "right")

#: the most combinations ``(images × classes × K⁴)`` grouped at once; more images are split in chunks
MAX_COMBINATIONS = 2**21

# the issue sets no ExtremeNet target: the table holds it to the 0.80 of the other anchor-free detectors
EXTREMENET_ZOO = {
    "epochs": 12, "batch_size": 16, "lr": 2e-3, "optimizer": "adam", "weight_decay": 0.0,
    "model_kw": {"width": 16}, "data_kw": {}, "schedule": "cosine", "target_map50": 0.80,
}


def _span_middle(line: torch.Tensor) -> torch.Tensor:
    """``(K, L)`` bool rows with at least one True → the middle of the first..last True pixels,
    in pixel-edge coordinates: ``(first + last + 1) / 2``."""
    first = line.int().argmax(1)
    last = line.shape[1] - 1 - line.flip(1).int().argmax(1)
    return (first + last + 1) / 2


def extreme_points(boxes: torch.Tensor, masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The four extreme points of each object and the centre of the box they span.

    Parameters
    ----------
    boxes : Tensor[K, 4]
        ``xyxy`` boxes in pixel-edge coordinates (a pixel ``(row i, column j)`` covers
        ``[j, j + 1) × [i, i + 1)``), used where an object has no mask.
    masks : Tensor[K, H, W], optional
        Instance masks (0/1 or bool). An empty mask, or no ``masks`` at all, falls back to the box.

    Returns
    -------
    points : Tensor[K, 4, 2]
        ``(x, y)`` of the top, left, bottom and right extreme points. From a mask: the top point
        lies on the upper edge of the mask's topmost row, at the middle of that row's pixels
        (first to last, so a flat top gives the middle of the edge); the bottom point on the lower
        edge of the bottommost row; the left point on the left edge of the leftmost column, at the
        middle of that column's pixels; the right point on the right edge of the rightmost column.
        The four then span exactly the mask's pixel-edge box. From a box: the midpoints of its
        edges ``((x1+x2)/2, y1)``, ``(x1, (y1+y2)/2)``, ``((x1+x2)/2, y2)``, ``(x2, (y1+y2)/2)``.
    centres : Tensor[K, 2]
        ``((l_x + r_x) / 2, (t_y + b_y) / 2)``, the centre of the box the four points span.
    """
    check_tensor("boxes", boxes, ndim=2, floating=True)
    if boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (K, 4), got {tuple(boxes.shape)}")
    x1, y1, x2, y2 = boxes.unbind(1)
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    points = torch.stack([torch.stack(p, 1) for p in ((mx, y1), (x1, my), (mx, y2), (x2, my))], 1)
    if masks is not None:
        check_tensor("masks", masks, ndim=3)
        if len(masks) != len(boxes):
            raise ValueError(f"masks must hold one mask per box ({len(boxes)}), got {len(masks)}")
        m = masks != 0
        k, h, w = m.shape
        rows, cols = m.any(2), m.any(1)  # (K, H): rows holding a pixel; (K, W): columns
        top = rows.int().argmax(1)
        bottom = h - 1 - rows.flip(1).int().argmax(1)
        left = cols.int().argmax(1)
        right = w - 1 - cols.flip(1).int().argmax(1)
        i = torch.arange(k, device=m.device)
        tx, bx = _span_middle(m[i, top]), _span_middle(m[i, bottom])
        ly, ry = _span_middle(m[i, :, left]), _span_middle(m[i, :, right])
        top, left, bottom, right = (v.to(boxes.dtype) for v in (top, left, bottom, right))
        tx, bx, ly, ry = (v.to(boxes.dtype) for v in (tx, bx, ly, ry))
        from_mask = torch.stack([torch.stack(p, 1) for p in ((tx, top), (left, ly), (bx, bottom + 1), (right + 1, ry))], 1)
        points = torch.where(rows.any(1).view(-1, 1, 1), from_mask, points)
    centres = torch.stack([(points[:, 1, 0] + points[:, 3, 0]) / 2, (points[:, 0, 1] + points[:, 2, 1]) / 2], 1)
    return points, centres


def _peaks(heat: torch.Tensor, offsets: torch.Tensor, top_k: int, peak_thresh: float):
    """The ``top_k`` 3 × 3 peaks of each of the four extreme heatmaps of each class.

    ``heat (N, 4, C, H, W)`` probabilities, ``offsets (N, 4, 2, H, W)`` → scores, cell x, cell y,
    refined x, refined y (output units), each ``(N, 4, C, K)``; a peak below ``peak_thresh`` (or a
    place filled in where a map has fewer than ``K`` peaks) scores −1."""
    n, e, c, oh, ow = heat.shape
    flat = heat.reshape(n, e * c, oh, ow)
    peaks = torch.where(F.max_pool2d(flat, 3, stride=1, padding=1) == flat, flat, torch.full_like(flat, -1.0))
    k = min(top_k, oh * ow)
    scores, cell = peaks.reshape(n, e, c, oh * ow).topk(k, dim=-1)
    scores = torch.where(scores >= peak_thresh, scores, torch.full_like(scores, -1.0))
    off = offsets.reshape(n, e, 1, 2, oh * ow).expand(-1, -1, c, -1, -1)
    off = off.gather(-1, cell.unsqueeze(3).expand(-1, -1, -1, 2, -1))  # (N, 4, C, 2, K)
    cx, cy = (cell % ow).to(heat.dtype), (cell // ow).to(heat.dtype)
    return scores, cx, cy, cx + off[:, :, :, 0], cy + off[:, :, :, 1]


def group_extreme_points(extreme_heat: torch.Tensor, center_heat: torch.Tensor, offsets: torch.Tensor, *,
                         stride: int = 4, top_k: int = 10, peak_thresh: float = 0.1, center_thresh: float = 0.1):
    """Centre grouping of extreme-point peaks into scored boxes (see the module docstring).

    Parameters
    ----------
    extreme_heat : Tensor[N, 4, C, H, W]
        Probabilities of the top, left, bottom and right heatmaps of each class.
    center_heat : Tensor[N, C, H, W]
        Probabilities of the centre heatmaps.
    offsets : Tensor[N, 4, 2, H, W]
        Sub-pixel ``(x, y)`` offset of each extreme point type, in output cells.

    Returns
    -------
    boxes (D, 4) in input pixels (times ``stride``, not clamped; ``x2 = max(r_x, l_x)``, ``y2 = max(b_y, t_y)``
    as points on one cell may cross after their offsets), scores (D,), labels (D,) in
    0..C-1, image index (D,) of the accepted combinations. Memory: ``N·C·K⁴`` elements per
    intermediate tensor (``K = min(top_k, H·W)``); :class:`ExtremeNet` calls it on chunks of images
    holding at most :data:`MAX_COMBINATIONS` combinations.
    """
    check_tensor("extreme_heat", extreme_heat, ndim=5, floating=True)
    check_tensor("center_heat", center_heat, ndim=4, floating=True)
    check_tensor("offsets", offsets, ndim=5, floating=True)
    n, four, c, oh, ow = extreme_heat.shape
    if four != 4 or center_heat.shape != (n, c, oh, ow) or offsets.shape != (n, 4, 2, oh, ow):
        raise ValueError(f"extreme_heat (N, 4, C, H, W), center_heat (N, C, H, W) and offsets (N, 4, 2, H, W) must agree, got "
                         f"{tuple(extreme_heat.shape)}, {tuple(center_heat.shape)} and {tuple(offsets.shape)}")
    peak_thresh = check_float("peak_thresh", peak_thresh, min=0.0, max=1.0)
    center_thresh = check_float("center_thresh", center_thresh, min=0.0, max=1.0)
    s, cx, cy, x, y = _peaks(extreme_heat, offsets, check_int("top_k", top_k, min=1), peak_thresh)
    k = s.shape[-1]

    def axis(v: torch.Tensor, e: int) -> torch.Tensor:  # extreme e of (N, 4, C, K) on axis e of (N, C, K, K, K, K)
        shape = [n, c, 1, 1, 1, 1]
        shape[2 + e] = k
        return v[:, e].reshape(shape)

    # the peaks of extreme e along axis 2 + e: (t, l, b, r) combinations broadcast to (N, C, K, K, K, K)
    st, sl, sb, sr = (axis(s, e) for e in range(4))
    txc, lxc, bxc, rxc = (axis(cx, e) for e in range(4))  # heatmap cells
    tyc, lyc, byc, ryc = (axis(cy, e) for e in range(4))
    ok = (st >= 0) & (sl >= 0) & (sb >= 0) & (sr >= 0)
    # each point inside the box (l_x, t_y, r_x, b_y), on heatmap cells: t and b between l and r …
    ok = ok & (lxc <= txc) & (txc <= rxc) & (lxc <= bxc) & (bxc <= rxc)
    ok = ok & (tyc <= lyc) & (lyc <= byc) & (tyc <= ryc) & (ryc <= byc)  # … l and r between t and b
    centre_x = ((axis(x, 1) + axis(x, 3)) / 2).floor().clamp(0, ow - 1)  # (l_x + r_x) / 2, offsets included
    centre_y = ((axis(y, 0) + axis(y, 2)) / 2).floor().clamp(0, oh - 1)  # (t_y + b_y) / 2
    cell = (centre_y * ow + centre_x).long().expand(n, c, k, k, k, k)
    centre = center_heat.reshape(n, c, oh * ow).gather(2, cell.reshape(n, c, -1)).view(cell.shape)
    ok = ok & (centre > center_thresh)
    found = ok.nonzero()  # (D, 6): image, class, index of t, l, b, r among the peaks
    img, cls, idx = found[:, 0], found[:, 1], found[:, 2:]

    def pick(v: torch.Tensor, e: int) -> torch.Tensor:  # extreme e's value of each accepted combination
        return v[img, e, cls, idx[:, e]]

    scores = (pick(s, 0) + pick(s, 1) + pick(s, 2) + pick(s, 3) + centre[ok]) / 5
    x1, y1 = pick(x, 1), pick(y, 0)  # l and r on one cell may cross after their offsets: width 0 then
    boxes = torch.stack([x1, y1, torch.maximum(pick(x, 3), x1), torch.maximum(pick(y, 2), y1)], 1) * stride
    return boxes, scores, cls, img


@MODELS.register("extremenet", task="detect", zoo=EXTREMENET_ZOO,
                 description="ExtremeNet: four extreme-point heatmaps and a centre heatmap per class, grouped by the centre")
class ExtremeNet(nn.Module):
    """ExtremeNet at output stride 4.

    ``forward(images, targets=None)``: training mode → ``{"loss_extreme", "loss_center",
    "loss_offset"}`` (weighted); targets may hold ``masks`` (``[K, H, W]`` of the input size) for
    the extreme points; eval mode → one ``{"boxes", "scores", "labels"}`` dict per image.

    Grouping enumerates ``C·K⁴`` combinations per image (``K = top_k`` ≤ 32; 3 classes and
    ``K = 10``: 30 000); images are grouped in chunks of at most :data:`MAX_COMBINATIONS`
    combinations (one image per chunk when a single image holds more).
    """

    stride = 4
    loss_names = ("loss_center", "loss_extreme", "loss_offset")

    def __init__(
        self,
        in_shape=(3, 128, 128),
        num_classes: int = 3,
        width: int = 16,
        offset_weight: float = 1.0,
        top_k: int = 10,
        peak_thresh: float = 0.1,
        center_thresh: float = 0.1,
        score_thresh: float = 0.01,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
    ):
        super().__init__()
        self.in_shape = check_in_shape(in_shape, 16)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.offset_weight = check_float("offset_weight", offset_weight, min=0.0)
        self.top_k = check_int("top_k", top_k, min=1, max=32)
        self.peak_thresh = check_float("peak_thresh", peak_thresh, min=0.0, max=1.0)
        self.center_thresh = check_float("center_thresh", center_thresh, min=0.0, max=1.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        w = check_int("width", width, min=2)
        widths = (w // 2, w, 2 * w, 4 * w)  # strides 2, 4, 8, 16
        self.backbone = TinyResNet(self.in_shape[0], widths, stem_width=w // 2)
        self.lateral = nn.ModuleList([nn.Conv2d(widths[1], w, 1), nn.Conv2d(widths[2], w, 1), nn.Conv2d(widths[3], w, 1)])
        self.smooth = nn.ModuleList([ConvBNAct(w, w), ConvBNAct(w, w)])

        def head(out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, out, 1))

        self.heatmaps = nn.ModuleDict({name: head(self.num_classes) for name in (*EXTREMES, "center")})
        self.offset = head(2 * len(EXTREMES))
        for h in self.heatmaps.values():
            nn.init.constant_(h[-1].bias, -math.log((1 - 0.1) / 0.1))  # σ(b) = 0.1 at the start

    def raw(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``extreme`` logits ``(N, 4, C, H/4, W/4)`` (top, left, bottom, right), ``center`` logits
        ``(N, C, H/4, W/4)`` and ``offset`` ``(N, 4, 2, H/4, W/4)``."""
        _, c4, c8, c16 = self.backbone(images)
        x = self.lateral[2](c16)
        x = self.smooth[0](F.interpolate(x, scale_factor=2.0, mode="nearest") + self.lateral[1](c8))
        x = self.smooth[1](F.interpolate(x, scale_factor=2.0, mode="nearest") + self.lateral[0](c4))
        offset = self.offset(x)
        return {
            "extreme": torch.stack([self.heatmaps[e](x) for e in EXTREMES], 1),
            "center": self.heatmaps["center"](x),
            "offset": offset.view(len(x), 4, 2, *offset.shape[2:]),
        }

    def forward(self, images: torch.Tensor, targets=None):
        raw = self.raw(check_images(images, self.in_shape))
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode (call model.eval() to detect)")
            return self.loss(raw, targets)
        return self.postprocess(raw)

    def _masks(self, targets, device) -> torch.Tensor:
        """Every object's mask ``(K, H, W)`` bool, in the order of ``flatten_targets``; an image
        whose target has no ``masks`` gets empty ones (its objects fall back to their boxes)."""
        h, w = self.in_shape[1:]
        out = []
        for i, t in enumerate(targets):  # the targets themselves come as one dict per image
            count = t["boxes"].reshape(-1, 4).shape[0]
            if "masks" not in t:
                out.append(torch.zeros(count, h, w, dtype=torch.bool, device=device))
                continue
            m = check_tensor(f"targets[{i}]['masks']", t["masks"], ndim=3)
            if tuple(m.shape) != (count, h, w):
                raise ValueError(f"targets[{i}]['masks'] must have shape ({count}, {h}, {w}) (one mask per box, "
                                 f"the image size), got {tuple(m.shape)}")
            out.append(m.to(device) != 0)
        return torch.cat(out) if out else torch.zeros(0, h, w, dtype=torch.bool, device=device)

    def loss(self, raw: dict[str, torch.Tensor], targets) -> dict[str, torch.Tensor]:
        n, _, c, oh, ow = raw["extreme"].shape
        boxes, labels, image = flatten_targets(targets, n, c, raw["extreme"].device, raw["extreme"].dtype)
        points, _ = extreme_points(boxes, self._masks(targets, boxes.device))
        k = len(boxes)
        spanned = torch.stack([points[:, 1, 0], points[:, 0, 1], points[:, 3, 0], points[:, 2, 1]], 1)
        half = (spanned[:, 2:] - spanned[:, :2]) / 2
        # each extreme point as a box of the object's size centred on it: CenterNet's targets put the
        # peak at the point with the object's Gaussian radius; heatmap "class" e·C + label
        p = points.transpose(0, 1).reshape(-1, 2)  # (4K, 2), extreme-major
        shifted = torch.cat([p - half.repeat(4, 1), p + half.repeat(4, 1)], 1)
        e = torch.arange(4, device=boxes.device).repeat_interleave(k)
        heat, cell, _, offset_t = centernet_targets(shifted, e * c + labels.repeat(4), image.repeat(4), n, 4 * c,
                                                    (oh, ow), self.stride)
        centre_heat = centernet_targets(spanned, labels, image, n, c, (oh, ow), self.stride)[0]
        offset_p = raw["offset"].flatten(3)[image.repeat(4), e, :, cell]  # (4K, 2)
        return {
            "loss_extreme": centernet_heatmap_loss(raw["extreme"].reshape(n, 4 * c, oh, ow), heat, k),
            "loss_center": centernet_heatmap_loss(raw["center"], centre_heat, k),
            "loss_offset": self.offset_weight * F.smooth_l1_loss(offset_p, offset_t, reduction="sum") / max(k, 1),
        }

    @torch.no_grad()
    def postprocess(self, raw: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        n, _, c, oh, ow = raw["extreme"].shape
        k = min(self.top_k, oh * ow)
        chunk = max(1, MAX_COMBINATIONS // (c * k**4))
        extreme, centre = raw["extreme"].sigmoid(), raw["center"].sigmoid()
        parts = []
        for start in range(0, n, chunk):  # bounded memory: N·C·K⁴ combinations per call
            b, s, lab, img = group_extreme_points(
                extreme[start:start + chunk], centre[start:start + chunk], raw["offset"][start:start + chunk],
                stride=self.stride, top_k=k, peak_thresh=self.peak_thresh, center_thresh=self.center_thresh)
            parts.append((b, s, lab, img + start))
        boxes, scores, labels, image = (torch.cat(v) for v in zip(*parts))
        h, w = self.in_shape[1:]
        boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                             boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], 1)
        return select_detections(boxes, scores, labels, image, n, score_thresh=self.score_thresh,
                                 nms_thresh=self.nms_thresh, detections_per_img=self.detections_per_img)
