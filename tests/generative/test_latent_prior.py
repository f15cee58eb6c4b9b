"""The latent mixture prior: its fit is scikit-learn's GaussianMixture, its draws follow that mixture."""

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

from deepnotes.generative import VAE, LatentMixture


def _codes(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[2.0, 0.0, 0.0], [-2.0, 1.0, 0.0], [0.0, -2.0, 1.0]], dtype=torch.float64)
    which = torch.randint(0, 3, (n,), generator=g)
    return centres[which] + 0.4 * torch.randn(n, 3, generator=g, dtype=torch.float64)


def test_fit_holds_scikit_learns_parameters():
    codes = _codes()
    prior = LatentMixture.fit(codes, n_components=3, seed=4)
    ref = GaussianMixture(3, covariance_type="full", random_state=4).fit(codes.numpy())
    np.testing.assert_array_equal(prior.weights.numpy(), ref.weights_)
    np.testing.assert_array_equal(prior.means.numpy(), ref.means_)
    np.testing.assert_array_equal(prior.covariances.numpy(), ref.covariances_)
    assert prior.means.dtype == codes.dtype


def test_draws_have_the_mixtures_weights_and_moments():
    w = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    m = torch.tensor([[1.0, 0.0], [-1.0, 2.0], [0.0, -3.0]], dtype=torch.float64)
    a = torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = a @ a.transpose(1, 2) + 0.1 * torch.eye(2, dtype=torch.float64)
    n = 200_000
    z = LatentMixture(w, m, s).sample(n, torch.Generator().manual_seed(0))
    assert z.shape == (n, 2) and z.dtype == torch.float64
    mean = (w[:, None] * m).sum(0)
    cov = (w[:, None, None] * (s + m[:, :, None] * m[:, None, :])).sum(0) - torch.outer(mean, mean)
    # standard errors: sqrt(var / n) ≲ 0.01 for the mean; 5 SE of margin
    torch.testing.assert_close(z.mean(0), mean, rtol=0, atol=0.03)
    torch.testing.assert_close(torch.cov(z.T), cov, rtol=0.03, atol=0.03)


def test_draws_score_like_scikit_learns_own_draws():
    """Mean log-density under the fitted mixture: our draws and sklearn's agree within sampling error."""
    codes = _codes()
    ref = GaussianMixture(3, covariance_type="full", random_state=0).fit(codes.numpy())
    ours = LatentMixture.fit(codes, 3, seed=0).sample(50_000, torch.Generator().manual_seed(3)).numpy()
    theirs = ref.sample(50_000)[0]
    a, b = ref.score_samples(ours), ref.score_samples(theirs)
    se = np.sqrt(a.var() / len(a) + b.var() / len(b))
    assert abs(a.mean() - b.mean()) < 5 * se


def test_draws_are_reproducible_with_a_generator():
    prior = LatentMixture.fit(_codes(), 3)
    z1 = prior.sample(10, torch.Generator().manual_seed(7))
    z2 = prior.sample(10, torch.Generator().manual_seed(7))
    assert torch.equal(z1, z2)


def test_vae_samples_from_a_fitted_prior():
    torch.manual_seed(0)
    vae = VAE((1, 8, 8), latent_dim=3, hidden=16)
    x = torch.rand(40, 1, 8, 8)
    prior = LatentMixture.fit_vae(vae, x, n_components=2)
    assert prior.means.shape == (2, 3)
    img = vae.sample(5, torch.Generator().manual_seed(0), prior=prior)
    assert img.shape == (5, 1, 8, 8) and float(img.min()) >= 0 and float(img.max()) <= 1
    # the prior's draws go through the decoder: same generator state, same images
    z = prior.sample(5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(img, vae.mean_image(vae.decode(z.float())))


def test_vae_rejects_a_prior_of_another_latent_size():
    vae = VAE((1, 8, 8), latent_dim=3, hidden=16)
    prior = LatentMixture.fit(_codes(), 2)  # 3-D codes
    wrong = LatentMixture(prior.weights, prior.means[:, :2], prior.covariances[:, :2, :2])
    with pytest.raises(ValueError, match=r"prior.sample must return shape \(4, 3\)"):
        vae.sample(4, prior=wrong)


def test_bad_input_is_rejected():
    codes = _codes(10)
    with pytest.raises(ValueError, match="n_components=11 needs at least as many codes, got 10"):
        LatentMixture.fit(codes, 11)
    with pytest.raises(ValueError, match="n_components"):
        LatentMixture.fit(codes, 0)
    w, m, s = torch.tensor([0.5, 0.5]), torch.zeros(2, 3), torch.eye(3).expand(2, 3, 3).clone()
    with pytest.raises(ValueError, match="sum to 1"):
        LatentMixture(torch.tensor([0.5, 0.6]), m, s)
    with pytest.raises(ValueError, match=r"weights \(K,\), means \(K, D\)"):
        LatentMixture(w, m, s[:, :2, :2])
    with pytest.raises(torch.linalg.LinAlgError):
        LatentMixture(w, m, -s)  # not positive definite
    with pytest.raises(ValueError, match="n must be >= 1"):
        LatentMixture(w, m, s).sample(0)
