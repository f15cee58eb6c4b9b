"""One training step of a GAN and of a VAE, and plain loops over in-memory tensors built on them.

A step takes ``optimize(loss, name) -> float``, which zeroes the named optimizer's gradients,
back-propagates ``loss``, steps that optimizer and returns the loss value: the Trainer's
``StepContext.optimize`` has this signature, and :func:`optimizers_step` builds one from plain
optimizers for the loops below (used by the lab's small experiments).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from deepnotes.core.checks import check_choice, check_float, check_int, check_tensor, check_type
from deepnotes.core.seeding import make_generator
from deepnotes.generative.gan_losses import GENERATOR_LOSSES, discriminator_loss, generator_loss
from deepnotes.generative.networks import GAN
from deepnotes.generative.vae import VAE

Optimize = Callable[[torch.Tensor, str], float]


def optimizers_step(optimizers: dict[str, torch.optim.Optimizer]) -> Optimize:
    """An ``optimize(loss, name)`` over a dict of optimizers; a non-finite loss raises ``FloatingPointError``."""

    def optimize(loss: torch.Tensor, name: str = "default") -> float:
        value = float(loss.detach())
        if value != value or value in (float("inf"), float("-inf")):
            raise FloatingPointError(f"{name} loss is not finite ({value})")
        opt = optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return value

    return optimize


def gan_step(
    gan: GAN,
    real: torch.Tensor,
    optimize: Optimize,
    kind: str = "non_saturating",
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """One discriminator update, then one generator update, on a batch of real samples.

    A GAN built with ``augment`` shows the discriminator augmented images (fresh draws at each of
    its three calls); a GAN built with ``ema_decay`` then moves its weight-averaged generator one step.

    Returns ``{"d_loss", "g_loss", "d_real", "d_fake"}`` (the last two: mean ``D`` on the batch's
    real and fake samples before the discriminator's update, augmented if the GAN augments).
    """
    z = gan.latent(len(real), generator)
    fake = gan.generator(z)
    real_logits = gan.discriminate(real, generator)
    fake_logits = gan.discriminate(fake.detach(), generator)  # no gradient into G from D's loss
    d_loss = optimize(discriminator_loss(real_logits, fake_logits), "discriminator")
    # D has just been updated: score the same fakes with the new D for the generator's step
    g_loss = optimize(generator_loss(gan.discriminate(fake, generator), kind), "generator")
    gan.update_average()  # the generator's weight average, if the GAN keeps one
    return {
        "d_loss": d_loss,
        "g_loss": g_loss,
        "d_real": float(torch.sigmoid(real_logits.detach()).mean()),
        "d_fake": float(torch.sigmoid(fake_logits.detach()).mean()),
    }


def vae_step(
    model: VAE, x: torch.Tensor, optimize: Optimize, beta: float | None = None, generator: torch.Generator | None = None
) -> dict[str, float]:
    """One step on the negative ELBO (KL weighed by ``beta``, ``None``: the model's); returns ``{"loss"}``."""
    return {"loss": optimize(model.loss(x, beta, generator), "default")}


def _batches(n: int, batch_size: int, g: torch.Generator):
    return torch.randperm(n, generator=g).split(batch_size)


def train_gan(
    gan: GAN,
    data: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    kind: str = "non_saturating",
    seed: int = 0,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Alternating GAN training with Adam (DCGAN's lr 2e-4, β₁ = 0.5) on ``data (Tensor[N, ...])``.

    ``callback(epoch, means)`` runs after each epoch; returns the per-epoch mean step statistics.
    """
    check_type("gan", gan, GAN)
    check_tensor("data", data, floating=True, finite=True, nonempty=True)
    check_choice("kind", kind, GENERATOR_LOSSES)
    opts = {
        "generator": torch.optim.Adam(gan.generator.parameters(), lr=check_float("lr", lr, min=0.0), betas=betas),
        "discriminator": torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=betas),
    }
    optimize = optimizers_step(opts)
    g = make_generator(check_int("seed", seed, min=0))
    history = []
    gan.train()
    for epoch in range(check_int("epochs", epochs, min=1)):
        rows = [gan_step(gan, data[idx], optimize, kind, g) for idx in _batches(len(data), batch_size, g)]
        means = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        history.append(means)
        if callback is not None:
            callback(epoch + 1, means)
    return history


def train_vae(
    model: VAE,
    data: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    beta: float | None = None,
    seed: int = 0,
) -> list[float]:
    """Adam on the negative ELBO over ``data (Tensor[N, *in_shape])`` (``beta``: None, the model's); per-epoch mean loss."""
    check_type("model", model, VAE)
    check_tensor("data", data, floating=True, finite=True, nonempty=True)
    optimize = optimizers_step({"default": torch.optim.Adam(model.parameters(), lr=check_float("lr", lr, min=0.0))})
    g = make_generator(check_int("seed", seed, min=0))
    history = []
    model.train()
    for _ in range(check_int("epochs", epochs, min=1)):
        losses = [vae_step(model, data[idx], optimize, beta, g)["loss"] for idx in _batches(len(data), batch_size, g)]
        history.append(sum(losses) / len(losses))
    return history
