"""LinearClassifier (softmax vs sklearn LogisticRegression, hinge vs a loop) and hand-crafted features."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from deepnotes.classic import (
    FeatureClassifier,
    LinearClassifier,
    NotFittedError,
    color_histogram,
    gradient_orientation_histogram,
    handcrafted_features,
)
from deepnotes.losses import multiclass_svm_loss
from tests._reference import assert_same_maths

D = torch.float64


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


def test_softmax_matches_logistic_regression(digits):
    X, y = digits
    alpha = 1e-2
    ours = LinearClassifier("softmax", alpha=alpha).fit(X, y)
    # sklearn minimizes C·Σ loss + ½‖W‖²: the same optimum as mean loss + α/2‖W‖² when C = 1/(α n)
    ref = LogisticRegression(C=1 / (alpha * len(X)), tol=1e-12, max_iter=10_000).fit(X, y)
    # two L-BFGS runs stop at slightly different points near the same optimum: 1e-5, not 1e-7
    torch.testing.assert_close(ours.coef_, torch.from_numpy(ref.coef_), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.predict_proba(X), torch.from_numpy(ref.predict_proba(X)), rtol=1e-5, atol=1e-5)
    assert ours.predict(X).tolist() == ref.predict(X).tolist()


def test_hinge_loss_matches_loop():
    g = torch.Generator().manual_seed(0)
    s, y = torch.randn(20, 5, generator=g, dtype=D), torch.randint(0, 5, (20,), generator=g)
    ref = sum(max(0.0, float(s[i, j] - s[i, y[i]] + 1.0)) for i in range(20) for j in range(5) if j != y[i]) / 20
    assert_same_maths(multiclass_svm_loss(s, y), torch.tensor(ref, dtype=D))


def test_svm_fits_and_templates_have_image_shape(digits):
    X, y = digits
    imgs = torch.from_numpy(X).reshape(-1, 1, 8, 8)
    clf = LinearClassifier("svm", alpha=1e-3, max_iter=100).fit(imgs[:150], y[:150])
    assert clf.score(imgs[:150], y[:150]) > 0.95
    assert clf.templates_.shape == (10, 1, 8, 8)
    assert_same_maths(clf.templates_.flatten(1), clf.coef_)
    # at the optimum the hinge objective is below its value at W = 0 (margin · (C − 1))
    assert clf.loss_ < 9.0


def _np_hist(img, bins):
    return np.concatenate([np.histogram(ch, bins=bins, range=(0.0, 1.0))[0] / ch.size for ch in img])


def test_color_histogram_matches_numpy():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 6, 5, generator=g, dtype=D)
    x[0, 0, 0, 0], x[1, 1, 1, 1] = 1.0, 0.0  # edges go in the first and last bins
    ours = color_histogram(x, bins=7)
    ref = torch.from_numpy(np.stack([_np_hist(img, 7) for img in x.numpy()]))
    assert_same_maths(ours, ref)
    raw = color_histogram(x * 2 - 0.5, bins=4, density=False)  # out-of-range pixels are not counted
    ref_raw = [np.histogram(ch, bins=4, range=(0.0, 1.0))[0] for img in (x * 2 - 0.5).numpy() for ch in img]
    assert_same_maths(raw.reshape(-1, 4), torch.tensor(np.stack(ref_raw), dtype=D))


def _hog_loop(img, bins, cells, signed=False):
    gray = img.mean(0)
    h, w = gray.shape
    hist = np.zeros((cells[0], cells[1], bins))
    period = 360.0 if signed else 180.0
    for r in range(h):
        for c in range(w):
            gy = (gray[r + 1, c] - gray[r - 1, c]) / 2 if 0 < r < h - 1 else 0.0
            gx = (gray[r, c + 1] - gray[r, c - 1]) / 2 if 0 < c < w - 1 else 0.0
            ang = np.degrees(np.arctan2(gy, gx)) % period
            b = min(int(ang / period * bins), bins - 1)
            hist[min(r // (h // cells[0]), cells[0] - 1), min(c // (w // cells[1]), cells[1] - 1), b] += np.hypot(gx, gy)
    v = hist.ravel()
    return v / max(np.linalg.norm(v), 1e-12)


@pytest.mark.parametrize("cells,signed", [((1, 1), False), ((2, 3), False), ((2, 2), True)])
def test_orientation_histogram_matches_loop(cells, signed):
    x = torch.rand(3, 2, 9, 10, generator=torch.Generator().manual_seed(2), dtype=D)
    ours = gradient_orientation_histogram(x, bins=6, cells=cells, signed=signed)
    ref = torch.from_numpy(np.stack([_hog_loop(img, 6, cells, signed) for img in x.numpy()]))
    assert_same_maths(ours, ref)
    assert torch.equal(gradient_orientation_histogram(torch.zeros(1, 1, 5, 5)), torch.zeros(1, 36))


def test_feature_pipeline_on_digits(digits):
    X, y = digits
    imgs = torch.from_numpy(X).reshape(-1, 1, 8, 8)
    model = FeatureClassifier(lambda im: handcrafted_features(im, 4, 8, (2, 2)), LinearClassifier(alpha=1e-3))
    model.fit(imgs[:200], y[:200])
    # weak but far above chance (10%) — the extractor is fixed and knows nothing about digits
    assert model.score(imgs[200:], y[200:]) > 0.5


def test_linear_and_feature_errors():
    with pytest.raises(ValueError, match="loss"):
        LinearClassifier("hinge")
    with pytest.raises(ValueError, match="alpha"):
        LinearClassifier(alpha=-1.0)
    with pytest.raises(ValueError, match="y"):
        LinearClassifier().fit(np.zeros((3, 2)), [1, 1, 1])
    with pytest.raises(NotFittedError, match="fit"):
        LinearClassifier().predict(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="images"):
        color_histogram(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="value_range"):
        color_histogram(torch.rand(1, 1, 4, 4), value_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="cells"):
        gradient_orientation_histogram(torch.rand(1, 1, 4, 4), cells=5)
    with pytest.raises(TypeError, match="extractor"):
        FeatureClassifier(extractor=3)
    with pytest.raises(ValueError, match="features"):
        FeatureClassifier(lambda im: im).fit(torch.rand(2, 1, 2, 2), [0, 1])
