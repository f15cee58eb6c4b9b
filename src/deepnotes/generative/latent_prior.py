"""A Gaussian mixture fitted to a trained VAE's codes, to sample from instead of ``N(0, I)``.

A VAE is trained so that the posteriors ``q(z|x)`` stay close to the prior, but their average over
the data (the aggregate posterior) rarely fills it: parts of ``N(0, I)`` are decoded into images
that resemble no training example. Fitting a density to the posterior means of the training
images after training ("ex-post density estimation": Ghosh et al., 2020, *From variational to
deterministic autoencoders*; a two-stage model in Dai & Wipf, 2019) and sampling ``z`` from it
instead keeps the samples where the decoder was trained. A mixture of ``K`` full-covariance
Gaussians is the usual choice::

    p(z) = Σ_k π_k N(z; m_k, S_k)

The fit is scikit-learn's EM (``sklearn.mixture.GaussianMixture``); sampling draws the component
``k ~ Categorical(π)`` and then ``z = m_k + L_k ε`` with ``L_k L_kᵀ = S_k``, ``ε ~ N(0, I)``, from a
torch generator, so that samples are reproducible like the rest of the package.
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_int, check_tensor


class LatentMixture:
    """``p(z) = Σ_k π_k N(z; m_k, S_k)``: weights (Tensor[K]), means (Tensor[K, D]), covariances (Tensor[K, D, D])."""

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor):
        check_tensor("weights", weights, ndim=1, floating=True, finite=True)
        check_tensor("means", means, ndim=2, floating=True, finite=True)
        check_tensor("covariances", covariances, ndim=3, floating=True, finite=True)
        k, d = means.shape
        if weights.shape != (k,) or covariances.shape != (k, d, d):
            raise ValueError(
                f"shapes must be weights (K,), means (K, D), covariances (K, D, D) with one K and D; got "
                f"{tuple(weights.shape)}, {tuple(means.shape)}, {tuple(covariances.shape)}"
            )
        if (weights < 0).any() or abs(float(weights.sum()) - 1.0) > 1e-6:
            raise ValueError("weights must be non-negative and sum to 1")
        self.weights, self.means, self.covariances = weights, means, covariances
        self.scale_tril = torch.linalg.cholesky(covariances)  # raises if a covariance is not positive definite

    @classmethod
    def fit(cls, codes: torch.Tensor, n_components: int = 10, seed: int = 0) -> LatentMixture:
        """EM fit (full covariances, scikit-learn) to ``codes (Tensor[N, D])``, N ≥ ``n_components``."""
        from sklearn.mixture import GaussianMixture

        check_tensor("codes", codes, ndim=2, floating=True, finite=True, nonempty=True)
        n_components = check_int("n_components", n_components, min=1)
        if n_components > codes.shape[0]:
            raise ValueError(f"n_components={n_components} needs at least as many codes, got {codes.shape[0]}")
        gm = GaussianMixture(n_components, covariance_type="full", random_state=check_int("seed", seed, min=0))
        gm.fit(codes.detach().double().cpu().numpy())
        return cls(*(torch.from_numpy(a).to(codes.dtype) for a in (gm.weights_, gm.means_, gm.covariances_)))

    @classmethod
    def fit_vae(cls, vae, x: torch.Tensor, n_components: int = 10, seed: int = 0) -> LatentMixture:
        """Fit to the posterior means ``μ(x)`` of a trained :class:`~deepnotes.generative.VAE`'s images ``x``."""
        with torch.no_grad():
            mu, _ = vae.encode(x)
        return cls.fit(mu, n_components, seed)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws ``Tensor[n, D]``: a component by its weight, then that component's Gaussian."""
        n = check_int("n", n, min=1)
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype)
        for k in range(len(self.weights)):  # one matrix product per component: memory O(n·D)
            rows = component == k
            z[rows] = self.means[k] + z[rows] @ self.scale_tril[k].T
        return z
