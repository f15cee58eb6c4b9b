"""Semantic-segmentation metrics from one pixel confusion matrix, accumulated over batches.

Every metric here is a function of the ``K x K`` confusion matrix ``C`` (rows: true class,
columns: predicted class) over all labelled pixels seen so far:

* pixel accuracy          ``PA   = Σ_c C[c, c] / Σ C``
* per-class accuracy      ``acc_c = C[c, c] / Σ_j C[c, j]``  (recall of class ``c``)
* mean pixel accuracy     ``MPA  = mean_c acc_c``
* per-class IoU           ``IoU_c = C[c, c] / (Σ_j C[c, j] + Σ_i C[i, c] - C[c, c])``
* mean IoU                ``mIoU = mean_c IoU_c``

Classes absent from both truth and prediction, and ratios with a zero denominator, follow
``torchmetrics`` (``MulticlassJaccardIndex`` / ``MulticlassAccuracy``, ``zero_division=0``):

* a per-class value whose denominator is zero is ``0.0`` (``per_class_iou`` and
  ``per_class_accuracy`` return 0 for a class that never occurs; scikit-learn's
  ``jaccard_score(average=None)`` does the same);
* the means leave out every class with no true and no predicted pixel (``tp + fp + fn = 0``),
  so an absent class neither helps nor hurts; mean IoU also leaves out the class
  ``ignore_index`` names (when it is in ``[0, num_classes)``), while mean pixel accuracy — as in
  torchmetrics — keeps that class with accuracy 0 if it is predicted on labelled pixels
  (predicting a class that has no true pixels is an error of that class too);
* if no class is left (nothing labelled), the means and pixel accuracy are ``0.0``.

Pixels whose true label equals ``ignore_index`` are dropped before counting (VOC's 255 border).

Example
-------
>>> t = [[0, 0], [1, 1]]
>>> p = [[0, 1], [1, 1]]
>>> round(mean_iou(t, p, num_classes=3), 4)   # class 2 never occurs: left out of the mean
0.5833
>>> per_class_iou(t, p, num_classes=3).round(4).tolist()
[0.5, 0.6667, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_int
from deepnotes.metrics._inputs import to_numpy

__all__ = [
    "SegmentationConfusion",
    "mean_iou",
    "mean_pixel_accuracy",
    "per_class_accuracy",
    "per_class_iou",
    "pixel_accuracy",
    "segmentation_confusion_matrix",
]


def _check_ignore(ignore_index: Any) -> int | None:
    if ignore_index is None:
        return None
    return check_int("ignore_index", ignore_index)


def _labels(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite (found NaN or inf)")
        if not bool((arr == np.round(arr)).all()):
            raise ValueError(f"{name} must hold integer class labels, got non-integral values")
    return arr.astype(np.int64, copy=False)


def _pixels(
    y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Flat, validated (true, predicted) labels of the pixels that count."""
    yt = to_numpy("y_true", y_true)
    yp = to_numpy("y_pred", y_pred)
    if yp.ndim == yt.ndim + 1 and yt.ndim >= 1:
        # scores or logits (N, K, ...) -> labels, as torchmetrics does
        if yp.shape[1] != num_classes:
            raise ValueError(
                f"y_pred has one more dimension than y_true, so it must be scores of shape "
                f"(N, num_classes={num_classes}, ...); got shape {yp.shape}"
            )
        if yp.dtype.kind == "f" and not np.isfinite(yp).all():
            raise ValueError("y_pred must be finite (found NaN or inf)")
        yp = yp.argmax(axis=1)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {yt.shape} and {yp.shape}")
    yt = _labels("y_true", yt).reshape(-1)
    yp = _labels("y_pred", yp).reshape(-1)
    if ignore_index is not None:
        keep = yt != ignore_index
        yt, yp = yt[keep], yp[keep]
    for name, arr in (("y_true", yt), ("y_pred", yp)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            bad = arr[(arr < 0) | (arr >= num_classes)][0]
            extra = "" if ignore_index is None else f" (or ignore_index={ignore_index} in y_true)"
            raise ValueError(
                f"{name} labels must lie in [0, num_classes={num_classes}){extra}; found {bad}"
            )
    return yt, yp


def segmentation_confusion_matrix(
    y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """Pixel confusion matrix ``C[i, j]`` = pixels of true class ``i`` predicted as ``j``.

    Parameters
    ----------
    y_true : array-like or Tensor of any shape, e.g. (N, H, W)
        True labels in ``[0, num_classes)`` or equal to ``ignore_index``.
    y_pred : array-like or Tensor, the shape of ``y_true``, or scores (N, num_classes, ...)
        Predicted labels, or per-class scores reduced by argmax over dimension 1.
    num_classes : int >= 2
    ignore_index : int, optional
        True label whose pixels are left out.

    Returns
    -------
    ndarray of int64, shape (num_classes, num_classes)
    """
    k = check_int("num_classes", num_classes, min=2)
    yt, yp = _pixels(y_true, y_pred, k, _check_ignore(ignore_index))
    return np.bincount(yt * k + yp, minlength=k * k).reshape(k, k).astype(np.int64, copy=False)


# --- metrics of a confusion matrix -------------------------------------------------------------


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=np.asarray(den) != 0)
    return out


def _present(cm: np.ndarray, ignore_index: int | None) -> np.ndarray:
    """Classes that enter a mean: seen in truth or prediction, and not ``ignore_index``."""
    present = (cm.sum(0) + cm.sum(1)) > 0
    if ignore_index is not None and 0 <= ignore_index < len(cm):
        present[ignore_index] = False
    return present


def _mean_present(values: np.ndarray, present: np.ndarray) -> float:
    return float(values[present].mean()) if present.any() else 0.0


def _iou_of(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm)
    return _div(tp, cm.sum(0) + cm.sum(1) - tp)


def _accuracy_of(cm: np.ndarray) -> np.ndarray:
    return _div(np.diag(cm), cm.sum(1))


class SegmentationConfusion:
    """Accumulates the pixel confusion matrix over batches and reads every metric from it.

    >>> acc = SegmentationConfusion(num_classes=2)
    >>> acc.update([0, 0, 1], [0, 1, 1]).update([1], [1]).matrix.tolist()
    [[1, 1], [0, 2]]
    >>> acc.pixel_accuracy()
    0.75
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        self.num_classes = check_int("num_classes", num_classes, min=2)
        self.ignore_index = _check_ignore(ignore_index)
        self.reset()

    def reset(self) -> SegmentationConfusion:
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        return self

    def update(self, y_true: Any, y_pred: Any) -> SegmentationConfusion:
        self.matrix += segmentation_confusion_matrix(
            y_true, y_pred, self.num_classes, self.ignore_index
        )
        return self

    def merge(self, other: SegmentationConfusion) -> SegmentationConfusion:
        """Add another accumulator's counts (e.g. from another process)."""
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"other has num_classes={other.num_classes}, expected {self.num_classes}"
            )
        self.matrix += other.matrix
        return self

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else 0.0

    def per_class_accuracy(self) -> np.ndarray:
        return _accuracy_of(self.matrix)

    def mean_pixel_accuracy(self) -> float:
        return _mean_present(self.per_class_accuracy(), _present(self.matrix, None))

    def per_class_iou(self) -> np.ndarray:
        return _iou_of(self.matrix)

    def mean_iou(self) -> float:
        return _mean_present(self.per_class_iou(), _present(self.matrix, self.ignore_index))


# --- one-shot functions ------------------------------------------------------------------------


def _acc(y_true: Any, y_pred: Any, num_classes: int, ignore_index: Any) -> SegmentationConfusion:
    return SegmentationConfusion(num_classes, ignore_index).update(y_true, y_pred)


def pixel_accuracy(
    y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None
) -> float:
    """Fraction of labelled pixels predicted correctly (torchmetrics ``average="micro"``)."""
    return _acc(y_true, y_pred, num_classes, ignore_index).pixel_accuracy()


def per_class_accuracy(
    y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """Recall of each class, shape (num_classes,); 0.0 for a class with no true pixel."""
    return _acc(y_true, y_pred, num_classes, ignore_index).per_class_accuracy()


def mean_pixel_accuracy(
    y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None
) -> float:
    """Mean per-class accuracy over the classes present (torchmetrics ``average="macro"``)."""
    return _acc(y_true, y_pred, num_classes, ignore_index).mean_pixel_accuracy()


def per_class_iou(
    y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """IoU of each class, shape (num_classes,); 0.0 for a class absent from truth and prediction."""
    return _acc(y_true, y_pred, num_classes, ignore_index).per_class_iou()


def mean_iou(y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None) -> float:
    """Mean IoU over the classes present in truth or prediction, ``ignore_index`` excluded."""
    return _acc(y_true, y_pred, num_classes, ignore_index).mean_iou()
