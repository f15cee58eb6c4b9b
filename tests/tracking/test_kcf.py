"""KCF: the Fourier-domain kernel correlation against a loop over shifts; tracking a moving patch."""

from __future__ import annotations

import numpy as np
import pytest

from deepnotes.tracking.kcf import KCF, gaussian_correlation


@pytest.mark.parametrize("seed", range(3))
def test_gaussian_correlation_equals_loop_over_cyclic_shifts(seed):
    g = np.random.default_rng(seed)
    h, w, c = 7, 9, 2
    x, z = g.normal(size=(h, w, c)), g.normal(size=(h, w, c))
    sigma = 2.5
    expected = np.empty((h, w))
    for dy in range(h):
        for dx in range(w):
            # kernel between x and z shifted back by (dy, dx)
            shifted = np.roll(z, (-dy, -dx), axis=(0, 1))
            expected[dy, dx] = np.exp(-np.sum((x - shifted) ** 2) / (sigma**2 * x.size))
    kf = gaussian_correlation(np.fft.fft2(x, axes=(0, 1)), np.fft.fft2(z, axes=(0, 1)), sigma, x.size)
    np.testing.assert_allclose(np.real(np.fft.ifft2(kf)), expected, rtol=1e-10, atol=1e-12)


def _scene(t: int, g: np.random.Generator, texture: np.ndarray, velocity=(1.5, 2.0)):
    frame = g.normal(0.0, 0.05, (120, 160))
    y, x = int(round(30 + velocity[0] * t)), int(round(20 + velocity[1] * t))
    frame[y : y + 20, x : x + 16] += texture
    return frame, np.array([x, y, 16, 20], float)


def test_kcf_follows_a_moving_textured_patch():
    g = np.random.default_rng(0)
    texture = g.uniform(0.3, 1.0, (20, 16))
    frame, box = _scene(0, g, texture)
    tracker = KCF().init(frame, box)
    errors = []
    for t in range(1, 40):
        frame, truth = _scene(t, g, texture)
        errors.append(np.abs(tracker.update(frame)[:2] - truth[:2]).max())
    assert max(errors) <= 1.0


def test_kcf_update_before_init_raises():
    with pytest.raises(RuntimeError, match="call init"):
        KCF().update(np.zeros((10, 10)))


def test_kcf_rejects_non_positive_box():
    with pytest.raises(ValueError, match="box must have positive width and height"):
        KCF().init(np.zeros((10, 10)), [1, 1, 0, 4])


def test_kcf_rejects_bad_frame():
    with pytest.raises(ValueError, match=r"frame must be an \(H, W\)"):
        KCF().init(np.zeros(10), [1, 1, 2, 2])
