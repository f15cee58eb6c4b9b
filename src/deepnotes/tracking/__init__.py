"""Multi-object tracking: Kalman filter, assignment, SORT, a DeepSORT-style tracker, KCF, MOT metrics."""

from deepnotes.tracking.appearance import AppearanceNet, train_appearance
from deepnotes.tracking.assignment import gated_assignment, linear_assignment
from deepnotes.tracking.assignment_fast import fast_gated_assignment, fast_linear_assignment
from deepnotes.tracking.deepsort import CHI2_95_4DOF, DeepSortTracker
from deepnotes.tracking.kalman import (
    KalmanFilter,
    box_to_measurement,
    constant_velocity_box_filter,
    measurement_to_box,
)
from deepnotes.tracking.kcf import KCF, gaussian_correlation
from deepnotes.tracking.mot_io import read_mot, write_mot
from deepnotes.tracking.mot_metrics import check_mot_rows, iou_distance_xywh, mot_metrics
from deepnotes.tracking.sort import Sort

__all__ = [
    "AppearanceNet",
    "CHI2_95_4DOF",
    "KCF",
    "DeepSortTracker",
    "KalmanFilter",
    "Sort",
    "box_to_measurement",
    "check_mot_rows",
    "constant_velocity_box_filter",
    "fast_gated_assignment",
    "fast_linear_assignment",
    "gated_assignment",
    "gaussian_correlation",
    "iou_distance_xywh",
    "linear_assignment",
    "measurement_to_box",
    "mot_metrics",
    "train_appearance",
    "read_mot",
    "write_mot",
]
