"""Multi-object tracking: Kalman filter, assignment, SORT, a DeepSORT-style tracker, KCF, MOT metrics."""

from deepnotes.tracking.assignment import gated_assignment, linear_assignment
from deepnotes.tracking.kalman import (
    KalmanFilter,
    box_to_measurement,
    constant_velocity_box_filter,
    measurement_to_box,
)
from deepnotes.tracking.sort import Sort

__all__ = [
    "KalmanFilter",
    "Sort",
    "box_to_measurement",
    "constant_velocity_box_filter",
    "gated_assignment",
    "linear_assignment",
    "measurement_to_box",
]
