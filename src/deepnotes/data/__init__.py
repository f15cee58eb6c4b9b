"""Datasets (eager, lazy, image folders, embedded), splits, loaders and collate functions."""

from deepnotes.data.builtin import digits, linear, make_linear
from deepnotes.data.coco import CocoDetection, coco_splits
from deepnotes.data.datasets import LazyFileDataset, TensorDataset
from deepnotes.data.detection_augment import (
    DetectionAugment,
    color_jitter_detection,
    crop_detection,
    cutmix_detection,
    hflip_detection,
    mosaic_detection,
    resize_detection,
)
from deepnotes.data.export import export_coco, export_voc, mask_to_rle, rle_to_mask
from deepnotes.data.folder import (
    dataset_task,
    image_folder,
    image_folder_splits,
    read_image,
    resize_to,
    resolve_dataset,
)
from deepnotes.data.loading import collate_detection, collate_variable, make_loader
from deepnotes.data.shapes import CLASSES as SHAPES_CLASSES
from deepnotes.data.shapes import ShapesDataset, ShapesSequence, render_shapes, shapes
from deepnotes.data.splits import DataSplits, split_dataset
from deepnotes.data.voc import VOC_CLASSES, VOCDetection, parse_voc_xml, voc_splits

__all__ = [
    "CocoDetection",
    "DataSplits",
    "DetectionAugment",
    "SHAPES_CLASSES",
    "ShapesDataset",
    "ShapesSequence",
    "LazyFileDataset",
    "TensorDataset",
    "VOCDetection",
    "VOC_CLASSES",
    "coco_splits",
    "collate_detection",
    "color_jitter_detection",
    "crop_detection",
    "cutmix_detection",
    "collate_variable",
    "digits",
    "export_coco",
    "export_voc",
    "hflip_detection",
    "image_folder",
    "image_folder_splits",
    "linear",
    "make_linear",
    "make_loader",
    "mask_to_rle",
    "mosaic_detection",
    "parse_voc_xml",
    "read_image",
    "resize_detection",
    "resize_to",
    "dataset_task",
    "render_shapes",
    "resolve_dataset",
    "rle_to_mask",
    "shapes",
    "split_dataset",
    "voc_splits",
]
