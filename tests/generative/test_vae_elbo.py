"""VAE objective pieces against torch.distributions (float64, values and gradients), and the VAE module."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from deepnotes.generative import (
    VAE,
    bernoulli_log_likelihood,
    digits_tensors,
    elbo,
    gaussian_kl,
    gaussian_log_likelihood,
    reparameterize,
    vae,
)
from deepnotes.generative.training import train_vae
from tests._reference import assert_forward_backward, assert_same_maths

G = torch.Generator().manual_seed(0)


def _rand(*shape, scale=1.0):
    return scale * torch.randn(*shape, generator=G, dtype=torch.float64)


def test_gaussian_kl_standard_prior_equals_torch_distributions_to_1e12():
    mu, logvar = _rand(16, 5, scale=2.0), _rand(16, 5)

    def ref(m, lv):
        return kl_divergence(Normal(m, torch.exp(0.5 * lv)), Normal(torch.zeros_like(m), torch.ones_like(m))).sum(-1)

    assert_forward_backward(gaussian_kl, ref, mu, logvar, rtol=0, atol=1e-12)


def test_gaussian_kl_general_prior_equals_torch_distributions():
    mu, logvar, pm, plv = _rand(4, 3, 6), _rand(4, 3, 6), _rand(4, 3, 6), _rand(4, 3, 6)

    def ref(m, lv, a, b):
        return kl_divergence(Normal(m, torch.exp(0.5 * lv)), Normal(a, torch.exp(0.5 * b))).sum(-1)

    assert_forward_backward(gaussian_kl, ref, mu, logvar, pm, plv, rtol=0, atol=1e-12)


def test_gaussian_kl_is_zero_at_the_prior_and_positive_elsewhere():
    assert float(gaussian_kl(torch.zeros(3, 4, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64)).abs().max()) == 0
    assert bool((gaussian_kl(_rand(50, 4), _rand(50, 4)) > 0).all())


def test_bernoulli_log_likelihood_matches_torch_distributions():
    x = torch.rand(6, 1, 4, 4, generator=G, dtype=torch.float64)
    x[0] = (x[0] > 0.5).double()  # hard binary pixels too
    logits = _rand(6, 1, 4, 4, scale=3.0)

    def ref(xx, lg):
        return Bernoulli(logits=lg, validate_args=False).log_prob(xx).flatten(1).sum(1)

    assert_forward_backward(bernoulli_log_likelihood, ref, x, logits)


def test_gaussian_log_likelihood_matches_torch_distributions():
    x, mean, logvar = _rand(5, 2, 3, 3), _rand(5, 2, 3, 3), _rand(5, 2, 3, 3)

    def ref(xx, m, lv):
        return Normal(m, torch.exp(0.5 * lv)).log_prob(xx).flatten(1).sum(1)

    assert_forward_backward(gaussian_log_likelihood, ref, x, mean, logvar)
    # a scalar log-variance shared by every pixel broadcasts
    lv = torch.tensor(-0.7, dtype=torch.float64)
    assert_same_maths(
        gaussian_log_likelihood(x, mean, lv), Normal(mean, torch.exp(0.5 * lv)).log_prob(x).flatten(1).sum(1)
    )


def test_reparameterize_is_mu_plus_sigma_eps_and_differentiable():
    mu, logvar, eps = _rand(8, 3), _rand(8, 3), _rand(8, 3)
    assert_forward_backward(
        lambda m, lv: reparameterize(m, lv, eps), lambda m, lv: m + torch.sqrt(torch.exp(lv)) * eps, mu, logvar
    )


def test_reparameterize_draws_have_the_requested_moments():
    mu = torch.tensor([1.0, -2.0], dtype=torch.float64).expand(200_000, 2)
    logvar = torch.log(torch.tensor([0.25, 4.0], dtype=torch.float64)).expand(200_000, 2)
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(1))
    # standard errors: σ/√n ≈ 0.0045 for the σ = 2 mean; 6 SE bounds
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0], dtype=torch.float64), rtol=0, atol=0.03)
    torch.testing.assert_close(z.var(0), torch.tensor([0.25, 4.0], dtype=torch.float64), rtol=0.02, atol=0)


def test_elbo_weighs_the_kl_by_beta():
    ll, kl = _rand(7), _rand(7).abs()
    assert_same_maths(elbo(ll, kl), ll - kl)
    assert_same_maths(elbo(ll, kl, beta=0.25), ll - 0.25 * kl)
    assert_same_maths(elbo(ll, kl, beta=0.0), ll)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_elbo_is_the_sum_of_its_terms(likelihood, arch):
    torch.manual_seed(0)
    m = VAE((1, 8, 8), latent_dim=3, hidden=16, likelihood=likelihood, arch=arch, width=4).double()
    x = torch.rand(5, 1, 8, 8, generator=G, dtype=torch.float64)
    out, mu, logvar, z = m(x, torch.Generator().manual_seed(3))
    assert out.shape == x.shape and mu.shape == logvar.shape == z.shape == (5, 3)
    if likelihood == "bernoulli":
        ll = Bernoulli(logits=out, validate_args=False).log_prob(x).flatten(1).sum(1)
    else:
        ll = Normal(torch.sigmoid(out), torch.exp(0.5 * m.decoder_logvar)).log_prob(x).flatten(1).sum(1)
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)
    assert_same_maths(m.elbo(x, beta=0.5, generator=torch.Generator().manual_seed(3)), ll - 0.5 * kl)
    m.loss(x).backward()
    assert all(p.grad is not None for p in m.parameters())


def test_importance_sampled_log_likelihood_matches_a_slow_loop():
    torch.manual_seed(0)
    m = VAE((1, 4, 4), latent_dim=2, hidden=8).double()
    x = torch.rand(3, 1, 4, 4, generator=G, dtype=torch.float64)
    est = m.importance_log_likelihood(x, k=30, generator=torch.Generator().manual_seed(5), chunk=7)
    # the same draws, one sample and one draw at a time
    g = torch.Generator().manual_seed(5)
    mu, logvar = m.encode(x)
    eps = torch.cat([torch.randn((min(7, 30 - s), 3, 2), generator=g, dtype=torch.float64) for s in range(0, 30, 7)])
    for b in range(3):
        q = Normal(mu[b], torch.exp(0.5 * logvar[b]))
        terms = []
        for i in range(30):
            z = mu[b] + torch.exp(0.5 * logvar[b]) * eps[i, b]
            logits = m.decode(z[None])[0]
            log_px = Bernoulli(logits=logits, validate_args=False).log_prob(x[b]).sum()
            terms.append(log_px + Normal(0.0, 1.0).log_prob(z).sum() - q.log_prob(z).sum())
        want = torch.logsumexp(torch.stack(terms), 0) - math.log(30)
        assert_same_maths(est[b], want.detach())


def test_vae_sample_and_interpolate():
    torch.manual_seed(0)
    m = vae((1, 8, 8), latent_dim=4, hidden=32)
    s = m.sample(6, torch.Generator().manual_seed(0))
    assert s.shape == (6, 1, 8, 8) and bool(((s >= 0) & (s <= 1)).all())
    assert torch.equal(s, m.sample(6, torch.Generator().manual_seed(0)))
    a, b = torch.rand(2, 1, 8, 8, generator=G)
    path = m.interpolate(a, b, steps=5)
    assert path.shape == (5, 1, 8, 8)
    mu, _ = m.encode(torch.stack([a, b]))
    torch.testing.assert_close(path[0], torch.sigmoid(m.decode(mu[:1]))[0])
    torch.testing.assert_close(path[-1], torch.sigmoid(m.decode(mu[1:]))[0])


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 6, 10)])
def test_conv_vae_shapes_and_gradients(shape):
    torch.manual_seed(0)
    m = vae(shape, latent_dim=5, hidden=12, arch="conv", width=3)
    assert any(isinstance(layer, torch.nn.Conv2d) for layer in m.encoder)
    x = torch.rand(4, *shape, generator=G)
    out, mu, logvar, z = m(x)
    assert out.shape == x.shape and mu.shape == logvar.shape == z.shape == (4, 5)
    assert m.sample(3, torch.Generator().manual_seed(0)).shape == (3, *shape)
    m.loss(x).backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in m.parameters())


def test_conv_vae_encoder_sees_pixel_neighbourhoods():
    # a 3×3 first layer then a 4×4 stride-2 one: the first hidden maps of a pixel change
    # only within its receptive field, unlike the MLP's, where every pixel reaches every unit
    torch.manual_seed(0)
    m = vae((1, 8, 8), latent_dim=2, hidden=4, arch="conv", width=2).double()
    x = torch.rand(1, 1, 8, 8, generator=G, dtype=torch.float64)
    y = x.clone()
    y[0, 0, 0, 0] += 1.0
    first = m.encoder[0]
    changed = (first(x) != first(y)).any(1)[0]
    assert changed[:2, :2].all() and not changed[2:, :].any() and not changed[:, 2:].any()


def test_the_model_beta_is_the_default_kl_weight():
    torch.manual_seed(0)
    m = vae((1, 8, 8), latent_dim=3, hidden=16, arch="conv", width=4, beta=0.25).double()
    x = torch.rand(5, 1, 8, 8, generator=G, dtype=torch.float64)
    out, mu, logvar, _ = m(x, torch.Generator().manual_seed(3))
    ll, kl = m.log_likelihood(x, out), gaussian_kl(mu, logvar)
    assert_same_maths(m.elbo(x, generator=torch.Generator().manual_seed(3)), ll - 0.25 * kl)
    assert_same_maths(m.loss(x, generator=torch.Generator().manual_seed(3)), -(ll - 0.25 * kl).mean())
    assert_same_maths(m.elbo(x, beta=1.0, generator=torch.Generator().manual_seed(3)), ll - kl)  # an explicit beta wins


def test_vae_training_lowers_the_negative_elbo():
    torch.manual_seed(0)
    m = VAE((1, 8, 8), latent_dim=4, hidden=64)
    x = digits_tensors("train")[0][:256]
    hist = train_vae(m, x, epochs=10, batch_size=32, seed=0)
    assert hist[-1] < 0.8 * hist[0]


# -- bad input -------------------------------------------------------------------------------------
def test_vae_rejects_a_latent_size_below_one():
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        VAE((1, 8, 8), latent_dim=0)


def test_vae_rejects_an_unknown_likelihood():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VAE((1, 8, 8), likelihood="poisson")


def test_vae_rejects_an_unknown_arch():
    with pytest.raises(ValueError, match="arch must be one of"):
        VAE((1, 8, 8), arch="transformer")


@pytest.mark.parametrize("shape", [(1, 7, 8), (1, 8, 9), (64,)])
def test_conv_vae_needs_an_image_with_even_sides(shape):
    with pytest.raises(ValueError, match="in_shape must be \\(C, H, W\\) with even H and W"):
        VAE(shape, arch="conv")


def test_conv_vae_rejects_a_width_below_one():
    with pytest.raises(ValueError, match="width must be >= 1"):
        VAE((1, 8, 8), arch="conv", width=0)


def test_vae_rejects_images_of_another_shape():
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 8, 8\)"):
        VAE((1, 8, 8), latent_dim=2, hidden=4).encode(torch.rand(2, 1, 7, 7))


def test_vae_rejects_a_latent_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"z must have shape \(B, 2\)"):
        VAE((1, 8, 8), latent_dim=2, hidden=4).decode(torch.zeros(3, 5))


def test_interpolate_needs_two_steps():
    m = VAE((1, 8, 8), latent_dim=2, hidden=4)
    with pytest.raises(ValueError, match="steps must be >= 2"):
        m.interpolate(torch.rand(1, 8, 8), torch.rand(1, 8, 8), steps=1)


def test_sample_needs_a_positive_count():
    with pytest.raises(ValueError, match="n must be >= 1"):
        VAE((1, 8, 8), latent_dim=2, hidden=4).sample(0)


def test_vae_rejects_a_negative_beta():
    with pytest.raises(ValueError, match="beta must be >= 0"):
        vae((1, 8, 8), beta=-0.5)


def test_negative_beta_is_rejected():
    with pytest.raises(ValueError, match="beta must be >= 0"):
        elbo(torch.zeros(2), torch.zeros(2), beta=-1.0)


def test_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))


def test_likelihood_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        bernoulli_log_likelihood(torch.zeros(2, 4), torch.zeros(2, 5))


def test_the_recorded_digits_setting_names_real_options():
    from deepnotes.commands.train import parse_model_kw
    from deepnotes.core.registry import MODELS, OPTIMIZERS
    from deepnotes.generative.vae import VAE_DIGITS_SETTING

    zoo = MODELS.meta("vae")["zoo"]
    assert zoo is VAE_DIGITS_SETTING and zoo["optimizer"] in OPTIMIZERS
    kw = parse_model_kw([f"{k}={v}" for k, v in zoo["model_kw"].items()])
    m = MODELS.create("vae", (1, 8, 8), 10, **kw)
    assert m.arch == "conv" and m.beta == 0.25 and m.latent_dim == 8
    assert f"--epochs {zoo['epochs']}" in vae.__doc__ and "--model-kw beta=0.25" in vae.__doc__
