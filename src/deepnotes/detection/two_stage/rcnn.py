"""R-CNN, "Rich feature hierarchies for accurate object detection" (Girshick et al., 2014).

Test time, per image:

1. Selective Search proposals (:class:`SelectiveSearchProposals`, at most ``max_proposals``);
2. each proposal, enlarged so that ``context`` of the ``crop_size`` pixels are surroundings, is
   warped to ``crop_size × crop_size`` (:func:`deepnotes.detection.roi_warp`, anisotropically, as
   the paper warps) and passed through a small CNN on its own — one CNN pass *per region*;
3. one linear SVM per class scores the ``fc7`` features: ``s_c = w_c·φ_fc7 + b_c``;
4. a class-specific linear regressor on the ``pool5`` features predicts the box correction
   ``t = ((g_x − p_x)/p_w, (g_y − p_y)/p_h, log(g_w/p_w), log(g_h/p_h))``;
5. per-class NMS (IoU 0.3, as in the paper). Scores are reported as ``sigmoid(s_c)`` — a monotone
   map, so rankings and mAP are those of the SVM margins.

Training in the paper's stages, inside the ordinary detect-task loop: the model counts its own
training steps (the buffer ``steps_done``, saved in checkpoints, so a resumed run continues in
the right stage).

- **Stage 1, steps ``[0, finetune_steps)``: fine-tune the CNN** with a softmax over ``C + 1``
  classes on warped proposals: IoU ≥ 0.5 with an object → its class, else background; per image
  ``batch_size_per_image`` RoIs with at most ``positive_fraction`` (25 %) foreground (the paper's
  32 foreground + 96 background windows per batch of 128). Loss ``loss_cls`` (log loss).
- **Stage 2, from step ``finetune_steps`` on: SVMs and box regressors** on the *frozen* CNN
  (eval mode, no gradient). SVM of class ``c``: positives are the ground-truth boxes of class ``c``
  only, negatives the proposals with IoU < ``svm_neg_iou`` (0.3) with every object of class
  ``c``, the rest ignored; hinge loss with hard-negative mining
  (:func:`mine_hard_negatives`, :func:`svm_hinge_loss`) plus ``½·svm_weight_decay·‖W‖²``.
  Regressors: proposals with IoU ≥ ``reg_iou_thresh`` (0.6) with an object, least squares on the
  true class's output (targets ``t`` scaled by ``(10, 10, 5, 5)``, torchvision's Fast R-CNN
  coder, so that they are of order 1 for a mini-batch solver) plus the ridge term ``½·reg_weight_decay·‖W‖²``. Each SVM starts from the
  fine-tuned softmax (:meth:`StagedRegionDetector.warm_start_svms`). The SVMs and the regressors share no parameters and see the same frozen features, so training them in the same
  steps is the same as training them one after the other.

The paper mines hard negatives over the whole training set with a feature cache on disk; here
the mining runs within each mini-batch's proposals (bounded memory): the ``hard_negatives``
highest-scoring negatives per class that still violate the margin (``s > −1``) join the
positives in the hinge loss. Until stage 2 starts, detections (e.g. the per-epoch validation)
use the fine-tuning softmax without box regression, so the curve is meaningful from epoch 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.coder import BoxCoder
from deepnotes.detection.iou import box_iou
from deepnotes.detection.models._common import check_images, flatten_targets
from deepnotes.detection.models.backbone import ConvBNAct
from deepnotes.detection.roi_warp import roi_warp
from deepnotes.detection.two_stage.region_proposals import (
    SelectiveSearchProposals,
    label_proposals,
    per_class_detections,
    sample_rois,
)


def mine_hard_negatives(scores: torch.Tensor, targets: torch.Tensor, num_hard: int) -> torch.Tensor:
    """Which rows each class's SVM learns from: ``Tensor[R, C]`` bool.

    ``scores`` Tensor[R, C] SVM margins, ``targets`` Tensor[R, C] with +1 (positive), −1 (negative)
    or 0 (ignored). Every positive is kept; of the negatives of each class, the ``num_hard``
    highest-scoring among those inside the margin (``s > −1``, a non-zero hinge) are kept.
    """
    check_tensor("scores", scores, ndim=2, floating=True)
    check_tensor("targets", targets, ndim=2)
    if targets.shape != scores.shape:
        raise ValueError(f"targets must have the shape of scores {tuple(scores.shape)}, got {tuple(targets.shape)}")
    num_hard = check_int("num_hard", num_hard, min=0)
    scores = scores.detach()
    candidate = (targets < 0) & (scores > -1.0)
    ranked = torch.where(candidate, scores, torch.full_like(scores, -torch.inf))
    hard = torch.zeros_like(candidate)
    k = min(num_hard, len(scores))
    if k:
        hard.scatter_(0, ranked.topk(k, dim=0).indices, True)
    return (targets > 0) | (hard & candidate)


def svm_hinge_loss(scores: torch.Tensor, targets: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """One-vs-rest hinge loss: per class the mean of ``max(0, 1 − y·s)`` over its kept rows, then
    the mean over classes (a class with no kept row contributes 0)."""
    keep = keep.to(scores.dtype)
    hinge = (1.0 - targets.to(scores.dtype) * scores).clamp(min=0.0) * keep
    return (hinge.sum(0) / keep.sum(0).clamp(min=1.0)).mean()


def svm_targets(rows: torch.Tensor, is_gt: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor,
                num_classes: int, neg_iou: float) -> torch.Tensor:
    """SVM targets ``Tensor[R, C]`` of one image's ``rows`` (proposals and its objects):
    +1 for an object's own box in its class's column, −1 where the IoU with every object of that
    class is below ``neg_iou``, 0 (ignored) otherwise."""
    if gt_boxes.numel() == 0:
        return -torch.ones(len(rows), num_classes, dtype=torch.int64, device=rows.device)
    iou = box_iou(rows, gt_boxes.to(rows.dtype))  # (R, G)
    own = F.one_hot(gt_labels - 1, num_classes).to(iou.dtype)  # (G, C)
    best = (iou.unsqueeze(2) * own.unsqueeze(0)).amax(1)  # (R, C): best IoU with class c's objects
    t = torch.where(best < neg_iou, -1, 0)
    gt_class = torch.zeros_like(t, dtype=torch.bool)
    gt_class[is_gt] = F.one_hot(gt_labels - 1, num_classes).bool()
    return torch.where(gt_class, 1, t)


class StagedRegionDetector(nn.Module):
    """R-CNN's staged head over any region features (R-CNN: warped crops; SPPNet: SPP pooling).

    A subclass builds ``self.features`` and implements :meth:`pool5` (``images``, boxes per image
    → ``Tensor[R, pool5_dim]``); this class adds fc6/fc7, the fine-tuning softmax, the SVMs, the
    box regressors and the staged training.
    """

    loss_names = ("loss_box", "loss_cls", "loss_svm")

    def __init__(self, in_shape, num_classes: int, pool5_dim: int, representation_size: int = 128,
                 finetune_steps: int = 300, proposal_mode: str = "single", max_proposals: int = 200,
                 batch_size_per_image: int = 32, positive_fraction: float = 0.25, fg_iou_thresh: float = 0.5,
                 svm_neg_iou: float = 0.3, hard_negatives: int = 64, svm_weight_decay: float = 1e-3,
                 reg_iou_thresh: float = 0.6, reg_weight_decay: float = 1e-3, score_thresh: float = 0.05,
                 nms_thresh: float = 0.3, detections_per_img: int = 100):
        super().__init__()
        self.in_shape = tuple(int(v) for v in in_shape)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        rep = check_int("representation_size", representation_size, min=1)
        self.finetune_steps = check_int("finetune_steps", finetune_steps, min=0)
        self.proposer = SelectiveSearchProposals(proposal_mode, max_proposals)
        self.batch_size_per_image = check_int("batch_size_per_image", batch_size_per_image, min=1)
        self.positive_fraction = check_float("positive_fraction", positive_fraction, min=0.0, max=1.0)
        self.fg_iou_thresh = check_float("fg_iou_thresh", fg_iou_thresh, min=0.0, max=1.0)
        self.svm_neg_iou = check_float("svm_neg_iou", svm_neg_iou, min=0.0, max=1.0)
        self.hard_negatives = check_int("hard_negatives", hard_negatives, min=0)
        self.svm_weight_decay = check_float("svm_weight_decay", svm_weight_decay, min=0.0)
        self.reg_iou_thresh = check_float("reg_iou_thresh", reg_iou_thresh, min=0.0, max=1.0)
        self.reg_weight_decay = check_float("reg_weight_decay", reg_weight_decay, min=0.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        self.fc = nn.Sequential(nn.Linear(pool5_dim, rep), nn.ReLU(), nn.Linear(rep, rep), nn.ReLU())  # fc6, fc7
        self.cls_score = nn.Linear(rep, self.num_classes + 1)  # the fine-tuning softmax (0 = background)
        self.svm = nn.Linear(rep, self.num_classes)  # one linear SVM per class
        self.bbox_pred = nn.Linear(pool5_dim, 4 * self.num_classes)  # class-specific regressors on pool5
        nn.init.zeros_(self.bbox_pred.weight)
        nn.init.zeros_(self.bbox_pred.bias)
        self.box_coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))  # the paper's t, scaled to order 1
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.int64))

    @property
    def stage(self) -> str:
        """``"finetune"`` for the first ``finetune_steps`` training steps, then ``"svm"``."""
        return "finetune" if int(self.steps_done) < self.finetune_steps else "svm"

    def pool5(self, images: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def warm_start_svms(self) -> None:
        """Start each SVM from the fine-tuned softmax's log-odds of its class against background,
        ``w_c = u_c − u_0`` (the paper solves the SVMs from scratch with a batch solver; a
        mini-batch solver converges in far fewer steps from here)."""
        self.svm.weight.copy_(self.cls_score.weight[1:] - self.cls_score.weight[:1])
        self.svm.bias.copy_(self.cls_score.bias[1:] - self.cls_score.bias[:1])

    def region_features(self, images, boxes):
        """``(pool5, fc7)`` features of every box (``boxes``: one Tensor[K_i, 4] per image)."""
        p5 = self.pool5(images, boxes)
        return p5, self.fc(p5)

    def forward(self, images: torch.Tensor, targets=None):
        check_images(images, self.in_shape)
        proposals = self.proposer(images, cache=self.training)
        if not self.training:
            return self.detect(images, proposals)
        if targets is None:
            raise ValueError("targets are required in training mode (call model.eval() to detect)")
        check_type("targets", targets, (list, tuple))
        flatten_targets(targets, len(images), self.num_classes, images.device)  # validates them
        gts = [(t["boxes"].reshape(-1, 4).to(images), t["labels"].reshape(-1).to(images.device, torch.int64))
               for t in targets]
        stage = self.stage
        with torch.no_grad():
            if int(self.steps_done) == self.finetune_steps:
                self.warm_start_svms()
            self.steps_done += 1
        if stage == "finetune":
            return self._finetune_loss(images, proposals, gts)
        return self._svm_and_regression_loss(images, proposals, gts)

    def _finetune_loss(self, images, proposals, gts):
        rows, labels = [], []
        for props, (boxes, lab) in zip(proposals, gts):
            cand = torch.cat([props.to(boxes), boxes])
            lab_i, _, _ = label_proposals(cand, boxes, lab, self.fg_iou_thresh, 0.0, self.fg_iou_thresh)
            rows.append(cand)
            labels.append(lab_i)
        picked = sample_rois(labels, self.batch_size_per_image, self.positive_fraction)
        rows = [r[i] for r, i in zip(rows, picked)]
        target = torch.cat([lab[i] for lab, i in zip(labels, picked)])
        _, fc7 = self.region_features(images, rows)
        loss = F.cross_entropy(self.cls_score(fc7), target) if len(target) else fc7.sum() * 0.0
        zero = loss.new_zeros(())
        return {"loss_cls": loss, "loss_svm": zero, "loss_box": zero}

    def _svm_and_regression_loss(self, images, proposals, gts):
        rows, svm_t, reg_cls, reg_t = [], [], [], []
        for props, (boxes, lab) in zip(proposals, gts):
            props = props.to(boxes)
            cand = torch.cat([props, boxes])
            is_gt = torch.arange(len(cand), device=cand.device) >= len(props)
            svm_t.append(svm_targets(cand, is_gt, boxes, lab, self.num_classes, self.svm_neg_iou))
            lab_i, matched, iou = label_proposals(cand, boxes, lab, self.reg_iou_thresh, 0.0, 0.0)
            fg = lab_i > 0
            reg_cls.append(torch.where(fg, lab_i - 1, -1))
            reg_t.append(self.box_coder.encode(matched[fg], cand[fg]) if fg.any() else cand.new_zeros(0, 4))
            rows.append(cand)
        was_training = self.training
        self.eval()  # the CNN is frozen: batch norm uses its running statistics
        with torch.no_grad():
            p5, fc7 = self.region_features(images, rows)
        self.train(was_training)
        scores = self.svm(fc7)
        targets = torch.cat(svm_t)
        keep = mine_hard_negatives(scores, targets, self.hard_negatives)
        loss_svm = svm_hinge_loss(scores, targets, keep) + 0.5 * self.svm_weight_decay * self.svm.weight.pow(2).sum()
        cls = torch.cat(reg_cls)
        fg = cls >= 0
        ridge = 0.5 * self.reg_weight_decay * self.bbox_pred.weight.pow(2).sum()
        if fg.any():
            pred = self.bbox_pred(p5[fg]).view(-1, self.num_classes, 4)
            pred = pred[torch.arange(len(pred), device=pred.device), cls[fg]]
            loss_box = (pred - torch.cat(reg_t)).pow(2).sum(1).mean() + ridge
        else:
            loss_box = ridge
        return {"loss_cls": loss_svm.new_zeros(()), "loss_svm": loss_svm, "loss_box": loss_box}

    @torch.no_grad()
    def detect(self, images: torch.Tensor, proposals: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Detections per image from the given proposals (eval mode)."""
        counts = [len(p) for p in proposals]
        rois = torch.cat(proposals).to(images)
        p5, fc7 = self.region_features(images, [p.to(images) for p in proposals])
        if self.stage == "finetune":  # SVMs not trained yet: the fine-tuning softmax, no regression
            scores = F.softmax(self.cls_score(fc7), -1)[:, 1:]
            boxes = rois.unsqueeze(1).expand(-1, self.num_classes, 4)
        else:
            scores = torch.sigmoid(self.svm(fc7))
            boxes = self.box_coder.decode(self.bbox_pred(p5), rois).view(-1, self.num_classes, 4)
        return per_class_detections(scores, boxes, counts, self.in_shape[1:], score_thresh=self.score_thresh,
                                    nms_thresh=self.nms_thresh, detections_per_img=self.detections_per_img)


def enlarge_for_context(boxes: torch.Tensor, crop_size: int, context: int) -> torch.Tensor:
    """Scale boxes about their centres so that, warped to ``crop_size``, the original box fills
    the central ``crop_size − 2·context`` pixels (the paper: 16 pixels of context in 227)."""
    scale = crop_size / (crop_size - 2 * context)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * scale
    return torch.cat([centre - half, centre + half], 1)


@MODELS.register(
    "rcnn", task="detect",
    description="R-CNN: Selective Search, one CNN pass per warped region, per-class SVMs + box regressors (staged)",
    zoo={"epochs": 6, "batch_size": 16, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
         "model_kw": {"finetune_steps": 150}, "data_kw": {"n_train": 600, "n_val": 50}, "schedule": "cosine",
         "target_map50": 0.50, "budget_minutes": 15.0},
)
class RCNN(StagedRegionDetector):
    """R-CNN on ``crop_size × crop_size`` warped regions with a four-layer CNN (``width`` channels).

    Training mode → ``{"loss_cls", "loss_svm", "loss_box"}`` (the terms of the inactive stage are
    0); eval mode → one ``{"boxes", "scores", "labels"}`` dict per image.

    Stages and epochs: a stage boundary falls where ``finetune_steps`` optimizer steps are done. With
    the zoo settings (600 training images, batch 16: 38 steps per epoch, ``finetune_steps=150``)
    epochs 1–4 fine-tune the CNN and epochs 5–6 train the SVMs and box regressors; choose
    ``finetune_steps ≈ k · ⌈n_train / batch_size⌉`` to fine-tune for ``k`` epochs.
    """

    def __init__(self, in_shape=(3, 128, 128), num_classes: int = 3, crop_size: int = 32, context: int = 4,
                 width: int = 32, **kwargs):
        check_type("in_shape", in_shape, (tuple, list))
        if len(in_shape) != 3 or in_shape[0] != 3:
            raise ValueError(f"in_shape must be (3, H, W) (RGB images for Selective Search), got {tuple(in_shape)}")
        crop_size = check_int("crop_size", crop_size, min=8)
        if crop_size % 8:
            raise ValueError(f"crop_size must be a multiple of 8, got {crop_size}")
        w = check_int("width", width, min=2)
        super().__init__(in_shape, num_classes, pool5_dim=2 * w * (crop_size // 8) ** 2, **kwargs)
        self.crop_size = crop_size
        self.context = check_int("context", context, min=0, max=crop_size // 2 - 1)
        self.features = nn.Sequential(  # conv1 .. pool5 on one warped region: strides 1, 2, 2, 2
            ConvBNAct(3, w // 2), ConvBNAct(w // 2, w, stride=2), ConvBNAct(w, w, stride=2),
            ConvBNAct(w, 2 * w, stride=2), nn.Flatten(),
        )

    def warp(self, images: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        """The warped regions ``Tensor[R, 3, crop, crop]`` (outside the image reads 0)."""
        big = [enlarge_for_context(b, self.crop_size, self.context) for b in boxes]
        return roi_warp(images, big, self.crop_size)

    def pool5(self, images, boxes):
        return self.features(self.warp(images, boxes))  # one CNN pass per region
