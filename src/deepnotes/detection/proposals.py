"""Sliding-window proposals: every window of the given sizes at a fixed stride.

The exhaustive search that Selective Search and the RPN replace: a detector classifies each window.
Boxes are pixel-edge ``xyxy`` float32, ordered by window size, then row, then column.
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_int, check_type


def _pair(name: str, value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return check_int(f"{name}[0]", value[0], min=1), check_int(f"{name}[1]", value[1], min=1)
    v = check_int(name, value, min=1)
    return v, v


def sliding_window_boxes(image_size, window_sizes=((32, 32), (64, 64)), stride=16) -> torch.Tensor:
    """All windows ``(h, w)`` of ``window_sizes`` placed every ``stride`` pixels inside the image.

    image_size : ``(H, W)`` or an int; stride : an int or ``(sy, sx)``.
    Returns Tensor[N, 4]; a window larger than the image contributes nothing.

    >>> sliding_window_boxes((4, 6), window_sizes=[(4, 4)], stride=2).tolist()
    [[0.0, 0.0, 4.0, 4.0], [2.0, 0.0, 6.0, 4.0]]
    """
    h, w = _pair("image_size", image_size)
    sy, sx = _pair("stride", stride)
    check_type("window_sizes", window_sizes, (tuple, list))
    if not window_sizes:
        raise ValueError("window_sizes must not be empty")
    out = []
    for i, size in enumerate(window_sizes):  # a handful of window shapes; each placed in one op
        wh, ww = _pair(f"window_sizes[{i}]", size)
        if wh > h or ww > w:
            continue
        ys = torch.arange(0, h - wh + 1, sy, dtype=torch.float32)
        xs = torch.arange(0, w - ww + 1, sx, dtype=torch.float32)
        y, x = torch.meshgrid(ys, xs, indexing="ij")
        out.append(torch.stack([x, y, x + ww, y + wh], -1).reshape(-1, 4))
    return torch.cat(out) if out else torch.zeros(0, 4)
