"""Box encodings: the R-CNN deltas ``(tx, ty, tw, th)`` and YOLO's grid offsets.

R-CNN (Fast/Faster R-CNN, torchvision's ``BoxCoder``): a target box (x, y, w, h as centre and
size) relative to a proposal (xa, ya, wa, ha) is

    tx = wx (x − xa) / wa     ty = wy (y − ya) / ha
    tw = ww log(w / wa)       th = wh log(h / ha)

and decoding inverts it, with ``tw, th`` clamped at ``bbox_xform_clip`` so ``exp`` cannot
overflow. YOLO (v2/v3) predicts the centre inside its grid cell through a sigmoid and the size
relative to an anchor prior:

    bx = (σ(tx) + col) · stride     by = (σ(ty) + row) · stride
    bw = pw · exp(tw)               bh = ph · exp(th)

Example
-------
>>> import torch
>>> coder = BoxCoder(weights=(1., 1., 1., 1.))
>>> coder.encode(torch.tensor([[0., 0., 4., 4.]]), torch.tensor([[0., 0., 2., 2.]]))
tensor([[0.5000, 0.5000, 0.6931, 0.6931]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from deepnotes.core.checks import check_float, check_tensor, check_type
from deepnotes.detection._validate import check_boxes


class BoxCoder:
    """Encode boxes relative to proposals and decode them back (torchvision's detection ``BoxCoder``).

    Parameters
    ----------
    weights : the ``(wx, wy, ww, wh)`` multipliers; Fast R-CNN's box head uses ``(10, 10, 5, 5)``
        (the default), the RPN ``(1, 1, 1, 1)``.
    bbox_xform_clip : upper clamp of the decoded ``tw, th``; ``log(1000/16)`` lets a box grow at
        most 62.5× its proposal.
    """

    def __init__(
        self,
        weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
        bbox_xform_clip: float = math.log(1000.0 / 16),
    ) -> None:
        check_type("weights", weights, (tuple, list))
        if len(weights) != 4:
            raise ValueError(f"weights must have 4 entries (wx, wy, ww, wh), got {len(weights)}")
        self.weights = tuple(
            check_float(f"weights[{i}]", w, min=0.0, min_inclusive=False)
            for i, w in enumerate(weights)
        )
        self.bbox_xform_clip = check_float("bbox_xform_clip", bbox_xform_clip)

    def encode(self, reference_boxes: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
        """Deltas of ``reference_boxes (Tensor[N, 4])`` (targets) w.r.t. ``proposals (Tensor[N, 4])`` → ``Tensor[N, 4]``.

        Proposals need positive width and height; a target of zero size gives ``-inf`` in
        ``tw``/``th`` (the log of 0), as in torchvision.
        """
        check_boxes("reference_boxes", reference_boxes)
        check_boxes("proposals", proposals)
        if reference_boxes.shape[0] != proposals.shape[0]:
            raise ValueError(
                f"reference_boxes and proposals must have the same length, got {reference_boxes.shape[0]} "
                f"and {proposals.shape[0]}"
            )
        if bool(
            ((proposals[:, 2] <= proposals[:, 0]) | (proposals[:, 3] <= proposals[:, 1])).any()
        ):
            raise ValueError("proposals must have positive width and height to encode against")
        wx, wy, ww, wh = torch.as_tensor(self.weights, dtype=reference_boxes.dtype).unbind()
        pa = proposals[:, :, None].unbind(1)  # four (N, 1) columns
        ta = reference_boxes[:, :, None].unbind(1)
        wa, ha = pa[2] - pa[0], pa[3] - pa[1]
        xa, ya = pa[0] + 0.5 * wa, pa[1] + 0.5 * ha
        w, h = ta[2] - ta[0], ta[3] - ta[1]
        x, y = ta[0] + 0.5 * w, ta[1] + 0.5 * h
        return torch.cat(
            (
                wx * (x - xa) / wa,
                wy * (y - ya) / ha,
                ww * torch.log(w / wa),
                wh * torch.log(h / ha),
            ),
            dim=1,
        )

    def decode(self, rel_codes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Apply deltas ``rel_codes (Tensor[N, 4K])`` to ``boxes (Tensor[N, 4])`` → ``Tensor[N, 4K]`` (xyxy).

        ``K > 1`` decodes one box per class from the same proposal, as Fast R-CNN's head does.
        """
        check_tensor("rel_codes", rel_codes, ndim=2, floating=True, finite=True)
        check_boxes("boxes", boxes)
        if rel_codes.shape[1] % 4 or rel_codes.shape[0] != boxes.shape[0]:
            raise ValueError(
                f"rel_codes must have shape (N, 4K) with N = len(boxes) = {boxes.shape[0]}, got {tuple(rel_codes.shape)}"
            )
        boxes = boxes.to(rel_codes.dtype)
        wa, ha = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        xa, ya = boxes[:, 0] + 0.5 * wa, boxes[:, 1] + 0.5 * ha
        wx, wy, ww, wh = self.weights
        dx, dy = rel_codes[:, 0::4] / wx, rel_codes[:, 1::4] / wy
        dw = torch.clamp(rel_codes[:, 2::4] / ww, max=self.bbox_xform_clip)
        dh = torch.clamp(rel_codes[:, 3::4] / wh, max=self.bbox_xform_clip)
        x, y = dx * wa[:, None] + xa[:, None], dy * ha[:, None] + ya[:, None]
        half_w, half_h = 0.5 * (torch.exp(dw) * wa[:, None]), 0.5 * (torch.exp(dh) * ha[:, None])
        return torch.stack((x - half_w, y - half_h, x + half_w, y + half_h), dim=2).flatten(1)


def _check_anchors(name: str, anchors: torch.Tensor, n: int | None) -> torch.Tensor:
    check_tensor(name, anchors, ndim=2, floating=True, finite=True)
    if anchors.shape[1] != 2 or (n is not None and anchors.shape[0] != n):
        want = "(A, 2)" if n is None else f"({n}, 2)"
        raise ValueError(
            f"{name} must have shape {want} (width, height), got {tuple(anchors.shape)}"
        )
    if bool((anchors <= 0).any()):
        raise ValueError(f"{name} must have positive widths and heights")
    return anchors


def yolo_decode(codes: torch.Tensor, anchors: torch.Tensor, stride: float) -> torch.Tensor:
    """Decode a YOLO head's raw outputs ``codes (Tensor[H, W, A, 4])`` into xyxy boxes ``Tensor[H, W, A, 4]``.

    ``anchors (Tensor[A, 2])`` are the prior ``(pw, ph)`` in pixels; cell ``(row, col)`` covers
    ``[col·stride, (col+1)·stride) × [row·stride, (row+1)·stride)``.
    """
    check_tensor("codes", codes, ndim=4, floating=True, finite=True)
    stride = check_float("stride", stride, min=0.0, min_inclusive=False)
    _check_anchors("anchors", anchors, None)
    h, w, a, four = codes.shape
    if four != 4 or a != anchors.shape[0]:
        raise ValueError(
            f"codes must have shape (H, W, A={anchors.shape[0]}, 4), got {tuple(codes.shape)}"
        )
    rows = torch.arange(h, dtype=codes.dtype)[:, None, None]
    cols = torch.arange(w, dtype=codes.dtype)[None, :, None]
    cx = (torch.sigmoid(codes[..., 0]) + cols) * stride
    cy = (torch.sigmoid(codes[..., 1]) + rows) * stride
    bw = anchors[:, 0].to(codes.dtype) * torch.exp(codes[..., 2])
    bh = anchors[:, 1].to(codes.dtype) * torch.exp(codes[..., 3])
    return torch.stack((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), dim=-1)


def yolo_encode(
    boxes: torch.Tensor, anchors: torch.Tensor, stride: float, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cell responsible for each box and the codes that decode to it.

    ``boxes (Tensor[N, 4])`` xyxy with positive sizes, ``anchors (Tensor[N, 2])`` the prior of
    each box. Returns ``cells (LongTensor[N, 2])`` as ``(row, col)`` (the cell holding the box
    centre) and ``codes (Tensor[N, 4])``; the centre offset is clamped to ``[eps, 1 − eps]``
    before the logit, since a sigmoid never reaches 0 or 1.
    """
    check_boxes("boxes", boxes)
    if not boxes.is_floating_point():
        raise TypeError(f"boxes must be a floating-point tensor, got dtype {boxes.dtype}")
    stride = check_float("stride", stride, min=0.0, min_inclusive=False)
    eps = check_float("eps", eps, min=0.0, max=0.5, min_inclusive=False, max_inclusive=False)
    _check_anchors("anchors", anchors, boxes.shape[0])
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if bool(((w <= 0) | (h <= 0)).any()):
        raise ValueError("boxes must have positive width and height to encode (log of the size)")
    gx, gy = (boxes[:, 0] + boxes[:, 2]) / 2 / stride, (boxes[:, 1] + boxes[:, 3]) / 2 / stride
    col, row = gx.floor(), gy.floor()
    tx = torch.logit((gx - col).clamp(eps, 1 - eps))
    ty = torch.logit((gy - row).clamp(eps, 1 - eps))
    anchors = anchors.to(boxes.dtype)
    codes = torch.stack((tx, ty, torch.log(w / anchors[:, 0]), torch.log(h / anchors[:, 1])), dim=1)
    return torch.stack((row, col), dim=1).long(), codes
