"""GAN networks: DCGAN-style convolutional generator/discriminator for images, MLPs for toy data.

A generator maps a latent code ``z (Tensor[B, latent_dim])`` to a sample; a discriminator maps a
sample to one real-vs-fake **logit** per row (``Tensor[B]``): the probability ``D(x)`` is its
sigmoid, and the losses in :mod:`deepnotes.generative.gan_losses` work on logits for stability.

DCGAN (Radford et al., 2016) layout: the generator projects ``z`` to a 4×4 map with a transposed
convolution and doubles the resolution with stride-2 transposed convolutions (batch norm + ReLU),
the discriminator halves it with stride-2 convolutions (LeakyReLU 0.2, batch norm after the
first) down to 4×4, then one 4×4 convolution gives the logit. ``extra_layers`` adds that many
3×3 stride-1 conv-BN-activation layers at the largest hidden resolution of each network (the
reference DCGAN code's ``n_extra_layers``): digits are 8×8, where the plain layout has only two
layers per network. Images must be square with a power-of-two side ≥ 8. Pixels are in ``[0, 1]`` (the bundled digits), so the generator
ends in a sigmoid rather than DCGAN's tanh.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_float, check_int, check_tensor, check_type
from deepnotes.core.registry import MODELS
from deepnotes.generative.augment import POLICIES, diff_augment


def _image_shape(in_shape) -> tuple[int, int, int]:
    check_type("image_shape", in_shape, (tuple, list))
    if len(in_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {tuple(in_shape)}")
    c, h, w = (check_int(f"image_shape[{i}]", d, min=1) for i, d in enumerate(in_shape))
    if h != w or h < 8 or h & (h - 1):
        raise ValueError(
            f"image_shape must be square with a power-of-two side >= 8 (the DCGAN layout doubles a 4x4 map), "
            f"got {h}x{w}"
        )
    return c, h, w


def _check_latent(z: torch.Tensor, latent_dim: int) -> torch.Tensor:
    check_tensor("z", z, ndim=2, floating=True)
    if z.shape[1] != latent_dim:
        raise ValueError(f"z must have shape (B, {latent_dim}), got {tuple(z.shape)}")
    return z


class DCGANGenerator(nn.Module):
    """``z (Tensor[B, latent_dim]) → images (Tensor[B, C, H, W])`` in ``[0, 1]``.

    Channels halve at every doubling, starting from ``width · 2^(doublings-1)`` at 4×4.
    """

    def __init__(self, latent_dim: int = 32, image_shape=(1, 8, 8), width: int = 64, extra_layers: int = 0):
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, min=1)
        extra = check_int("extra_layers", extra_layers, min=0)
        self.image_shape = _image_shape(image_shape)
        c, h, _ = self.image_shape
        width = check_int("width", width, min=1)
        doublings = int(math.log2(h)) - 2
        ch = width * 2 ** (doublings - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(self.latent_dim, ch, 4, 1, 0, bias=False),  # 1×1 → 4×4
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        ]
        for _ in range(doublings - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        for _ in range(extra):
            layers += [nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU()]
        layers += [nn.ConvTranspose2d(ch, c, 4, 2, 1), nn.Sigmoid()]  # last doubling straight to pixels
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = _check_latent(z, self.latent_dim)
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """``images (Tensor[B, C, H, W]) → logits (Tensor[B])`` (real = 1)."""

    def __init__(self, image_shape=(1, 8, 8), width: int = 64, extra_layers: int = 0):
        super().__init__()
        self.image_shape = _image_shape(image_shape)
        c, h, _ = self.image_shape
        ch = check_int("width", width, min=1)
        layers: list[nn.Module] = [nn.Conv2d(c, ch, 4, 2, 1), nn.LeakyReLU(0.2)]  # no BN on the input layer
        for _ in range(check_int("extra_layers", extra_layers, min=0)):
            layers += [nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2)]
        size = h // 2
        while size > 4:
            layers += [nn.Conv2d(ch, 2 * ch, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * ch), nn.LeakyReLU(0.2)]
            ch, size = 2 * ch, size // 2
        layers.append(nn.Conv2d(ch, 1, 4, 1, 0))  # 4×4 → 1×1 logit
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=4, floating=True)
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.image_shape))}), got {tuple(x.shape)}")
        return self.net(x).flatten()


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """``z (Tensor[B, latent_dim]) → x (Tensor[B, out_dim])``, unbounded (toy 1-D / 2-D data)."""

    def __init__(self, latent_dim: int = 2, out_dim: int = 2, hidden: int = 64, depth: int = 2):
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, min=1)
        self.out_dim = check_int("out_dim", out_dim, min=1)
        sizes = [self.latent_dim] + [check_int("hidden", hidden, min=1)] * check_int("depth", depth, min=1)
        self.net = _mlp(sizes + [self.out_dim])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(_check_latent(z, self.latent_dim))


class MLPDiscriminator(nn.Module):
    """``x (Tensor[B, in_dim]) → logits (Tensor[B])``."""

    def __init__(self, in_dim: int = 2, hidden: int = 64, depth: int = 2):
        super().__init__()
        self.in_dim = check_int("in_dim", in_dim, min=1)
        sizes = [self.in_dim] + [check_int("hidden", hidden, min=1)] * check_int("depth", depth, min=1)
        self.net = _mlp(sizes + [1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=2, floating=True)
        if x.shape[1] != self.in_dim:
            raise ValueError(f"x must have shape (B, {self.in_dim}), got {tuple(x.shape)}")
        return self.net(x).flatten()


class GAN(nn.Module):
    """A generator and a discriminator in one module (one state_dict, one checkpoint).

    ``forward(z)`` runs the generator; :meth:`sample` draws ``z ~ N(0, I)`` from ``generator``.

    ``ema_decay`` (``None``: off) keeps ``average_generator``, an exponential moving average of the
    generator's weights, ``θ̄ ← d·θ̄ + (1 − d)·θ`` after every generator update (Yazıcı et al., 2019),
    its batch-norm statistics copied from the live generator. The average smooths the generator's
    oscillation in the two-player game; :meth:`sample` then draws from it. It is part of the
    ``state_dict`` (checkpoints, exact resume) but of no optimizer.

    ``augment`` (a sequence of :data:`~deepnotes.generative.augment.POLICIES` names, or one string
    of them joined by commas; empty: off) makes :meth:`discriminate` show the discriminator
    differentiably augmented images during training (DiffAugment, see
    :mod:`deepnotes.generative.augment`): real and generated alike, in both players' updates.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        ema_decay: float | None = None,
        augment: str | Sequence[str] = (),
    ):
        super().__init__()
        self.generator = check_type("generator", generator, nn.Module)
        self.discriminator = check_type("discriminator", discriminator, nn.Module)
        self.latent_dim = check_int("generator.latent_dim", getattr(generator, "latent_dim", None), min=1)
        self.ema_decay = None if ema_decay is None else check_float("ema_decay", ema_decay, min=0.0, max=1.0,
                                                                    max_inclusive=False)
        self.average_generator = (
            copy.deepcopy(generator).requires_grad_(False) if self.ema_decay is not None else None
        )
        if isinstance(augment, str):
            augment = [name.strip() for name in augment.split(",") if name.strip()]
        check_type("augment", augment, (list, tuple))
        self.augment = tuple(check_choice("augment", name, POLICIES) for name in augment)

    def discriminate(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The discriminator's logits (``Tensor[B]``) for training: of ``augment``-ed ``x`` if the GAN augments."""
        if self.augment:
            x = diff_augment(x, self.augment, generator)
        return self.discriminator(x)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        n = check_int("n", n, min=1)
        p = next(self.parameters())
        return torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype).to(p.device)

    @torch.no_grad()
    def update_average(self) -> None:
        """One moving-average step of ``average_generator`` towards the generator (no-op without ``ema_decay``)."""
        if self.average_generator is None:
            return
        for avg, live in zip(self.average_generator.parameters(), self.generator.parameters()):
            avg.lerp_(live, 1.0 - self.ema_decay)
        for avg, live in zip(self.average_generator.buffers(), self.generator.buffers()):
            avg.copy_(live)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples in eval mode (batch norm on its running statistics), from ``average_generator`` if kept."""
        net = self.average_generator if self.average_generator is not None else self.generator
        was_training = net.training
        net.eval()
        try:
            return net(self.latent(n, generator))
        finally:
            net.train(was_training)


#: The recorded digits setting (``deepnotes train --task generate --model dcgan`` flags), measured
#: through the CLI in the README's table (the Fréchet target is met on seed 0, missed on seeds 1, 2,
#: where even held-out real digits miss it).
DCGAN_DIGITS_SETTING = {
    "epochs": 400,
    "batch_size": 64,
    "lr": 1e-3,
    "optimizer": "adam_gan",
    "schedule": "cosine",
    "model_kw": {"width": 96, "ema_decay": 0.995, "augment": "translation"},
}


@MODELS.register(
    "dcgan",
    task="generate",
    description="DCGAN generator + discriminator for square power-of-two images",
    zoo=DCGAN_DIGITS_SETTING,
)
def dcgan(
    in_shape=(1, 8, 8),
    num_classes: int = 0,
    latent_dim: int = 32,
    width: int = 64,
    extra_layers: int = 1,
    ema_decay: float | None = None,
    augment: str | Sequence[str] = (),
) -> GAN:
    """A :class:`GAN` of :class:`DCGANGenerator` and :class:`DCGANDiscriminator` (``num_classes`` unused).

    ``ema_decay`` (e.g. 0.995) keeps a moving average of the generator's weights to sample from;
    ``augment`` (e.g. ``"translation"``) trains the discriminator on differentiably augmented images.
    The recorded digits setting (:data:`DCGAN_DIGITS_SETTING`; Adam β₁ = 0.5 at lr 1e-3 annealed to
    0, width 96, weight average, the discriminator seeing images shifted by up to one pixel)::

        deepnotes train --task generate --model dcgan --data digits --epochs 400 --lr 1e-3 \
            --optimizer adam_gan --schedule cosine --batch-size 64 --model-kw width=96 \
            --model-kw ema_decay=0.995 --model-kw augment=translation --threads 1 --out runs/dcgan
        deepnotes sample runs/dcgan --n 64 --out dcgan.png --quality 1000

    Without ``augment`` the discriminator memorizes the 1,250 training digits (its loss on the
    validation digits climbs to ≈ 1.8 > ln 4 while its training loss falls to ≈ 0.4) and the
    Fréchet distance stalls near 0.88 (seed 0); with it, 0.58 / 0.76 / 1.00 on seeds 0 / 1 / 2
    against 6.84 / 6.69 / 7.07 for the Gaussian baseline, each against its own split's test digits:
    the issue's 10× is met on seed 0 only (the README's table has the measured rows). At the size
    of the held-out digits (269, see :func:`~deepnotes.generative.quality.quality_report`) the
    samples score 0.80–1.40 / 0.83–1.43 / 1.23–1.48 (three disjoint draws) and real unseen digits
    0.82 / 1.31 / 1.43: by this measure the samples are as close to the test digits as real digits.
    """
    return GAN(
        DCGANGenerator(latent_dim, in_shape, width, extra_layers),
        DCGANDiscriminator(in_shape, width, extra_layers),
        ema_decay,
        augment,
    )
