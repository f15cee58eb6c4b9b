"""Detection toolkit: region features (RoI operators, proposals) — see also i13a's boxes/NMS."""

from deepnotes.detection.roi_align import PSRoIAlign, RoIAlign, ps_roi_align, roi_align
from deepnotes.detection.roi_common import rois_from_boxes
from deepnotes.detection.roi_pool import RoIPool, roi_pool, roi_spatial_pyramid_pool
from deepnotes.detection.roi_warp import roi_warp

__all__ = [
    "PSRoIAlign",
    "RoIAlign",
    "RoIPool",
    "ps_roi_align",
    "roi_align",
    "roi_pool",
    "roi_spatial_pyramid_pool",
    "roi_warp",
    "rois_from_boxes",
]
