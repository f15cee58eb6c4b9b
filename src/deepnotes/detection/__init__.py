"""Object detection toolkit: boxes, the IoU family, NMS variants, anchors, matching, region
proposals (sliding windows, Selective Search), RoI operators, box losses, mAP.

Boxes are ``Tensor[N, 4]`` in ``xyxy`` unless said otherwise; names, argument order and defaults
follow ``torchvision.ops`` and ``torchvision.models.detection``.
"""

from deepnotes.detection.anchors import AnchorGenerator, kmeans_anchors, wh_iou
from deepnotes.detection.boxes import box_area, box_convert, clip_boxes_to_image, remove_small_boxes
from deepnotes.detection.coder import BoxCoder, yolo_decode, yolo_encode
from deepnotes.detection.iou import (
    box_iou,
    box_iou_paired,
    complete_box_iou,
    complete_box_iou_paired,
    distance_box_iou,
    distance_box_iou_paired,
    generalized_box_iou,
    generalized_box_iou_paired,
)
from deepnotes.detection.losses import (
    complete_box_iou_loss,
    distance_box_iou_loss,
    eiou_loss,
    generalized_box_iou_loss,
    iou_loss,
    repulsion_loss,
    sigmoid_focal_loss,
    smooth_l1_box_loss,
)
from deepnotes.detection.map import mean_average_precision, measure_fps
from deepnotes.detection.mask_iou import mask_iou
from deepnotes.detection.matcher import BalancedPositiveNegativeSampler, Matcher
from deepnotes.detection.multiscale import (
    box_voting,
    merge_detections,
    multi_scale_detect,
    tile_starts,
)
from deepnotes.detection.nms import batched_nms, diou_nms, nms
from deepnotes.detection.proposals import sliding_window_boxes
from deepnotes.detection.roi_align import PSRoIAlign, RoIAlign, ps_roi_align, roi_align
from deepnotes.detection.roi_common import rois_from_boxes
from deepnotes.detection.roi_pool import RoIPool, roi_pool, roi_spatial_pyramid_pool
from deepnotes.detection.roi_warp import roi_warp
from deepnotes.detection.selective_search import (
    adjacency,
    hierarchical_grouping,
    region_features,
    selective_search,
)
from deepnotes.detection.soft_nms import soft_nms

__all__ = [
    "adjacency",
    "hierarchical_grouping",
    "region_features",
    "selective_search",
    "sliding_window_boxes",
    "AnchorGenerator",
    "BalancedPositiveNegativeSampler",
    "BoxCoder",
    "Matcher",
    "PSRoIAlign",
    "RoIAlign",
    "RoIPool",
    "batched_nms",
    "box_area",
    "box_convert",
    "box_iou",
    "box_iou_paired",
    "box_voting",
    "clip_boxes_to_image",
    "complete_box_iou",
    "complete_box_iou_loss",
    "complete_box_iou_paired",
    "diou_nms",
    "distance_box_iou",
    "distance_box_iou_loss",
    "distance_box_iou_paired",
    "eiou_loss",
    "generalized_box_iou",
    "generalized_box_iou_loss",
    "generalized_box_iou_paired",
    "iou_loss",
    "kmeans_anchors",
    "mask_iou",
    "mean_average_precision",
    "measure_fps",
    "merge_detections",
    "multi_scale_detect",
    "nms",
    "ps_roi_align",
    "remove_small_boxes",
    "repulsion_loss",
    "roi_align",
    "roi_pool",
    "roi_spatial_pyramid_pool",
    "roi_warp",
    "rois_from_boxes",
    "sigmoid_focal_loss",
    "smooth_l1_box_loss",
    "soft_nms",
    "tile_starts",
    "wh_iou",
    "yolo_decode",
    "yolo_encode",
]
