"""The two-stage family's building blocks: Faster R-CNN's RPN and RoI heads, FPN RoI pooling.

Each equals its torchvision counterpart (``models.detection.rpn.RegionProposalNetwork``,
``models.detection.roi_heads.RoIHeads``, ``ops.MultiScaleRoIAlign``) for the same weights and inputs.
The R-CNN line before Faster R-CNN is here too: R-CNN, SPPNet and Fast R-CNN on Selective Search
proposals, and R-FCN with position-sensitive RoI pooling (equal to ``torchvision.ops.ps_roi_pool``).
"""

from deepnotes.detection.two_stage.alternating import train_alternating
from deepnotes.detection.two_stage.box_head import FastRCNNPredictor, TwoMLPHead
from deepnotes.detection.two_stage.cascade import (
    AgnosticPredictor,
    CascadeFPN,
    CascadeRCNN,
    CascadeRoIHeads,
    cascade_stage_loss,
)
from deepnotes.detection.two_stage.fast_rcnn import FastRCNN, fast_rcnn_loss
from deepnotes.detection.two_stage.faster_rcnn import FasterRCNN, TwoStageDetector
from deepnotes.detection.two_stage.fpn import FeaturePyramid, FPNFasterRCNN, PyramidDetector
from deepnotes.detection.two_stage.mask_head import (
    MaskRCNNHeads,
    MaskRCNNPredictor,
    maskrcnn_inference,
    maskrcnn_loss,
    project_masks_on_boxes,
)
from deepnotes.detection.two_stage.mask_rcnn import (
    MSRCNN,
    MSRCNNFPN,
    MaskRCNN,
    MaskRCNNFPN,
    MaskRoIHeads,
)
from deepnotes.detection.two_stage.mask_scoring import (
    MaskIoUHead,
    maskiou_loss,
    maskiou_targets,
    rescore,
)
from deepnotes.detection.two_stage.panet import (
    AdaptiveFeaturePooling,
    AdaptiveTwoMLPHead,
    PANet,
    PANetNeck,
)
from deepnotes.detection.two_stage.paste_masks import expand_boxes, paste_masks_in_image
from deepnotes.detection.two_stage.poolers import LevelMapper, MultiScaleRoIAlign, infer_scale
from deepnotes.detection.two_stage.proposals import filter_proposals, top_n_per_level
from deepnotes.detection.two_stage.ps_roi_pool import PSRoIPool, ps_roi_pool
from deepnotes.detection.two_stage.rcnn import (
    RCNN,
    StagedRegionDetector,
    mine_hard_negatives,
    svm_hinge_loss,
    svm_targets,
)
from deepnotes.detection.two_stage.region_proposals import (
    SelectiveSearchProposals,
    label_proposals,
    per_class_detections,
    sample_rois,
)
from deepnotes.detection.two_stage.rfcn import RFCN, ohem_select
from deepnotes.detection.two_stage.roi_heads import RoIHeads, fastrcnn_loss
from deepnotes.detection.two_stage.rpn import RegionProposalNetwork
from deepnotes.detection.two_stage.rpn_head import RPNHead, flatten_predictions
from deepnotes.detection.two_stage.sppnet import SPPNet

__all__ = [
    "AdaptiveFeaturePooling",
    "AdaptiveTwoMLPHead",
    "AgnosticPredictor",
    "CascadeFPN",
    "CascadeRCNN",
    "CascadeRoIHeads",
    "FPNFasterRCNN",
    "FeaturePyramid",
    "PANet",
    "PANetNeck",
    "PyramidDetector",
    "FastRCNN",
    "PSRoIPool",
    "RFCN",
    "ohem_select",
    "ps_roi_pool",
    "RCNN",
    "SPPNet",
    "fast_rcnn_loss",
    "SelectiveSearchProposals",
    "StagedRegionDetector",
    "label_proposals",
    "mine_hard_negatives",
    "per_class_detections",
    "sample_rois",
    "svm_hinge_loss",
    "svm_targets",
    "FastRCNNPredictor",
    "FasterRCNN",
    "LevelMapper",
    "MultiScaleRoIAlign",
    "RPNHead",
    "RegionProposalNetwork",
    "RoIHeads",
    "TwoMLPHead",
    "TwoStageDetector",
    "cascade_stage_loss",
    "fastrcnn_loss",
    "filter_proposals",
    "flatten_predictions",
    "infer_scale",
    "top_n_per_level",
    # Mask R-CNN, Mask Scoring R-CNN
    "MSRCNN",
    "MaskIoUHead",
    "MaskRCNN",
    "MaskRCNNFPN",
    "MSRCNNFPN",
    "MaskRCNNHeads",
    "MaskRCNNPredictor",
    "MaskRoIHeads",
    "expand_boxes",
    "maskiou_loss",
    "maskiou_targets",
    "maskrcnn_inference",
    "maskrcnn_loss",
    "paste_masks_in_image",
    "project_masks_on_boxes",
    "rescore",
    "train_alternating",
]
