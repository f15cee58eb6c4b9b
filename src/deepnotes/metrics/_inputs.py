"""Input handling shared by the metrics: tensors or arrays in, validated numpy arrays out.

Metrics follow scikit-learn's conventions — ``(y_true, y_score)`` / ``(y_true, y_pred)``
argument order, Python floats and numpy arrays out — so they run on numpy. Tensors are moved to
the CPU and viewed as numpy without a copy; numpy's SIMD sort and ``bincount`` are also what make
the ranking metrics several times faster than ``torch.sort`` on CPU (see the bench cases).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def to_numpy(name: str, value: Any) -> np.ndarray:
    """A numeric numpy array from a tensor, array or list (``TypeError`` naming ``name`` if not)."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        if t.is_complex():
            raise TypeError(f"{name} must be real-valued, got dtype {t.dtype}")
        return t.resolve_conj().resolve_neg().numpy()
    if isinstance(value, (str, bytes, dict)) or value is None:
        raise TypeError(f"{name} must be a tensor or array-like, got {type(value).__name__}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")
    return arr


def vector(name: str, value: Any, *, finite: bool = True) -> np.ndarray:
    """A non-empty 1-D numeric array (optionally checked finite)."""
    arr = to_numpy(name, value)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if finite:
        check_finite(name, arr)
    return arr


def check_finite(name: str, arr: np.ndarray) -> None:
    # NaN scores raise instead of being ranked somewhere arbitrary (torchmetrics' AUROC returns
    # 1.0 on a NaN score); scikit-learn raises too
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (found NaN or inf)")


def same_length(**arrays: np.ndarray) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise ValueError(f"inconsistent lengths: {desc}")
    return next(iter(lengths.values()))


def labels_vector(name: str, value: Any) -> np.ndarray:
    """Class labels: a non-empty 1-D array of integers (integral floats and bools allowed)."""
    arr = vector(name, value)
    if arr.dtype.kind == "f" and not bool((arr == np.round(arr)).all()):
        # scikit-learn: "can't handle a mix of binary and continuous targets"
        raise ValueError(
            f"{name} must hold class labels (integers), got non-integral values; "
            "threshold scores into labels first"
        )
    return arr


def binary_positive(y_true: np.ndarray, pos_label: Any) -> np.ndarray:
    """Boolean mask of the positive class.

    With ``pos_label=None`` the labels must be ``{0, 1}`` or ``{-1, 1}`` (booleans count as
    ``{0, 1}``) and 1 is positive, as in scikit-learn; otherwise the positive class is
    ``y_true == pos_label`` and every other label is negative.
    """
    if pos_label is None:
        if y_true.dtype == np.bool_:
            return y_true
        one = y_true == 1
        if not bool((one | (y_true == 0)).all()) and not bool((one | (y_true == -1)).all()):
            raise ValueError(
                "y_true must hold binary labels {0, 1} or {-1, 1} when pos_label is None; "
                "pass pos_label to pick the positive class"
            )
        return one
    if isinstance(pos_label, (str, bytes)) or not np.isscalar(pos_label):
        raise TypeError(f"pos_label must be a number, got {type(pos_label).__name__}")
    return y_true == pos_label
