"""GAN losses against binary cross-entropy (float64, values and gradients); the networks' shapes and checks."""

import pytest
import torch
import torch.nn.functional as F

from deepnotes.core.registry import MODELS
from deepnotes.generative import (
    GAN,
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    dcgan,
    discriminator_loss,
    generator_loss,
    optimal_discriminator,
)
from deepnotes.generative.training import gan_step, optimizers_step, train_gan
from tests._reference import assert_forward_backward, assert_same_maths

G = torch.Generator().manual_seed(0)


def _logits(n):
    return 4 * torch.randn(n, generator=G, dtype=torch.float64)


def test_discriminator_loss_is_bce_with_real_one_fake_zero():
    real, fake = _logits(9), _logits(7)

    def ref(r, f):
        return F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) + F.binary_cross_entropy_with_logits(
            f, torch.zeros_like(f)
        )

    assert_forward_backward(discriminator_loss, ref, real, fake)


def test_non_saturating_loss_is_bce_of_fakes_labelled_real():
    fake = _logits(11)
    assert_forward_backward(
        generator_loss, lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f)), fake
    )


def test_minimax_loss_is_mean_log_one_minus_d_slow_loop():
    fake = _logits(6)

    def ref(f):  # E[log(1 − σ(s))] one sample at a time, from the probability
        return torch.stack([torch.log1p(-torch.sigmoid(s)) for s in f]).mean()

    assert_forward_backward(lambda f: generator_loss(f, "minimax"), ref, fake)


def test_minimax_gradient_vanishes_where_the_non_saturating_one_does_not():
    # D confidently rejects the fakes: s = −10 → dL/ds = −σ(s)/n (minimax) vs −(1 − σ(s))/n
    s = torch.full((4,), -10.0, dtype=torch.float64, requires_grad=True)
    (g_mm,) = torch.autograd.grad(generator_loss(s, "minimax"), s)
    (g_ns,) = torch.autograd.grad(generator_loss(s, "non_saturating"), s)
    assert_same_maths(g_mm, -torch.sigmoid(s.detach()) / 4)
    assert_same_maths(g_ns, -(1 - torch.sigmoid(s.detach())) / 4)
    assert float(g_ns.abs().min() / g_mm.abs().max()) > 1e4


def test_optimal_discriminator():
    p, q = torch.tensor([0.2, 0.0, 0.0, 1.0], dtype=torch.float64), torch.tensor([0.6, 0.3, 0.0, 1.0], dtype=torch.float64)
    assert torch.equal(optimal_discriminator(p, q), torch.tensor([0.25, 0.0, 0.5, 0.5], dtype=torch.float64))


@pytest.mark.parametrize("size", [8, 16, 32])
def test_dcgan_shapes_and_gradients(size):
    torch.manual_seed(0)
    gan = MODELS.create("dcgan", (3, size, size), 0, latent_dim=5, width=8)
    z = torch.randn(4, 5)
    x = gan(z)
    assert x.shape == (4, 3, size, size) and bool(((x >= 0) & (x <= 1)).all())
    logits = gan.discriminator(x)
    assert logits.shape == (4,)
    logits.sum().backward()
    assert all(p.grad is not None for p in gan.parameters())
    assert MODELS.meta("dcgan")["task"] == "generate"


def test_sample_is_reproducible_and_keeps_the_training_mode():
    torch.manual_seed(0)
    gan = GAN(DCGANGenerator(4, (1, 8, 8), 8), DCGANDiscriminator((1, 8, 8), 8))
    a = gan.sample(3, torch.Generator().manual_seed(1))
    assert torch.equal(a, gan.sample(3, torch.Generator().manual_seed(1)))
    assert gan.generator.training


def test_gan_step_updates_each_network_with_its_own_optimizer():
    torch.manual_seed(0)
    gan = GAN(MLPGenerator(2, 2, 8), MLPDiscriminator(2, 8))
    opts = {
        "generator": torch.optim.SGD(gan.generator.parameters(), lr=0.1),
        "discriminator": torch.optim.SGD(gan.discriminator.parameters(), lr=0.1),
    }
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    out = gan_step(gan, torch.randn(16, 2), optimizers_step(opts), generator=torch.Generator().manual_seed(0))
    assert set(out) == {"d_loss", "g_loss", "d_real", "d_fake"}
    changed = {k for k, v in gan.state_dict().items() if not torch.equal(v, before[k])}
    assert {k.split(".")[0] for k in changed} == {"generator", "discriminator"}


def test_gan_learns_a_shifted_1d_gaussian():
    torch.manual_seed(0)
    gan = GAN(MLPGenerator(1, 1, 32), MLPDiscriminator(1, 32))
    data = 3.0 + 0.5 * torch.randn(2048, 1, generator=G)
    train_gan(gan, data, epochs=30, batch_size=128, lr=2e-3, seed=0)
    s = gan.sample(4000, torch.Generator().manual_seed(0))
    assert abs(float(s.mean()) - 3.0) < 0.3 and 0.25 < float(s.std()) < 1.0


def test_non_finite_loss_raises():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(FloatingPointError, match="discriminator loss is not finite"):
        optimizers_step({"discriminator": opt})(torch.tensor(float("nan")), "discriminator")


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 6, 6), (1, 12, 12), (1, 8, 16), (1, 4, 4)])
def test_generator_rejects_an_image_size_it_cannot_produce(shape):
    with pytest.raises(ValueError, match="power-of-two side >= 8"):
        DCGANGenerator(8, shape)


def test_discriminator_rejects_an_image_size_it_cannot_read():
    with pytest.raises(ValueError, match="power-of-two side >= 8"):
        DCGANDiscriminator((1, 10, 10))


def test_generator_rejects_a_latent_size_below_one():
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        DCGANGenerator(0, (1, 8, 8))


def test_generator_rejects_a_latent_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"z must have shape \(B, 4\)"):
        DCGANGenerator(4, (1, 8, 8), 8)(torch.zeros(2, 5))


def test_discriminator_rejects_images_of_another_shape():
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 8, 8\)"):
        DCGANDiscriminator((1, 8, 8), 8)(torch.zeros(2, 1, 16, 16))


def test_unknown_generator_loss_is_rejected():
    with pytest.raises(ValueError, match="kind must be one of"):
        generator_loss(torch.zeros(3), "wasserstein")


def test_losses_reject_empty_logits():
    with pytest.raises(ValueError, match="fake_logits must not be empty"):
        discriminator_loss(torch.zeros(2), torch.zeros(0))


def test_optimal_discriminator_rejects_negative_densities():
    with pytest.raises(ValueError, match="densities"):
        optimal_discriminator(torch.tensor([-0.1]), torch.tensor([0.5]))


def test_gan_sample_needs_a_positive_count():
    gan = GAN(MLPGenerator(2, 2, 4), MLPDiscriminator(2, 4))
    with pytest.raises(ValueError, match="n must be >= 1"):
        gan.sample(0)


def test_adam_gan_is_adam_with_dcgan_betas():
    from deepnotes.core.registry import OPTIMIZERS

    p = [torch.nn.Parameter(torch.zeros(2))]
    opt = OPTIMIZERS.create("adam_gan", p, lr=1e-3)
    assert opt.param_groups[0]["betas"] == (0.5, 0.999) and opt.param_groups[0]["lr"] == 1e-3


def test_average_generator_follows_the_moving_average_formula():
    torch.manual_seed(0)
    gan = dcgan((1, 8, 8), latent_dim=4, width=8, ema_decay=0.9)
    old = {k: v.clone() for k, v in gan.average_generator.state_dict().items()}
    opts = {n: torch.optim.SGD(getattr(gan, n).parameters(), lr=0.5) for n in ("generator", "discriminator")}
    gan_step(gan, torch.rand(8, 1, 8, 8), optimizers_step(opts))
    live = gan.generator.state_dict()
    params = {k for k, _ in gan.generator.named_parameters()}
    for k, v in gan.average_generator.state_dict().items():
        # weights: 0.9 · old + 0.1 · new; batch-norm statistics: copied from the live generator
        want = 0.9 * old[k] + 0.1 * live[k] if k in params else live[k]
        assert torch.allclose(v, want, atol=1e-6, rtol=0), k  # float32 rounding
    assert not torch.equal(gan.average_generator.state_dict()["net.0.weight"], live["net.0.weight"])
    assert all(not p.requires_grad for p in gan.average_generator.parameters())


def test_sample_draws_from_the_average_generator_when_kept():
    torch.manual_seed(0)
    gan = dcgan((1, 8, 8), latent_dim=4, width=8, ema_decay=0.99)
    with torch.no_grad():
        for p in gan.average_generator.parameters():
            p.add_(0.1)
    z = gan.latent(5, torch.Generator().manual_seed(3))
    got = gan.sample(5, torch.Generator().manual_seed(3))
    assert torch.equal(got, gan.average_generator.eval()(z))
    assert not torch.allclose(got, gan.generator.eval()(z))
    plain = dcgan((1, 8, 8), latent_dim=4, width=8)
    assert plain.average_generator is None and not any("average" in k for k in plain.state_dict())


@pytest.mark.parametrize("decay", [1.0, -0.1, 2])
def test_ema_decay_must_lie_in_zero_one(decay):
    with pytest.raises(ValueError, match="ema_decay"):
        dcgan((1, 8, 8), latent_dim=4, width=8, ema_decay=decay)


def test_the_recorded_digits_setting_names_real_options():
    from deepnotes.commands.train import parse_model_kw
    from deepnotes.core.registry import OPTIMIZERS
    from deepnotes.generative.networks import DCGAN_DIGITS_SETTING

    zoo = MODELS.meta("dcgan")["zoo"]
    assert zoo is DCGAN_DIGITS_SETTING and zoo["optimizer"] in OPTIMIZERS
    # the flags as the CLI passes them (--model-kw KEY=VALUE strings) build the recorded model
    kw = parse_model_kw([f"{k}={v}" for k, v in zoo["model_kw"].items()])
    gan = MODELS.create("dcgan", (1, 8, 8), 10, **kw)
    assert gan.augment == ("translation",) and gan.ema_decay == 0.995
    assert gan.generator.net[0].out_channels == 96
    assert f"--epochs {zoo['epochs']}" in dcgan.__doc__ and "--model-kw augment=translation" in dcgan.__doc__
