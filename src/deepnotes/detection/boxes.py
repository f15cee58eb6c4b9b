"""Box formats, areas, clipping and small-box removal (torchvision's names and conventions).

A box is a row of four numbers in one of three formats:

- ``'xyxy'``: corners ``(x1, y1, x2, y2)`` with ``x2 >= x1`` and ``y2 >= y1``;
- ``'xywh'``: top-left corner and size ``(x1, y1, w, h)``;
- ``'cxcywh'``: centre and size ``(cx, cy, w, h)``.

Boxes with zero width or height are allowed (their area is 0); inverted boxes (``x2 < x1``) are
a ``ValueError`` naming the argument.

Example
-------
>>> import torch
>>> box_convert(torch.tensor([[10., 20., 30., 60.]]), "xyxy", "cxcywh")
tensor([[20., 40., 20., 40.]])
>>> box_area(torch.tensor([[0., 0., 2., 3.]]))
tensor([6.])
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_choice, check_float, check_type
from deepnotes.detection._validate import FORMATS, check_boxes, upcast


def _xywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    x, y, w, h = b.unbind(-1)
    return torch.stack((x, y, x + w, y + h), dim=-1)


def _cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def _xyxy_to_xywh(b: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = b.unbind(-1)
    return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)


def _xyxy_to_cxcywh(b: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = b.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


_TO_XYXY = {"xyxy": lambda b: b, "xywh": _xywh_to_xyxy, "cxcywh": _cxcywh_to_xyxy}
_FROM_XYXY = {"xyxy": lambda b: b, "xywh": _xyxy_to_xywh, "cxcywh": _xyxy_to_cxcywh}


def box_convert(boxes: torch.Tensor, in_fmt: str, out_fmt: str) -> torch.Tensor:
    """Convert ``boxes (Tensor[N, 4])`` from ``in_fmt`` to ``out_fmt`` (through ``xyxy``).

    The same arithmetic as ``torchvision.ops.box_convert``, so results agree bit for bit.
    """
    check_choice("in_fmt", in_fmt, FORMATS)
    check_choice("out_fmt", out_fmt, FORMATS)
    check_boxes("boxes", boxes, fmt=in_fmt)
    if in_fmt == out_fmt:
        return boxes.clone()
    return _FROM_XYXY[out_fmt](_TO_XYXY[in_fmt](boxes))


def box_area(boxes: torch.Tensor, fmt: str = "xyxy") -> torch.Tensor:
    """Area of each box: ``(x2 - x1)(y2 - y1)``; ``boxes (Tensor[N, 4])`` → ``Tensor[N]``."""
    check_choice("fmt", fmt, FORMATS)
    check_boxes("boxes", boxes, fmt=fmt)
    boxes = upcast(boxes)
    if fmt == "xyxy":
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[:, 2] * boxes[:, 3]


def clip_boxes_to_image(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Clamp ``xyxy`` boxes into an image of ``size = (height, width)``; x to ``[0, W]``, y to ``[0, H]``."""
    check_boxes("boxes", boxes)
    check_type("size", size, (tuple, list))
    if len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}")
    height, width = (check_float(f"size[{i}]", s, min=0.0) for i, s in enumerate(size))
    x = boxes[:, 0::2].clamp(min=0, max=width)
    y = boxes[:, 1::2].clamp(min=0, max=height)
    return torch.stack((x, y), dim=2).reshape(boxes.shape)


def remove_small_boxes(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """Indices of the boxes whose width and height are both ``>= min_size`` (ascending)."""
    check_boxes("boxes", boxes)
    min_size = check_float("min_size", min_size)
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.where((ws >= min_size) & (hs >= min_size))[0]
