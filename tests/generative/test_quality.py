"""Fréchet distance against scipy.linalg.sqrtm, the Gaussian baseline, the sample-quality report, toy modes."""

import numpy as np
import pytest
import scipy.linalg
import torch

from deepnotes.generative import (
    digits_scorer,
    digits_tensors,
    feature_statistics,
    frechet_distance,
    gaussian_baseline,
    quality_report,
    sample_quality,
)
from deepnotes.generative.toy import modes_covered, ring_centers, ring_of_gaussians
from tests._reference import assert_same_maths

G = torch.Generator().manual_seed(0)


def _slow_frechet(mu1, c1, mu2, c2):
    covmean = scipy.linalg.sqrtm(c1 @ c2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean.real))


@pytest.mark.parametrize("d,n", [(3, 50), (12, 40), (20, 10)])  # the last: rank-deficient covariances
def test_frechet_distance_matches_scipy_sqrtm(d, n):
    a = torch.randn(n, d, generator=G, dtype=torch.float64) @ torch.randn(d, d, generator=G, dtype=torch.float64)
    b = 0.5 + torch.randn(n, d, generator=G, dtype=torch.float64)
    s1, s2 = feature_statistics(a), feature_statistics(b)
    want = _slow_frechet(*(t.numpy() for t in (*s1, *s2)))
    assert_same_maths(frechet_distance(*s1, *s2), torch.tensor(want, dtype=torch.float64), rtol=1e-6, atol=1e-6)


def test_frechet_distance_closed_forms():
    mu = torch.randn(4, generator=G, dtype=torch.float64)
    a = torch.randn(4, 4, generator=G, dtype=torch.float64)
    cov = a @ a.T
    assert abs(float(frechet_distance(mu, cov, mu, cov))) < 1e-10
    # equal covariances: the squared distance between the means
    assert_same_maths(frechet_distance(mu, cov, mu + 2, cov), torch.tensor(16.0, dtype=torch.float64))
    # 1-D: (μ1 − μ2)² + (σ1 − σ2)²
    one = frechet_distance(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([0.0]), torch.tensor([[9.0]]))
    assert abs(float(one) - 2.0) < 1e-6


def test_feature_statistics_matches_numpy():
    f = torch.randn(30, 5, generator=G, dtype=torch.float64)
    mu, cov = feature_statistics(f)
    assert_same_maths(mu, torch.from_numpy(f.numpy().mean(0)))
    assert_same_maths(cov, torch.from_numpy(np.cov(f.numpy(), rowvar=False)))


def test_gaussian_baseline_matches_the_data_moments():
    data = torch.rand(500, 1, 2, 2, generator=G, dtype=torch.float64) ** 2
    data[:, 0, 0, 0] = 0.25  # a constant pixel: a singular covariance
    draws = gaussian_baseline(data, 200_000, torch.Generator().manual_seed(0))
    assert draws.shape == (200_000, 1, 2, 2)
    m0, c0 = feature_statistics(data.flatten(1))
    m1, c1 = feature_statistics(draws.flatten(1))
    torch.testing.assert_close(m1, m0, rtol=0, atol=3e-3)  # SE ≈ 0.3/√2e5 ≈ 7e-4
    torch.testing.assert_close(c1, c0, rtol=0, atol=3e-3)


def test_real_digits_score_far_better_than_the_baseline():
    xtr = digits_tensors("train")[0]
    real = sample_quality(xtr[:1000])
    base = sample_quality(gaussian_baseline(xtr, 1000, torch.Generator().manual_seed(0)))
    assert real["confident_share"] > 0.9 and real["min_class_share"] > 0.05
    assert real["frechet"] * 10 < base["frechet"]
    assert sum(real["class_shares"]) == pytest.approx(1.0, abs=1e-3)


def test_scorer_classifies_test_digits():
    x, y = digits_tensors("test")
    acc = float((digits_scorer()(x).argmax(1) == y).float().mean())
    assert acc > 0.93
    assert digits_scorer() is digits_scorer()  # cached


def test_modes_covered_counts_components_and_quality():
    centers = ring_centers(8, 2.0)
    pts, comp = ring_of_gaussians(4000, std=0.05, generator=torch.Generator().manual_seed(0))
    covered, shares, hq = modes_covered(pts, centers, 0.05)
    assert covered == 8 and hq > 0.98
    assert torch.equal((shares * 4000).round().long().sum(), torch.tensor(int(round(hq * 4000))))
    collapsed = centers[:2].repeat(100, 1)  # everything on two modes
    assert modes_covered(collapsed, centers, 0.05)[0] == 2


# -- bad input -------------------------------------------------------------------------------------
def test_frechet_rejects_mismatched_dimensions():
    with pytest.raises(ValueError, match="one D"):
        frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3))


def test_feature_statistics_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2 rows"):
        feature_statistics(torch.zeros(1, 3))


def test_sample_quality_rejects_non_digit_shapes():
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        sample_quality(torch.rand(4, 3, 8, 8))


def test_sample_quality_rejects_non_finite_samples():
    x = torch.rand(4, 1, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="samples must be finite"):
        sample_quality(x)


def test_gaussian_baseline_rejects_non_positive_counts():
    with pytest.raises(ValueError, match="n must be >= 1"):
        gaussian_baseline(torch.rand(5, 2), 0)


def test_sample_quality_defaults_to_the_split_of_data_seed():
    """The default reference and scorer come from the split named by data_seed, whose test digits
    differ from seed 0's (so ignoring data_seed would change the distance)."""
    x = digits_tensors("train", 1)[0][:40]
    ours = sample_quality(x, data_seed=1)
    explicit = sample_quality(x, real=digits_tensors("test", 1)[0], scorer=digits_scorer(1))
    assert ours == explicit
    assert ours["frechet"] != sample_quality(x, data_seed=0)["frechet"]
    train, test = (set(map(bytes, digits_tensors(s, 1)[0].flatten(1).numpy())) for s in ("train", "test"))
    assert not train & test


def test_sample_quality_rejects_a_negative_data_seed():
    with pytest.raises(ValueError, match="data_seed"):
        sample_quality(torch.rand(4, 1, 8, 8), data_seed=-1)


def test_quality_report_rows_and_the_heldout_floor():
    """The held-out rows are measured at the validation split's size, and unseen real digits beat the baseline."""
    xtr = digits_tensors("train")[0]
    val = digits_tensors("val")[0]
    samples = gaussian_baseline(xtr, 400, torch.Generator().manual_seed(5))
    report = quality_report(samples, seed=0)
    assert list(report) == ["samples", "baseline", "real_train", "heldout_samples", "heldout_baseline", "heldout_real"]
    assert [report[r]["n"] for r in report] == [400, 400, 400, len(val), len(val), len(val)]
    # the held-out rows are exactly these inputs scored by sample_quality
    assert report["heldout_real"]["frechet"] == pytest.approx(sample_quality(val)["frechet"], rel=1e-12)
    assert report["heldout_samples"]["frechet"] == pytest.approx(sample_quality(samples[: len(val)])["frechet"], rel=1e-12)
    assert report["real_train"]["frechet"] == pytest.approx(sample_quality(xtr[:400])["frechet"], rel=1e-12)
    # unseen real digits are far closer to the test digits than moment-matched noise
    assert report["heldout_real"]["frechet"] * 3 < report["heldout_baseline"]["frechet"]
    # fewer samples than the validation split: every row has that many
    small = quality_report(samples[:10], seed=0)
    assert {q["n"] for q in small.values()} == {10}
