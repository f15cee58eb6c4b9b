"""CenterNet, "Objects as Points" (Zhou et al., 2019): an object is the peak of a class heatmap.

At output stride ``R = 4`` the network predicts a heatmap ``Ŷ ∈ [0, 1]^{C × H/R × W/R}``, a size
``(ŵ, ĥ)`` and a sub-pixel offset ``Ô`` per location. Each object of centre ``p`` puts a Gaussian
``exp(−‖x − p̃‖² / 2σ_p²)`` on its class's map at ``p̃ = ⌊p / R⌋`` (σ_p grows with the object's
size; overlapping Gaussians of one class keep the maximum). The loss::

    L_k   = −1/N Σ_xyc { (1 − Ŷ)^α log Ŷ                  if Y = 1
                       { (1 − Y)^β Ŷ^α log(1 − Ŷ)          otherwise        (α = 2, β = 4)
    L_size = 1/N Σ_k |Ŝ_p̃k − s_k|,   L_off = 1/N Σ_k |Ô_p̃k − (p_k / R − p̃_k)|
    L = L_k + λsize L_size + λoff L_off                                        (λsize = 0.1, λoff = 1)

with N the number of objects, sizes in output pixels. Detection needs no NMS: a location is a peak
when it equals the maximum of its 3 × 3 neighbourhood (a max-pool), and the ``K`` = 100 highest
peaks become boxes ``p̃ + Ô ± Ŝ / 2`` (times R).

σ_p follows CornerNet: the radius r within which a corner may move and the box keep IoU ≥ 0.7
with the object (the smallest root of its three cases), and σ = (2r + 1) / 6. Backbone: a small
residual network whose stride-16 features are upsampled twice, each time added to the lateral
features of the stage with the same stride (instead of the paper's DLA-34 / Hourglass).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int
from deepnotes.core.registry import MODELS
from deepnotes.detection.models._common import (
    check_images,
    check_in_shape,
    flatten_targets,
    select_detections,
)
from deepnotes.detection.models.backbone import ConvBNAct, TinyResNet


def gaussian_radius(height: torch.Tensor, width: torch.Tensor, min_overlap: float = 0.7) -> torch.Tensor:
    """CornerNet's radius: how far the corners may move while the box keeps IoU ≥ ``min_overlap``.

    Three cases (both corners inside, both outside, one each) each give a quadratic in r; the
    radius is the smallest of their larger roots, computed as CornerNet's reference code does
    (``(b + √(b² − 4ac)) / 2``).
    """
    h, w, o = height, width, min_overlap
    b1, c1 = h + w, w * h * (1 - o) / (1 + o)
    r1 = (b1 + (b1**2 - 4 * c1).clamp(min=0).sqrt()) / 2
    b2, c2 = 2 * (h + w), (1 - o) * w * h
    r2 = (b2 + (b2**2 - 16 * c2).clamp(min=0).sqrt()) / 2
    a3, b3, c3 = 4 * o, -2 * o * (h + w), (o - 1) * w * h
    r3 = (b3 + (b3**2 - 4 * a3 * c3).clamp(min=0).sqrt()) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def centernet_targets(boxes, labels, image, batch: int, num_classes: int, out_hw, stride: int):
    """Heatmap ``Tensor[N, C, H, W]``, each object's peak cell (flat index into ``H·W``), its
    size and offset targets (in output pixels)."""
    oh, ow = out_hw
    centre = torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1) / stride
    peak = centre.floor().clamp(min=0)
    peak = torch.stack([peak[:, 0].clamp(max=ow - 1), peak[:, 1].clamp(max=oh - 1)], 1)
    size = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1) / stride
    radius = gaussian_radius(size[:, 1], size[:, 0]).floor().clamp(min=0)
    sigma = (2 * radius + 1) / 6
    ys = torch.arange(oh, device=boxes.device, dtype=boxes.dtype).view(1, -1, 1)
    xs = torch.arange(ow, device=boxes.device, dtype=boxes.dtype).view(1, 1, -1)
    dx, dy = xs - peak[:, 0].view(-1, 1, 1), ys - peak[:, 1].view(-1, 1, 1)
    splat = torch.exp(-(dx**2 + dy**2) / (2 * sigma.view(-1, 1, 1) ** 2))  # (K, H, W)
    r = radius.view(-1, 1, 1)
    splat = splat * ((dx.abs() <= r) & (dy.abs() <= r))  # drawn in a (2r + 1)² window
    heat = boxes.new_zeros(batch * num_classes, oh * ow)
    heat = heat.scatter_reduce(0, (image * num_classes + labels).view(-1, 1).expand(-1, oh * ow),
                               splat.flatten(1), "amax")
    cell = (peak[:, 1] * ow + peak[:, 0]).long()
    return heat.view(batch, num_classes, oh, ow), cell, size, centre - peak


def centernet_heatmap_loss(logits: torch.Tensor, heat: torch.Tensor, num_objects: int,
                           alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """The focal-style heatmap loss L_k on logits (``Ŷ = σ(logits)``), divided by max(N, 1)."""
    pos = heat == 1
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = logits.sigmoid()
    pos_term = ((1 - p) ** alpha * log_p)[pos].sum()
    neg_term = ((1 - heat) ** beta * p**alpha * log_not_p)[~pos].sum()
    return -(pos_term + neg_term) / max(num_objects, 1)


@MODELS.register("centernet", task="detect", description="CenterNet: Gaussian heatmap peaks, size and offset heads",
                 zoo=dict(epochs=8, batch_size=16, lr=2e-3, schedule="cosine", data_kw={"n_val": 100}, target_map50=0.80))
class CenterNet(nn.Module):
    """CenterNet at output stride 4 on a :class:`TinyResNet` with two upsampling steps.

    ``forward(images, targets=None)``: training mode → ``{"loss_heatmap", "loss_size",
    "loss_offset"}`` (already weighted by λ); eval mode → one ``{"boxes", "scores", "labels"}``
    dict per image (the ``detections_per_img`` highest 3 × 3 peaks above ``score_thresh``).
    """

    stride = 4
    loss_names = ("loss_heatmap", "loss_offset", "loss_size")

    def __init__(
        self,
        in_shape=(3, 128, 128),
        num_classes: int = 3,
        width: int = 32,
        lambda_size: float = 0.1,
        lambda_offset: float = 1.0,
        score_thresh: float = 0.01,
        detections_per_img: int = 100,
    ):
        super().__init__()
        self.in_shape = check_in_shape(in_shape, 16)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.lambda_size = check_float("lambda_size", lambda_size, min=0.0)
        self.lambda_offset = check_float("lambda_offset", lambda_offset, min=0.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        w = check_int("width", width, min=2)
        widths = (w // 2, w, 2 * w, 4 * w)  # strides 2, 4, 8, 16
        self.backbone = TinyResNet(self.in_shape[0], widths, stem_width=w // 2)
        self.lateral = nn.ModuleList([nn.Conv2d(widths[1], w, 1), nn.Conv2d(widths[2], w, 1), nn.Conv2d(widths[3], w, 1)])
        self.smooth = nn.ModuleList([ConvBNAct(w, w), ConvBNAct(w, w)])

        def head(out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, out, 1))

        self.heatmap, self.size, self.offset = head(self.num_classes), head(2), head(2)
        nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - 0.1) / 0.1))  # σ(b) = 0.1 at the start

    def raw(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Heatmap logits ``(N, C, H/4, W/4)``, sizes and offsets ``(N, 2, H/4, W/4)``."""
        _, c4, c8, c16 = self.backbone(check_images(images, self.in_shape))
        x = self.lateral[2](c16)
        x = self.smooth[0](F.interpolate(x, scale_factor=2.0, mode="nearest") + self.lateral[1](c8))
        x = self.smooth[1](F.interpolate(x, scale_factor=2.0, mode="nearest") + self.lateral[0](c4))
        return self.heatmap(x), self.size(x), self.offset(x)

    def forward(self, images: torch.Tensor, targets=None):
        logits, size, offset = self.raw(images)
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode (call model.eval() to detect)")
            return self.loss(logits, size, offset, targets)
        return self.postprocess(logits, size, offset)

    def loss(self, logits, size, offset, targets) -> dict[str, torch.Tensor]:
        n, c, oh, ow = logits.shape
        boxes, labels, image = flatten_targets(targets, n, c, logits.device, logits.dtype)
        heat, cell, size_t, offset_t = centernet_targets(boxes, labels, image, n, c, (oh, ow), self.stride)
        k = len(boxes)
        size_p = size.flatten(2)[image, :, cell]  # (K, 2) at each object's peak
        offset_p = offset.flatten(2)[image, :, cell]
        return {
            "loss_heatmap": centernet_heatmap_loss(logits, heat, k),
            "loss_size": self.lambda_size * (size_p - size_t).abs().sum() / max(k, 1),
            "loss_offset": self.lambda_offset * (offset_p - offset_t).abs().sum() / max(k, 1),
        }

    def postprocess(self, logits, size, offset) -> list[dict[str, torch.Tensor]]:
        n, c, oh, ow = logits.shape
        heat = logits.sigmoid()
        peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)  # 3×3 maxima only
        k = min(self.detections_per_img, c * oh * ow)
        scores, index = peaks.flatten(1).topk(k, dim=1)  # (N, K) over classes × locations
        labels, cell = index // (oh * ow), index % (oh * ow)
        gather = cell.unsqueeze(1).expand(-1, 2, -1)
        wh, off = size.flatten(2).gather(2, gather), offset.flatten(2).gather(2, gather)  # (N, 2, K)
        cx = (cell % ow + off[:, 0]) * self.stride
        cy = (cell // ow + off[:, 1]) * self.stride
        bw, bh = wh[:, 0].clamp(min=0) * self.stride, wh[:, 1].clamp(min=0) * self.stride
        h, w = self.in_shape[1:]
        boxes = torch.stack([(cx - bw / 2).clamp(0, w), (cy - bh / 2).clamp(0, h),
                             (cx + bw / 2).clamp(0, w), (cy + bh / 2).clamp(0, h)], -1)
        image = torch.arange(n, device=logits.device).view(-1, 1).expand(-1, k)
        return select_detections(boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1), image.reshape(-1), n,
                                 score_thresh=self.score_thresh, nms_thresh=None,
                                 detections_per_img=self.detections_per_img)
