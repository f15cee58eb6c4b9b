"""Datasets (eager, lazy, image folders, embedded), splits, loaders and collate functions."""

from deepnotes.data.builtin import digits, linear, make_linear
from deepnotes.data.datasets import LazyFileDataset, TensorDataset
from deepnotes.data.folder import (
    dataset_task,
    image_folder,
    image_folder_splits,
    read_image,
    resize_to,
    resolve_dataset,
)
from deepnotes.data.loading import collate_variable, make_loader
from deepnotes.data.splits import DataSplits, split_dataset

__all__ = [
    "DataSplits",
    "LazyFileDataset",
    "TensorDataset",
    "collate_variable",
    "digits",
    "image_folder",
    "image_folder_splits",
    "linear",
    "make_linear",
    "make_loader",
    "read_image",
    "resize_to",
    "dataset_task",
    "resolve_dataset",
    "split_dataset",
]
