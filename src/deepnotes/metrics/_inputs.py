"""Input handling shared by the metrics: tensors or arrays in, validated numpy arrays out.

Metrics follow scikit-learn's conventions — ``(y_true, y_score)`` / ``(y_true, y_pred)``
argument order, Python floats and numpy arrays out — so they run on numpy. Tensors are moved to
the CPU and viewed as numpy without a copy; numpy's SIMD sort and ``bincount`` are also what make
the ranking metrics several times faster than ``torch.sort`` on CPU (see the bench cases).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import UndefinedMetricWarning


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
    if not np.isscalar(pos_label):
        raise TypeError(f"pos_label must be a single label, got {type(pos_label).__name__}")
    same_kind("pos_label", pos_label, y_true)
    return y_true == pos_label


# ------------------------------------------------------------- scikit-learn's input conventions
def is_tensor(*values: Any) -> bool:
    """True when any of ``values`` is a torch tensor (arrays computed then come back as tensors)."""
    return any(isinstance(v, torch.Tensor) for v in values)


def like(out: Any, *inputs: Any) -> Any:
    """``out`` (an ndarray, or a tuple of them) as tensors when any input was a tensor.

    numpy in → numpy out, torch in → torch out (on the first tensor input's device). Arrays of
    strings or objects cannot be tensors and stay numpy arrays.
    """
    ref = next((v for v in inputs if isinstance(v, torch.Tensor)), None)
    if ref is None:
        return out
    if isinstance(out, tuple):
        return tuple(like(o, ref) for o in out)
    if isinstance(out, np.ndarray) and out.dtype.kind in "biuf":
        return torch.from_numpy(np.ascontiguousarray(out)).to(ref.device)
    return out


def label_array(name: str, value: Any, *, two_d: bool = False) -> np.ndarray:
    """Class labels: numbers, booleans or strings (any hashable kind ``np.unique`` can sort).

    A column ``(n, 1)`` becomes 1-D, as scikit-learn's ``column_or_1d``; with ``two_d`` a
    label-indicator matrix ``(n, k)``, ``k > 1``, is kept as it is. Non-integral floats, NaN,
    empty input and a mix of strings and numbers raise ``ValueError`` naming ``name``.
    """
    if isinstance(value, torch.Tensor):
        arr = to_numpy(name, value)
    else:
        if isinstance(value, (str, bytes, dict)) or value is None:
            raise TypeError(f"{name} must be a tensor or array-like, got {type(value).__name__}")
        arr = np.asarray(value)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 and not (two_d and arr.ndim == 2):
        raise ValueError(f"{name} must be 1-D (or a column (n, 1)), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if arr.dtype.kind == "O":
        kinds = {isinstance(v, str) for v in arr.ravel().tolist()}
        if kinds == {True}:
            arr = arr.astype(str)
        elif kinds == {True, False}:
            raise ValueError(f"{name}: mix of label input types (string and number)")
        else:
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{name} must hold class labels, got {arr.dtype}") from exc
    if arr.dtype.kind not in "biufUS":
        raise TypeError(f"{name} must hold class labels, got an array of dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        check_finite(name, arr)
        if not bool((arr == np.round(arr)).all()):
            # scikit-learn: "can't handle a mix of binary and continuous targets"
            raise ValueError(
                f"{name} must hold class labels (integers or strings), got non-integral values; "
                "threshold scores into labels first"
            )
    return arr


def score_array(name: str, value: Any) -> np.ndarray:
    """Finite real scores of shape (n,), a column (n, 1) made 1-D, or (n, k)."""
    arr = to_numpy(name, value)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or (n_samples, n_classes), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    check_finite(name, arr)
    return arr


def sample_weights(value: Any, n: int) -> np.ndarray | None:
    """``sample_weight``: ``None`` or ``n`` finite, non-negative float64 weights."""
    if value is None:
        return None
    w = to_numpy("sample_weight", value)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim != 1 or len(w) != n:
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    check_finite("sample_weight", w)
    if bool((w < 0).any()):
        raise ValueError("sample_weight must be non-negative")
    return w


def same_kind(name: str, label: Any, classes: np.ndarray) -> None:
    """``TypeError`` when ``label`` is a string and the labels are numbers, or the reverse."""
    is_str = isinstance(label, (str, np.str_))
    if classes.dtype.kind in "US" and not is_str or classes.dtype.kind not in "US" and is_str:
        raise TypeError(
            f"{name}={label!r} is not of the labels' type (labels: {classes[:5].tolist()}...)"
        )


def undefined(message: str) -> None:
    """scikit-learn's ``UndefinedMetricWarning`` for a metric that is undefined on its input."""
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)
