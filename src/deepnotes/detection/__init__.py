"""Detection toolkit: region features — RoI operators and region proposals (sliding windows,
Selective Search). Boxes, IoU, NMS, anchors, losses and mAP live beside them."""

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

__all__ = [
    "PSRoIAlign",
    "RoIAlign",
    "RoIPool",
    "adjacency",
    "hierarchical_grouping",
    "ps_roi_align",
    "region_features",
    "roi_align",
    "roi_pool",
    "roi_spatial_pyramid_pool",
    "roi_warp",
    "rois_from_boxes",
    "selective_search",
    "sliding_window_boxes",
]
