"""The pieces of the VAE objective: reparameterization, the Gaussian KL, decoder log-likelihoods, ELBO.

For an encoder ``q(z|x) = N(μ, diag σ²)`` (it outputs ``μ`` and ``log σ²``), a prior ``p(z) = N(0, I)``
and a decoder ``p(x|z)``, the evidence lower bound of one sample is

    ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) ≤ log p(x),

with the expectation estimated by one reparameterized draw ``z = μ + σ ⊙ ε``, ``ε ~ N(0, I)``, and
the KL in closed form. ``β`` scales the KL (β-VAE; β = 1 is the true bound).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from deepnotes.core.checks import check_float, check_tensor

LOG_2PI = math.log(2 * math.pi)


def _same_shape(**tensors: torch.Tensor) -> None:
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError("shapes differ: " + ", ".join(f"{k} {s}" for k, s in shapes.items()))


def reparameterize(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    eps: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``z = μ + exp(½ log σ²) ⊙ ε`` with ``ε ~ N(0, I)`` (drawn from ``generator`` unless given).

    The sample is a differentiable function of ``μ`` and ``log σ²``: gradients flow through it.
    """
    check_tensor("mu", mu, floating=True)
    check_tensor("logvar", logvar, floating=True)
    _same_shape(mu=mu, logvar=logvar)
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
    else:
        check_tensor("eps", eps, floating=True)
        _same_shape(mu=mu, eps=eps)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | float = 0.0,
    prior_logvar: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """``KL(N(μ, σ²) ‖ N(μ_p, σ_p²))`` summed over the last dimension: ``Tensor[...]`` for ``mu (Tensor[..., D])``.

    Per dimension ``½ (log σ_p² − log σ² + (σ² + (μ − μ_p)²) / σ_p² − 1)``; against the standard
    normal prior (the defaults) this is ``½ (μ² + σ² − 1 − log σ²)``.
    """
    check_tensor("mu", mu, floating=True)
    check_tensor("logvar", logvar, floating=True)
    if mu.dim() == 0:
        raise ValueError("mu must have at least one dimension (the latent dimensions are the last)")
    _same_shape(mu=mu, logvar=logvar)
    prior_mu = torch.as_tensor(prior_mu, dtype=mu.dtype, device=mu.device)
    prior_logvar = torch.as_tensor(prior_logvar, dtype=mu.dtype, device=mu.device)
    per_dim = 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu) ** 2) / prior_logvar.exp() - 1.0)
    return per_dim.sum(-1)


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``Σ_pixels x log p + (1 − x) log(1 − p)`` with ``p = σ(logits)``, per sample: ``Tensor[B]``.

    ``x`` in ``[0, 1]`` (grey levels act as soft targets, the usual practice on MNIST-like data).
    """
    check_tensor("x", x, floating=True, nonempty=True)
    check_tensor("logits", logits, floating=True)
    _same_shape(x=x, logits=logits)
    per_pixel = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return per_pixel.flatten(1).sum(1)


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor | float) -> torch.Tensor:
    """``Σ_pixels log N(x; mean, σ²)`` per sample: ``Tensor[B]``; ``logvar`` broadcasts against ``x``."""
    check_tensor("x", x, floating=True, nonempty=True)
    check_tensor("mean", mean, floating=True)
    _same_shape(x=x, mean=mean)
    logvar = torch.as_tensor(logvar, dtype=x.dtype, device=x.device)
    per_pixel = -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 / logvar.exp())
    return per_pixel.expand_as(x).flatten(1).sum(1)


def elbo(log_likelihood: torch.Tensor, kl: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """``log p(x|z) − β · KL(q(z|x) ‖ p(z))`` per sample (``Tensor[B]``); maximize it."""
    check_tensor("log_likelihood", log_likelihood, floating=True)
    check_tensor("kl", kl, floating=True)
    _same_shape(log_likelihood=log_likelihood, kl=kl)
    beta = check_float("beta", beta, min=0.0)
    return log_likelihood - beta * kl
