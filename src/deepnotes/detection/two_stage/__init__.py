"""The two-stage family's building blocks: Faster R-CNN's RPN and RoI heads, FPN RoI pooling.

Each equals its torchvision counterpart (``models.detection.rpn.RegionProposalNetwork``,
``models.detection.roi_heads.RoIHeads``, ``ops.MultiScaleRoIAlign``) for the same weights and inputs.
"""

from deepnotes.detection.two_stage.box_head import FastRCNNPredictor, TwoMLPHead
from deepnotes.detection.two_stage.faster_rcnn import FasterRCNN, TwoStageDetector
from deepnotes.detection.two_stage.poolers import LevelMapper, MultiScaleRoIAlign, infer_scale
from deepnotes.detection.two_stage.proposals import filter_proposals, top_n_per_level
from deepnotes.detection.two_stage.roi_heads import RoIHeads, fastrcnn_loss
from deepnotes.detection.two_stage.rpn import RegionProposalNetwork
from deepnotes.detection.two_stage.rpn_head import RPNHead, flatten_predictions

__all__ = [
    "FastRCNNPredictor",
    "FasterRCNN",
    "LevelMapper",
    "MultiScaleRoIAlign",
    "RPNHead",
    "RegionProposalNetwork",
    "RoIHeads",
    "TwoMLPHead",
    "TwoStageDetector",
    "fastrcnn_loss",
    "filter_proposals",
    "flatten_predictions",
    "infer_scale",
    "top_n_per_level",
]
