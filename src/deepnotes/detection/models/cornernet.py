"""CornerNet (Law & Deng, 2018): a box is a pair of corners, grouped by learnt embeddings.

Two branches, top-left and bottom-right, each predict at output stride ``R = 4`` a corner heatmap
per class, a 1-d embedding and a sub-pixel offset (six outputs in all). The loss::

    L = L_det + α L_pull + β L_push + γ L_off                  (α = β = 0.1, γ = 1)

- ``L_det``: CenterNet's focal-style heatmap loss (:func:`~.centernet.centernet_heatmap_loss`)
  on both heatmaps, each corner splatted as a Gaussian of CornerNet's radius
  (:func:`~.centernet.gaussian_radius`: the corner may move that far and the box keep IoU ≥ 0.7);
- ``L_pull = 1/N Σ_k (e_tk − ē_k)² + (e_bk − ē_k)²`` pulls the two embeddings of object ``k``
  towards their mean ``ē_k``; ``L_push = 1/(N(N − 1)) Σ_k Σ_{j≠k} max(0, Δ − |ē_k − ē_j|)``
  (Δ = 1) pushes the means of different objects of one image apart; both per image, then
  averaged over the batch's images;
- ``L_off``: smooth L1 between the predicted offsets at the corners and ``p/R − ⌊p/R⌋``.

**Corner pooling** (:func:`corner_pool`): a corner usually lies outside the object, so there is
no evidence at the pixel itself. The top-left pooling at ``(i, j)`` adds the maximum of one map
over the pixels to its right, ``max_{k ≥ j} f[i, k]``, and of another map over the pixels below,
``max_{k ≥ i} g[k, j]`` — a reverse cumulative maximum along each axis. Bottom-right looks left
and up.

Decoding: the ``top_k`` 3 × 3 peaks of each heatmap (a max-pool, as CenterNet) are paired; a
pair is a box if both corners have the same class, the bottom-right lies right of and below the
top-left and their embeddings differ by at most ``pull_thresh`` (0.5); its score is the mean of
the two corner scores. Per-class NMS then replaces the paper's soft-NMS. Backbone: the small
residual network with two upsampling steps of :class:`~.centernet.CenterNet` (instead of an
Hourglass-104).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_choice, check_float, check_int, check_tensor
from deepnotes.core.registry import MODELS
from deepnotes.detection.models._common import (
    check_images,
    check_in_shape,
    flatten_targets,
    select_detections,
)
from deepnotes.detection.models.backbone import ConvBNAct, TinyResNet
from deepnotes.detection.models.centernet import centernet_heatmap_loss, centernet_targets

# the issue sets no CornerNet target: the table holds it to the 0.80 of the other anchor-free detectors
#: recorded zoo settings: 12 epochs over 2,000 images peaked at validation mAP@0.5 0.65 at epoch 6
#: (test 0.628); fewer passes over 5,000 generated images generalize better
CORNERNET_ZOO = {
    "epochs": 7, "batch_size": 16, "lr": 2e-3, "optimizer": "adam", "weight_decay": 0.0,
    "model_kw": {"width": 16}, "data_kw": {"n_val": 100, "n_train": 5000}, "schedule": "cosine", "target_map50": 0.80,
}


def corner_pool(horizontal: torch.Tensor, vertical: torch.Tensor, corner: str = "top_left") -> torch.Tensor:
    """Corner pooling of two ``(N, C, H, W)`` maps.

    ``"top_left"``: ``out[i, j] = max_{k ≥ j} horizontal[i, k] + max_{k ≥ i} vertical[k, j]``;
    ``"bottom_right"``: ``max_{k ≤ j} horizontal[i, k] + max_{k ≤ i} vertical[k, j]``.
    """
    check_tensor("horizontal", horizontal, ndim=4, floating=True)
    check_tensor("vertical", vertical, ndim=4, floating=True)
    check_choice("corner", corner, ("top_left", "bottom_right"))
    if horizontal.shape != vertical.shape:
        raise ValueError(f"horizontal and vertical must have one shape, got {tuple(horizontal.shape)} and {tuple(vertical.shape)}")
    if corner == "top_left":  # look right and down: a cumulative max run from the far end
        h = horizontal.flip(-1).cummax(-1).values.flip(-1)
        v = vertical.flip(-2).cummax(-2).values.flip(-2)
    else:  # look left and up
        h = horizontal.cummax(-1).values
        v = vertical.cummax(-2).values
    return h + v


class CornerPoolModule(nn.Module):
    """The paper's pooling module: two 3×3 conv branches → corner pool → 3×3 conv-BN, plus a
    1×1 conv-BN shortcut, ReLU, then a 3×3 conv-BN-ReLU."""

    def __init__(self, channels: int, corner: str):
        super().__init__()
        check_choice("corner", corner, ("top_left", "bottom_right"))
        self.corner = corner

        def conv_bn_relu():
            return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())

        self.branch_h, self.branch_v = conv_bn_relu(), conv_bn_relu()
        self.after = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.shortcut = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.out = conv_bn_relu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = corner_pool(self.branch_h(x), self.branch_v(x), self.corner)
        return self.out(F.relu(self.after(pooled) + self.shortcut(x)))


def pull_push_loss(tl: torch.Tensor, br: torch.Tensor, image: torch.Tensor, batch: int,
                   margin: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_pull, L_push)`` of the corner embeddings ``tl, br (K,)`` of objects in images ``image (K,)``.

    Per image with ``N_i`` objects: pull ``Σ (e_t − ē)² + (e_b − ē)²`` over ``N_i``; push
    ``Σ_{k≠j} max(0, margin − |ē_k − ē_j|)`` over ``N_i (N_i − 1)`` (0 with one object); each then
    averaged over the ``batch`` images (images without objects count as 0).
    """
    mean = (tl + br) / 2
    count = torch.bincount(image, minlength=batch).to(tl.dtype)
    per_object = count[image]
    pull = (((tl - mean) ** 2 + (br - mean) ** 2) / per_object).sum() / batch
    pairs = (image.view(-1, 1) == image.view(1, -1)) & ~torch.eye(len(image), dtype=torch.bool, device=tl.device)
    hinge = F.relu(margin - (mean.view(-1, 1) - mean.view(1, -1)).abs())
    weight = 1 / (per_object * (per_object - 1)).clamp(min=1)
    push = (hinge * pairs * weight.view(-1, 1)).sum() / batch
    return pull, push


@MODELS.register("cornernet", task="detect", zoo=CORNERNET_ZOO,
                 description="CornerNet: corner pooling, corner heatmaps, embeddings grouping corners, offsets")
class CornerNet(nn.Module):
    """CornerNet at output stride 4.

    ``forward(images, targets=None)``: training mode → ``{"loss_heatmap", "loss_pull",
    "loss_push", "loss_offset"}`` (weighted); eval mode → one ``{"boxes", "scores", "labels"}``
    dict per image.
    """

    stride = 4
    loss_names = ("loss_heatmap", "loss_offset", "loss_pull", "loss_push")

    def __init__(
        self,
        in_shape=(3, 128, 128),
        num_classes: int = 3,
        width: int = 16,
        pull_weight: float = 0.1,
        push_weight: float = 0.1,
        offset_weight: float = 1.0,
        top_k: int = 40,
        pull_thresh: float = 0.5,
        score_thresh: float = 0.01,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
    ):
        super().__init__()
        self.in_shape = check_in_shape(in_shape, 16)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.pull_weight = check_float("pull_weight", pull_weight, min=0.0)
        self.push_weight = check_float("push_weight", push_weight, min=0.0)
        self.offset_weight = check_float("offset_weight", offset_weight, min=0.0)
        self.top_k = check_int("top_k", top_k, min=1)
        self.pull_thresh = check_float("pull_thresh", pull_thresh, min=0.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        w = check_int("width", width, min=2)
        widths = (w // 2, w, 2 * w, 4 * w)  # strides 2, 4, 8, 16
        self.backbone = TinyResNet(self.in_shape[0], widths, stem_width=w // 2)
        self.lateral = nn.ModuleList([nn.Conv2d(widths[1], w, 1), nn.Conv2d(widths[2], w, 1), nn.Conv2d(widths[3], w, 1)])
        self.smooth = nn.ModuleList([ConvBNAct(w, w), ConvBNAct(w, w)])
        self.pool = nn.ModuleDict({c: CornerPoolModule(w, c) for c in ("top_left", "bottom_right")})

        def head(out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, out, 1))

        self.heads = nn.ModuleDict({
            f"{c}_{kind}": head(n) for c in ("top_left", "bottom_right")
            for kind, n in (("heatmap", self.num_classes), ("embedding", 1), ("offset", 2))
        })
        for c in ("top_left", "bottom_right"):
            nn.init.constant_(self.heads[f"{c}_heatmap"][-1].bias, -math.log((1 - 0.1) / 0.1))

    def raw(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{corner}_heatmap`` logits ``(N, C, H/4, W/4)``, ``{corner}_embedding`` ``(N, 1, …)``,
        ``{corner}_offset`` ``(N, 2, …)`` for corner in top_left, bottom_right."""
        _, c4, c8, c16 = self.backbone(images)
        x = self.lateral[2](c16)
        x = self.smooth[0](F.interpolate(x, scale_factor=2.0, mode="nearest") + self.lateral[1](c8))
        x = self.smooth[1](F.interpolate(x, scale_factor=2.0, mode="nearest") + self.lateral[0](c4))
        out = {}
        for c in ("top_left", "bottom_right"):
            pooled = self.pool[c](x)
            for kind in ("heatmap", "embedding", "offset"):
                out[f"{c}_{kind}"] = self.heads[f"{c}_{kind}"](pooled)
        return out

    def forward(self, images: torch.Tensor, targets=None):
        raw = self.raw(check_images(images, self.in_shape))
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode (call model.eval() to detect)")
            return self.loss(raw, targets)
        return self.postprocess(raw)

    def loss(self, raw: dict[str, torch.Tensor], targets) -> dict[str, torch.Tensor]:
        n, c, oh, ow = raw["top_left_heatmap"].shape
        boxes, labels, image = flatten_targets(targets, n, c, raw["top_left_heatmap"].device, raw["top_left_heatmap"].dtype)
        k = len(boxes)
        half = (boxes[:, 2:] - boxes[:, :2]) / 2
        heat_loss, off_loss, emb = 0.0, 0.0, {}
        for corner, point in (("top_left", boxes[:, :2]), ("bottom_right", boxes[:, 2:])):
            # a box of the object's size centred on the corner: CenterNet's targets put the peak
            # at the corner with the object's Gaussian radius
            shifted = torch.cat([point - half, point + half], 1)
            heat, cell, _, offset_t = centernet_targets(shifted, labels, image, n, c, (oh, ow), self.stride)
            heat_loss = heat_loss + centernet_heatmap_loss(raw[f"{corner}_heatmap"], heat, k)
            offset_p = raw[f"{corner}_offset"].flatten(2)[image, :, cell]
            off_loss = off_loss + F.smooth_l1_loss(offset_p, offset_t, reduction="sum") / max(k, 1)
            emb[corner] = raw[f"{corner}_embedding"].flatten(2)[image, 0, cell]
        pull, push = pull_push_loss(emb["top_left"], emb["bottom_right"], image, n)
        return {
            "loss_heatmap": heat_loss,
            "loss_offset": self.offset_weight * off_loss,
            "loss_pull": self.pull_weight * pull,
            "loss_push": self.push_weight * push,
        }

    def _corners(self, raw, corner):
        """The ``top_k`` peaks of one heatmap: scores, classes, x, y (input pixels), embeddings."""
        logits = raw[f"{corner}_heatmap"]
        n, c, oh, ow = logits.shape
        heat = logits.sigmoid()
        peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
        k = min(self.top_k, c * oh * ow)
        scores, index = peaks.flatten(1).topk(k, dim=1)
        classes, cell = index // (oh * ow), index % (oh * ow)
        off = raw[f"{corner}_offset"].flatten(2).gather(2, cell.unsqueeze(1).expand(-1, 2, -1))  # (N, 2, K)
        x = (cell % ow + off[:, 0]) * self.stride
        y = (cell // ow + off[:, 1]) * self.stride
        emb = raw[f"{corner}_embedding"].flatten(2).gather(2, cell.unsqueeze(1))[:, 0]
        return scores, classes, x, y, emb

    @torch.no_grad()
    def postprocess(self, raw: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        s1, c1, x1, y1, e1 = self._corners(raw, "top_left")
        s2, c2, x2, y2, e2 = self._corners(raw, "bottom_right")
        n, k = s1.shape
        # every (top-left i, bottom-right j) pair of one image: (N, K, K)
        valid = (c1.unsqueeze(2) == c2.unsqueeze(1)) & (x2.unsqueeze(1) >= x1.unsqueeze(2))
        valid &= (y2.unsqueeze(1) >= y1.unsqueeze(2)) & ((e1.unsqueeze(2) - e2.unsqueeze(1)).abs() <= self.pull_thresh)
        scores = torch.where(valid, (s1.unsqueeze(2) + s2.unsqueeze(1)) / 2, torch.full_like(valid, -1.0, dtype=s1.dtype))
        h, w = self.in_shape[1:]
        boxes = torch.stack([x1.unsqueeze(2).expand(-1, -1, k).clamp(0, w), y1.unsqueeze(2).expand(-1, -1, k).clamp(0, h),
                             x2.unsqueeze(1).expand(-1, k, -1).clamp(0, w), y2.unsqueeze(1).expand(-1, k, -1).clamp(0, h)], -1)
        labels = c1.unsqueeze(2).expand(-1, -1, k)
        image = torch.arange(n, device=s1.device).view(-1, 1, 1).expand(-1, k, k)
        return select_detections(boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1), image.reshape(-1), n,
                                 score_thresh=self.score_thresh, nms_thresh=self.nms_thresh,
                                 detections_per_img=self.detections_per_img)
