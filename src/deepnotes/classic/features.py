"""Hand-crafted image features and a frozen-extractor + linear-classifier pipeline.

* :func:`color_histogram` — per-channel histogram of pixel values (what colours, not where).
* :func:`gradient_orientation_histogram` — HOG-style: central-difference gradients, each pixel
  votes its gradient magnitude into an orientation bin, per cell of a grid (what edges, roughly
  where). No block normalization; the whole vector is L2-normalized.

:class:`FeatureClassifier` computes fixed features (nothing in the extractor is learned) and
fits a :class:`~deepnotes.classic.linear.LinearClassifier` on them — the pre-deep-learning
pipeline that end-to-end CNNs replaced.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from deepnotes.classic.linear import LinearClassifier
from deepnotes.core.checks import as_tensor, check_float, check_int, check_tensor, check_type


def _images(images: Any) -> torch.Tensor:
    x = as_tensor("images", images)
    if not x.is_floating_point():
        x = x.to(torch.float64)
    check_tensor("images", x, ndim=4, finite=True, nonempty=True)
    return x


def color_histogram(
    images: Any, bins: int = 8, value_range: tuple[float, float] = (0.0, 1.0), density: bool = True
) -> torch.Tensor:
    """Per-channel histograms, concatenated: ``(N, C, H, W) → (N, C·bins)``.

    Bins are equal-width over ``value_range``; the last bin includes its right edge and values
    outside the range are not counted (``numpy.histogram``'s rules). With ``density`` each
    channel's histogram sums to 1 (0 when no pixel falls in the range).
    """
    x = _images(images)
    bins = check_int("bins", bins, min=1)
    lo = check_float("value_range[0]", value_range[0])
    hi = check_float("value_range[1]", value_range[1])
    if hi <= lo:
        raise ValueError(f"value_range must be increasing, got {value_range}")
    n, c = x.shape[:2]
    v = x.reshape(n, c, -1)
    idx = ((v - lo) / (hi - lo) * bins).floor().long()
    idx = torch.where(v == hi, bins - 1, idx)
    inside = (v >= lo) & (v <= hi)
    counts = torch.zeros(n, c, bins + 1, dtype=x.dtype, device=x.device)
    # out-of-range pixels go to an extra bin that is dropped
    counts.scatter_add_(2, torch.where(inside, idx, bins), torch.ones_like(v))
    counts = counts[..., :bins]
    if density:
        counts = counts / counts.sum(2, keepdim=True).clamp_min(1)
    return counts.reshape(n, c * bins)


def image_gradients(gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences ``(x[i+1] − x[i−1]) / 2`` of ``(N, H, W)``; 0 on the border rows/columns."""
    gy = torch.zeros_like(gray)
    gx = torch.zeros_like(gray)
    gy[:, 1:-1, :] = (gray[:, 2:, :] - gray[:, :-2, :]) / 2
    gx[:, :, 1:-1] = (gray[:, :, 2:] - gray[:, :, :-2]) / 2
    return gy, gx


def gradient_orientation_histogram(
    images: Any, bins: int = 9, cells: int | tuple[int, int] = (2, 2), signed: bool = False
) -> torch.Tensor:
    """HOG-style features: magnitude-weighted orientation histograms over a grid of cells.

    Parameters
    ----------
    images : Tensor[N, C, H, W]
        Channels are averaged to grey first.
    bins : int
        Orientation bins over [0°, 180°) (unsigned) or [0°, 360°) (``signed``).
    cells : int or (int, int)
        Grid of cells; with ``s = H // ch`` cell row ``i`` covers image rows ``[i·s, (i+1)·s)``,
        the last one extending to ``H`` (same for columns).

    Returns
    -------
    Tensor[N, ch·cw·bins]
        L2-normalized (a blank image gives zeros).
    """
    x = _images(images)
    bins = check_int("bins", bins, min=1)
    if isinstance(cells, int):
        cells = (cells, cells)
    ch, cw = (check_int(f"cells[{i}]", v, min=1) for i, v in enumerate(cells))
    n, _, h, w = x.shape
    if ch > h or cw > w:
        raise ValueError(f"cells ({ch}, {cw}) must not exceed the image size ({h}, {w})")
    gy, gx = image_gradients(x.mean(1))
    mag = torch.sqrt(gx * gx + gy * gy)
    period = 2 * math.pi if signed else math.pi
    ang = torch.remainder(torch.atan2(gy, gx), period)
    b = (ang / period * bins).floor().long().clamp_(0, bins - 1)
    # cell index of each pixel, then one scatter for (cell, bin) pairs
    rows = torch.div(torch.arange(h, device=x.device), h // ch, rounding_mode="floor").clamp_(max=ch - 1)
    cols = torch.div(torch.arange(w, device=x.device), w // cw, rounding_mode="floor").clamp_(max=cw - 1)
    cell = rows[:, None] * cw + cols[None, :]
    slot = (cell.unsqueeze(0) * bins + b).reshape(n, -1)
    hist = torch.zeros(n, ch * cw * bins, dtype=x.dtype, device=x.device)
    hist.scatter_add_(1, slot, mag.reshape(n, -1))
    return hist / hist.norm(dim=1, keepdim=True).clamp_min(1e-12)


def handcrafted_features(images: Any, color_bins: int = 8, orientation_bins: int = 9, cells=(2, 2)) -> torch.Tensor:
    """Colour histogram and gradient-orientation histogram, concatenated."""
    return torch.cat(
        [color_histogram(images, color_bins), gradient_orientation_histogram(images, orientation_bins, cells)], dim=1
    )


class FeatureClassifier:
    """A frozen feature extractor followed by a linear classifier.

    Parameters
    ----------
    extractor : callable
        ``images (N, C, H, W) → features (N, D)``; never trained (default :func:`handcrafted_features`).
    classifier : LinearClassifier, optional
    """

    def __init__(self, extractor: Callable[[Any], torch.Tensor] | None = None, classifier: LinearClassifier | None = None):
        self.extractor = handcrafted_features if extractor is None else extractor
        if not callable(self.extractor):
            raise TypeError("extractor must be callable")
        self.classifier = LinearClassifier() if classifier is None else check_type("classifier", classifier, LinearClassifier)

    def _features(self, images: Any) -> torch.Tensor:
        feats = self.extractor(images)
        return check_tensor("features", feats, ndim=2, finite=True)

    def fit(self, images: Any, y: Any) -> FeatureClassifier:
        self.classifier.fit(self._features(images), y)
        return self

    def predict(self, images: Any) -> torch.Tensor:
        return self.classifier.predict(self._features(images))

    def score(self, images: Any, y: Any) -> float:
        return self.classifier.score(self._features(images), y)

