"""KCF: a kernelized correlation filter single-object tracker (Henriques et al., TPAMI 2015).

The filter is ridge regression over *every cyclic shift* of one image patch ``x``: the samples
form a circulant matrix, which the DFT diagonalises, so training and detection are elementwise
products in the Fourier domain (``^`` is the 2-D DFT, ``⊙`` elementwise, ``*`` conjugation):

    kernel correlation   k^{xz} = exp(−(‖x‖² + ‖z‖² − 2 F⁻¹(Σ_c x̂_c* ⊙ ẑ_c)) / (σ² · n))
    training             α̂ = ŷ / (k̂^{xx} + λ)
    detection            response = F⁻¹(k̂^{xz} ⊙ α̂)   →  the peak is the target's shift

``y`` is a Gaussian label peaked at zero shift, ``n`` the number of feature values. Features are
raw grey pixels (zero-mean, multiplied by a cosine window so the cyclic wrap is smooth). The patch
is ``1 + padding`` times the target; the model is updated by linear interpolation each frame.
HOG features and scale search are not implemented (the target's size stays fixed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_float, check_positive

__all__ = ["KCF", "gaussian_correlation"]


def gaussian_correlation(xf: np.ndarray, zf: np.ndarray, sigma: float, size: int) -> np.ndarray:
    """Fourier transform of the Gaussian kernel between ``z`` and every cyclic shift of ``x``.

    ``xf, zf`` are 2-D DFTs of (H, W, C) features (over axes 0, 1); ``size`` the number of feature
    values ``H·W·C``. Returns ``k̂^{xz}`` of shape (H, W).
    """
    h, w = xf.shape[:2]
    xx = np.sum(np.abs(xf) ** 2) / (h * w)  # Parseval: ‖x‖²
    zz = np.sum(np.abs(zf) ** 2) / (h * w)
    cross = np.real(np.fft.ifft2(np.sum(np.conj(xf) * zf, axis=2), axes=(0, 1)))
    d2 = np.maximum(xx + zz - 2.0 * cross, 0.0) / size
    return np.fft.fft2(np.exp(-d2 / sigma**2))


def _crop(frame: np.ndarray, center: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Patch of ``size`` (h, w) centred on ``center`` (y, x), edges replicated outside the frame."""
    top_left = np.floor(center - size / 2).astype(np.int64)
    ys = np.clip(top_left[0] + np.arange(size[0]), 0, frame.shape[0] - 1)
    xs = np.clip(top_left[1] + np.arange(size[1]), 0, frame.shape[1] - 1)
    return frame[np.ix_(ys, xs)]


class KCF:
    """Single-object tracker: ``init(frame, box)`` then ``update(frame) -> box`` per frame.

    Boxes are ``(x, y, w, h)``; frames are grey ``(H, W)`` or colour ``(H, W, 3)`` arrays.

    Parameters follow the paper's raw-pixel settings: ``padding=1.5``, ``lambda_=1e-4``,
    ``sigma=0.2`` (kernel bandwidth), ``output_sigma_factor=0.1`` (label width relative to the
    target), ``interp_factor=0.075`` (model update rate).
    """

    def __init__(
        self,
        padding: float = 1.5,
        lambda_: float = 1e-4,
        sigma: float = 0.2,
        output_sigma_factor: float = 0.1,
        interp_factor: float = 0.075,
    ):
        self.padding = check_float("padding", padding, min=0.0)
        self.lambda_ = check_positive("lambda_", lambda_)
        self.sigma = check_positive("sigma", sigma)
        self.output_sigma_factor = check_positive("output_sigma_factor", output_sigma_factor)
        self.interp_factor = check_float("interp_factor", interp_factor, min=0.0, max=1.0)
        self.center: np.ndarray | None = None

    @staticmethod
    def _grey(frame: Any) -> np.ndarray:
        f = np.asarray(frame, dtype=np.float64)
        if f.ndim == 3:
            f = f.mean(axis=2)
        if f.ndim != 2 or f.size == 0:
            raise ValueError(f"frame must be an (H, W) or (H, W, C) image, got shape {np.shape(frame)}")
        return f

    def _features(self, frame: np.ndarray) -> np.ndarray:
        patch = _crop(frame, self.center, self.window)
        patch = patch - patch.mean()
        scale = np.abs(patch).max()
        if scale > 0:
            patch = patch / scale
        return (patch * self.cos_window)[:, :, None]

    def init(self, frame: Any, box: Any) -> KCF:
        frame = self._grey(frame)
        box = np.asarray(box, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.isfinite(box).all():
            raise ValueError(f"box must be (x, y, w, h) with finite values, got {box.tolist()}")
        if box[2] <= 0 or box[3] <= 0:
            raise ValueError(f"box must have positive width and height, got {box.tolist()}")
        self.target = box[[3, 2]]  # (h, w)
        self.center = box[[1, 0]] + self.target / 2  # (y, x)
        self.window = np.maximum(np.floor(self.target * (1 + self.padding)), 2).astype(np.int64)
        h, w = self.window
        self.cos_window = np.outer(np.hanning(h), np.hanning(w))
        # Gaussian label, peak moved to (0, 0) so that zero shift means "no motion"
        s = np.sqrt(self.target.prod()) * self.output_sigma_factor
        ys = np.arange(h) - h // 2
        xs = np.arange(w) - w // 2
        y = np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2) / s**2)
        self.yf = np.fft.fft2(np.roll(y, (-(h // 2), -(w // 2)), axis=(0, 1)))
        self.model_xf, self.model_alphaf = self._train(frame)
        return self

    def _train(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self._features(frame)
        xf = np.fft.fft2(x, axes=(0, 1))
        kf = gaussian_correlation(xf, xf, self.sigma, x.size)
        return xf, self.yf / (kf + self.lambda_)

    def update(self, frame: Any) -> np.ndarray:
        """Locate the target in ``frame``; returns its box ``(x, y, w, h)``."""
        if self.center is None:
            raise RuntimeError("call init(frame, box) before update(frame)")
        frame = self._grey(frame)
        z = self._features(frame)
        zf = np.fft.fft2(z, axes=(0, 1))
        kzf = gaussian_correlation(self.model_xf, zf, self.sigma, z.size)
        response = np.real(np.fft.ifft2(self.model_alphaf * kzf))
        peak = np.array(np.unravel_index(np.argmax(response), response.shape))
        # shifts past half the window wrap around to negative ones
        shift = np.where(peak > self.window / 2, peak - self.window, peak)
        self.center = self.center + shift
        xf, alphaf = self._train(frame)
        a = self.interp_factor
        self.model_xf = (1 - a) * self.model_xf + a * xf
        self.model_alphaf = (1 - a) * self.model_alphaf + a * alphaf
        return self.box

    @property
    def box(self) -> np.ndarray:
        yx = self.center - self.target / 2
        return np.array([yx[1], yx[0], self.target[1], self.target[0]])
