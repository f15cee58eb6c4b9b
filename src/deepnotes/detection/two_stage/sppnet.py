"""SPPNet for detection, "Spatial Pyramid Pooling in Deep Convolutional Networks" (He et al., 2014).

R-CNN's pipeline with its bottleneck removed: the convolutional layers run **once per image**;
each Selective Search proposal is projected onto the last feature map (stride 8 here) and
max-pooled by a spatial pyramid of ``levels`` (``l × l`` bins each, default 4, 2, 1 — the
paper uses 6, 3, 2, 1 on larger maps) into a fixed-length vector of ``C · Σ l²`` values, whatever
the proposal's size or aspect ratio (:func:`deepnotes.detection.roi_spatial_pyramid_pool`). No
warping, no per-region CNN pass.

On that vector (SPPNet's "pool5") the detector is R-CNN's (:class:`StagedRegionDetector`): fc6,
fc7, a fine-tuning softmax, then one linear SVM per class (hinge loss, hard-negative mining) and
class-specific box regressors, trained in the same two stages. One difference from the paper,
said here: the paper fine-tunes only the fully connected layers on top of ImageNet-pretrained
convolutions (back-propagating through the pyramid pooling of large RoIs was its inefficiency,
fixed by Fast R-CNN); with no pretrained weights, stage 1 here trains the convolutions too,
through the pooling (whose gradient goes to each bin's maximum).
"""

from __future__ import annotations

from deepnotes.core.checks import check_int, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.models.backbone import TinyResNet
from deepnotes.detection.roi_pool import roi_spatial_pyramid_pool
from deepnotes.detection.two_stage.rcnn import StagedRegionDetector


@MODELS.register(
    "sppnet", task="detect",
    description="SPPNet: one CNN pass per image, spatial pyramid pooling per proposal, SVMs + box regressors",
    zoo={"epochs": 6, "batch_size": 16, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
         "model_kw": {"finetune_steps": 150}, "data_kw": {"n_train": 600, "n_val": 50}, "schedule": "cosine",
         "target_map50": 0.50, "budget_minutes": 15.0},
)
class SPPNet(StagedRegionDetector):
    """SPPNet on a :class:`TinyResNet` (three stages, stride 8, ``width`` channels at the end).

    Training mode → ``{"loss_cls", "loss_svm", "loss_box"}``; eval mode → detections per image.
    """

    stride = 8

    def __init__(self, in_shape=(3, 128, 128), num_classes: int = 3, width: int = 64, levels=(4, 2, 1), **kwargs):
        check_type("in_shape", in_shape, (tuple, list))
        if len(in_shape) != 3 or in_shape[0] != 3:
            raise ValueError(f"in_shape must be (3, H, W) (RGB images for Selective Search), got {tuple(in_shape)}")
        w = check_int("width", width, min=4)
        check_type("levels", levels, (tuple, list))
        if not levels:
            raise ValueError("levels must name at least one pyramid level")
        levels = tuple(check_int(f"levels[{i}]", v, min=1) for i, v in enumerate(levels))
        super().__init__(in_shape, num_classes, pool5_dim=w * sum(v * v for v in levels), **kwargs)
        self.levels = levels
        self.features = TinyResNet(3, (w // 4, w // 2, w), stem_width=w // 4)

    def pool5(self, images, boxes):
        fmap = self.features(images)[-1]  # one pass over the whole image
        return roi_spatial_pyramid_pool(fmap, boxes, self.levels, spatial_scale=1.0 / self.stride)
