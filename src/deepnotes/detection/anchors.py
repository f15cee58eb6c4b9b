"""Anchors: a grid of prior boxes (scales × aspect ratios per location) and k-means anchor priors.

:class:`AnchorGenerator` places, at every cell of each feature map, one box per (ratio, size)
pair, centred on the cell's top-left pixel in image coordinates (torchvision's convention):

    h = size · √ratio,  w = size / √ratio,  cell box = round([−w, −h, w, h] / 2)
    anchor = cell box + (col · stride_w, row · stride_h, col · stride_w, row · stride_h)

with ``stride = image size // feature size`` per axis. Order: level, then row, then column,
then ratio-major over (ratio, size), as in torchvision.

:func:`kmeans_anchors` clusters the ``(w, h)`` of ground-truth boxes into ``k`` priors with the
distance ``d = 1 − IoU`` (YOLOv2), where boxes are compared as if they shared a corner, so a
big box is not penalized for being big as with the Euclidean distance.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepnotes.core.checks import check_choice, check_int, check_tensor, check_type
from deepnotes.core.seeding import make_generator


def _pairs(name: str, value) -> tuple[int, int]:
    check_type(name, value, (tuple, list, torch.Size))
    if len(value) != 2:
        raise ValueError(f"{name} must be a (height, width) pair, got {value!r}")
    return check_int(f"{name}[0]", value[0], min=1), check_int(f"{name}[1]", value[1], min=1)


class AnchorGenerator:
    """Anchors for one image, level by level (torchvision's ``AnchorGenerator`` for one image).

    Parameters
    ----------
    sizes : one tuple of sizes (pixels) per feature level
    aspect_ratios : one tuple of ratios ``h / w`` per feature level (same number of levels)
    """

    def __init__(
        self,
        sizes: Sequence[Sequence[float]] = ((128, 256, 512),),
        aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),),
    ) -> None:
        check_type("sizes", sizes, (tuple, list))
        check_type("aspect_ratios", aspect_ratios, (tuple, list))
        if not isinstance(sizes[0], (tuple, list)):  # one level given flat, as torchvision allows
            sizes = tuple((s,) for s in sizes)
        if not isinstance(aspect_ratios[0], (tuple, list)):
            aspect_ratios = (aspect_ratios,) * len(sizes)
        if len(sizes) != len(aspect_ratios):
            raise ValueError(
                f"sizes and aspect_ratios must have one entry per level, got {len(sizes)} and {len(aspect_ratios)}"
            )
        for name, levels in (("sizes", sizes), ("aspect_ratios", aspect_ratios)):
            for lvl in levels:
                if len(lvl) == 0 or any(not (float(v) > 0) for v in lvl):
                    raise ValueError(
                        f"{name} must hold non-empty tuples of positive numbers, got {lvl!r}"
                    )
        self.sizes = tuple(tuple(s) for s in sizes)
        self.aspect_ratios = tuple(tuple(a) for a in aspect_ratios)

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios)]

    @staticmethod
    def cell_anchors(
        sizes: Sequence[float], aspect_ratios: Sequence[float], dtype=torch.float32
    ) -> torch.Tensor:
        """The ``(len(ratios)·len(sizes), 4)`` boxes centred on (0, 0), rounded to whole pixels."""
        scales = torch.as_tensor(sizes, dtype=dtype)
        ratios = torch.as_tensor(aspect_ratios, dtype=dtype)
        h_ratio = torch.sqrt(ratios)
        w_ratio = 1 / h_ratio
        ws = (w_ratio[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratio[:, None] * scales[None, :]).reshape(-1)
        return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()

    def __call__(
        self,
        image_size: Sequence[int],
        feature_sizes: Sequence[Sequence[int]],
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """All anchors of an image ``image_size = (H, W)`` with one ``(h, w)`` per level → ``Tensor[Σ h·w·A, 4]``."""
        img_h, img_w = _pairs("image_size", image_size)
        check_type("feature_sizes", feature_sizes, (tuple, list))
        if len(feature_sizes) != len(self.sizes):
            raise ValueError(
                f"feature_sizes must have one (h, w) per level ({len(self.sizes)}), got {len(feature_sizes)}"
            )
        out = []
        for level, fs in enumerate(feature_sizes):
            fh, fw = _pairs(f"feature_sizes[{level}]", fs)
            sh, sw = img_h // fh, img_w // fw
            shift_x = torch.arange(fw, dtype=torch.int32) * sw
            shift_y = torch.arange(fh, dtype=torch.int32) * sh
            yy, xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
            shifts = torch.stack((xx.reshape(-1), yy.reshape(-1)) * 2, dim=1)
            base = self.cell_anchors(self.sizes[level], self.aspect_ratios[level], dtype)
            out.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))
        return torch.cat(out)


def wh_iou(wh1: torch.Tensor, wh2: torch.Tensor) -> torch.Tensor:
    """IoU of ``(w, h)`` boxes placed at a common corner: ``Tensor[N, 2]``, ``Tensor[K, 2]`` → ``Tensor[N, K]``."""
    inter = torch.min(wh1[:, None, 0], wh2[None, :, 0]) * torch.min(
        wh1[:, None, 1], wh2[None, :, 1]
    )
    union = (wh1[:, 0] * wh1[:, 1])[:, None] + (wh2[:, 0] * wh2[:, 1])[None, :] - inter
    return inter / union


def kmeans_anchors(
    wh: torch.Tensor, k: int = 5, distance: str = "iou", max_iter: int = 300, seed: int = 0
) -> tuple[torch.Tensor, float]:
    """Cluster box sizes ``wh (Tensor[N, 2])`` into ``k`` anchors; returns ``(anchors, mean best IoU)``.

    ``distance="iou"`` uses ``1 − IoU`` (YOLOv2), ``"euclidean"`` plain k-means on ``(w, h)``.
    Both start from k-means++ seeding under their own distance and update each centre to the
    mean of its boxes until the assignment stops changing. The anchors come back sorted by
    area; the score is the mean over boxes of the best IoU with any anchor (higher is better).
    """
    check_tensor("wh", wh, ndim=2, floating=True, finite=True)
    if wh.shape[1] != 2 or bool((wh <= 0).any()):
        raise ValueError(
            f"wh must have shape (N, 2) with positive widths and heights, got {tuple(wh.shape)}"
        )
    k = check_int("k", k, min=1, max=wh.shape[0])
    check_choice("distance", distance, ("iou", "euclidean"))
    max_iter = check_int("max_iter", max_iter, min=1)
    centres = seed_centres(wh, k, distance, make_generator(seed))
    assign = None
    for _ in range(max_iter):
        new = _distance(wh, centres, distance).argmin(1)
        if assign is not None and torch.equal(new, assign):
            break
        assign = new
        counts = torch.bincount(assign, minlength=k).to(wh.dtype)
        sums = torch.zeros_like(centres).index_add_(0, assign, wh)
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
    centres = centres[torch.argsort(centres[:, 0] * centres[:, 1])]
    return centres, float(wh_iou(wh, centres).max(1).values.mean())


def _distance(x: torch.Tensor, c: torch.Tensor, distance: str) -> torch.Tensor:
    return 1 - wh_iou(x, c) if distance == "iou" else torch.cdist(x, c) ** 2


def seed_centres(
    wh: torch.Tensor, k: int, distance: str, generator: torch.Generator
) -> torch.Tensor:
    """k-means++ seeding: each next centre is drawn with probability ∝ its distance to the nearest one."""
    centres = wh[torch.randint(wh.shape[0], (1,), generator=generator)]
    for _ in range(1, k):
        d = _distance(wh, centres, distance).min(1).values.clamp(min=0)
        p = d / d.sum() if float(d.sum()) > 0 else torch.full_like(d, 1 / len(d))
        centres = torch.cat([centres, wh[torch.multinomial(p, 1, generator=generator)]])
    return centres
