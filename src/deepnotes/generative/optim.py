"""The GAN optimizer setting in the registry: Adam with β₁ = 0.5 (Radford et al., 2016).

With the default β₁ = 0.9 the momentum of the two players' updates makes the alternating game
oscillate; DCGAN's β₁ = 0.5 is the usual remedy. Registered as ``adam_gan`` so the CLI can name it:
``deepnotes train --task generate --model dcgan --optimizer adam_gan``.
"""

from __future__ import annotations

from deepnotes.core.registry import OPTIMIZERS
from deepnotes.optim import Adam


@OPTIMIZERS.register("adam_gan", description="Adam with DCGAN's betas (0.5, 0.999)")
def adam_gan(params, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999), **kwargs) -> Adam:
    """:class:`deepnotes.optim.Adam` with ``betas=(0.5, 0.999)`` unless given."""
    return Adam(params, lr=lr, betas=betas, **kwargs)
