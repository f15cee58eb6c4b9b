"""Input checks shared by the detection ops (boxes, scores, thresholds).

Every public function of :mod:`deepnotes.detection` validates at its boundary through these, so
that a wrong shape, a non-finite value or an inverted box raises a ``ValueError`` naming the
argument instead of returning a plausible wrong number.
"""

from __future__ import annotations

from typing import Any

import torch

from deepnotes.core.checks import check_float, check_tensor

FORMATS = ("xyxy", "xywh", "cxcywh")


def check_boxes(
    name: str, boxes: Any, *, fmt: str = "xyxy", allow_1d: bool = False
) -> torch.Tensor:
    """A ``(N, 4)`` tensor (``(4,)`` too with ``allow_1d``), finite, with non-negative sides.

    Integer boxes are accepted (as torchvision accepts them); ``bool`` and complex are not.
    ``fmt`` says how to read the sides: ``x2 - x1`` for ``xyxy``, the last two columns otherwise.
    """
    _check_box_tensor(name, boxes, allow_1d)
    if fmt == "xyxy":
        _checked_sides(name, boxes)
        return boxes
    if boxes.is_floating_point() and not bool(torch.isfinite(boxes.sum())):
        if not bool(torch.isfinite(boxes).all()):
            raise ValueError(f"{name} must be finite (found NaN or inf)")
    sides = boxes[..., 2:]
    if sides.numel() and bool(sides.min() < 0):
        _raise_inverted(name, boxes, sides, fmt)
    return boxes


def checked_sides(name: str, boxes: Any, *, allow_1d: bool = False) -> torch.Tensor:
    """:func:`check_boxes` for ``xyxy`` boxes that also returns their sides ``(w, h)`` as a
    ``(..., 2)`` tensor, so that a caller who needs the areas does not subtract twice."""
    _check_box_tensor(name, boxes, allow_1d)
    return _checked_sides(name, boxes)


def _check_box_tensor(name: str, boxes: Any, allow_1d: bool) -> None:
    check_tensor(name, boxes)
    if boxes.dtype == torch.bool or boxes.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {boxes.dtype}")
    ok_shape = boxes.dim() == 2 and boxes.shape[1] == 4
    if allow_1d:
        ok_shape = ok_shape or (boxes.dim() == 1 and boxes.shape[0] == 4)
    if not ok_shape:
        want = "(N, 4) or (4,)" if allow_1d else "(N, 4)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(boxes.shape)}")


def _checked_sides(name: str, boxes: torch.Tensor) -> torch.Tensor:
    sides = boxes[..., 2:] - boxes[..., :2]
    if not sides.numel():
        return sides
    # one pass decides the common case: the sides are finite exactly when the corners are
    # (unless a difference of finite corners overflows, which the slow branch sorts out)
    low, high = torch.aminmax(sides)
    if boxes.is_floating_point() and not bool(torch.isfinite(torch.stack([low, high])).all()):
        if not bool(torch.isfinite(boxes).all()):
            raise ValueError(f"{name} must be finite (found NaN or inf)")
        negative = bool((boxes[..., 2:] < boxes[..., :2]).any())
    else:
        negative = bool(low < 0)
    if negative:
        _raise_inverted(name, boxes, sides, "xyxy")
    return sides


def _raise_inverted(name: str, boxes: torch.Tensor, sides: torch.Tensor, fmt: str) -> None:
    what = "x2 >= x1 and y2 >= y1" if fmt == "xyxy" else "width >= 0 and height >= 0"
    first = int(torch.nonzero((sides < 0).any(-1).reshape(-1))[0])
    raise ValueError(
        f"{name} must satisfy {what} ({fmt}); box {first} is {boxes.reshape(-1, 4)[first].tolist()}"
    )


def check_scores(name: str, scores: Any, n: int) -> torch.Tensor:
    """A finite floating ``(n,)`` tensor."""
    check_tensor(name, scores, ndim=1, floating=True)
    if scores.shape[0] != n:
        raise ValueError(f"{name} must have one entry per box: expected {n}, got {scores.shape[0]}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return scores


def check_threshold(name: str, value: Any) -> float:
    """An IoU threshold in [0, 1]."""
    return check_float(name, value, min=0.0, max=1.0)


def upcast(t: torch.Tensor) -> torch.Tensor:
    """Widen small dtypes before products, as torchvision does (float16 → float32, int8/16 → int32)."""
    if t.is_floating_point():
        return t if t.dtype in (torch.float32, torch.float64) else t.float()
    return t if t.dtype in (torch.int32, torch.int64) else t.int()


def safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` where ``den != 0`` and 0 elsewhere, with finite gradients everywhere.

    Callers guarantee ``num == 0`` wherever ``den == 0`` (an intersection inside an empty union),
    so without autograd the quotient is computed once and its ``0/0`` entries are set to 0.
    """
    if not (torch.is_grad_enabled() and (num.requires_grad or den.requires_grad)):
        return (num / den).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    nonzero = den != 0
    return torch.where(
        nonzero, num / torch.where(nonzero, den, torch.ones_like(den)), torch.zeros_like(num / 1.0)
    )
