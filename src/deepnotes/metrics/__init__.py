"""Metrics in scikit-learn's conventions: ``(y_true, y_pred)`` / ``(y_true, y_score)`` order,
tensors or arrays in, Python floats (or numpy arrays for curves and per-class values) out.

Higher is better for accuracy, precision, recall, F1, AUC and AP; lower for MAE, RMSE, MAPE.
Labels may be numbers, booleans or strings; targets and scores may be columns ``(n, 1)``;
``sample_weight`` is accepted throughout; arrays come back as tensors for tensor input. Empty
inputs, NaN scores and mismatched lengths raise ``ValueError``; a ranking metric undefined for a
missing class gives scikit-learn's result (NaN for ROC AUC) with an ``UndefinedMetricWarning``.
"""

from deepnotes.metrics.boundary import BoundaryFScore, boundary_f1_score
from deepnotes.metrics.classification import (
    accuracy,
    confusion_matrix,
    f1_score,
    fbeta_score,
    precision,
    recall,
)
from deepnotes.metrics.curves import (
    AP_INTERPOLATIONS,
    average_precision,
    confusion_matrix_at_thresholds,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)
from deepnotes.metrics.ranking import precision_at_k, recall_at_k
from deepnotes.metrics.regression import mae, mape, rmse
from deepnotes.metrics.segmentation import (
    SegmentationConfusion,
    mean_iou,
    mean_pixel_accuracy,
    per_class_accuracy,
    per_class_iou,
    pixel_accuracy,
    segmentation_confusion_matrix,
)

__all__ = [
    "AP_INTERPOLATIONS",
    "BoundaryFScore",
    "SegmentationConfusion",
    "boundary_f1_score",
    "mean_iou",
    "mean_pixel_accuracy",
    "per_class_accuracy",
    "per_class_iou",
    "pixel_accuracy",
    "segmentation_confusion_matrix",
    "accuracy",
    "average_precision",
    "confusion_matrix",
    "confusion_matrix_at_thresholds",
    "f1_score",
    "fbeta_score",
    "mae",
    "mape",
    "precision",
    "precision_at_k",
    "precision_recall_curve",
    "recall",
    "recall_at_k",
    "rmse",
    "roc_auc",
    "roc_curve",
]
