"""GAN objectives on discriminator logits ``s`` (``D = σ(s)``), written with softplus for stability.

The value function is ``V(D, G) = E_data[log D(x)] + E_z[log(1 − D(G(z)))]``. With
``log σ(s) = −softplus(−s)`` and ``log(1 − σ(s)) = −softplus(s)``:

- discriminator (maximizes V, i.e. minimizes)   ``E[softplus(−s_real)] + E[softplus(s_fake)]``
- generator, minimax (minimizes V)              ``E[log(1 − D(G(z)))] = −E[softplus(s_fake)]``
- generator, non-saturating (maximizes log D)   ``−E[log D(G(z))] = E[softplus(−s_fake)]``

When the discriminator confidently rejects fakes (``s_fake ≪ 0``) the minimax gradient with respect
to ``s_fake`` is ``−σ(s_fake) → 0`` (it saturates) while the non-saturating one is
``−(1 − σ(s_fake)) → −1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepnotes.core.checks import check_choice, check_tensor

GENERATOR_LOSSES = ("non_saturating", "minimax")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``−E[log D(x)] − E[log(1 − D(G(z)))]``: binary cross-entropy with real = 1, fake = 0.

    real_logits (Tensor[N]), fake_logits (Tensor[M]) → scalar (each term is a mean).
    """
    check_tensor("real_logits", real_logits, floating=True, nonempty=True)
    check_tensor("fake_logits", fake_logits, floating=True, nonempty=True)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """The generator's loss on ``fake_logits (Tensor[M])`` = logits of ``D(G(z))``; a scalar.

    kind : ``"non_saturating"`` (``−E[log D(G(z))]``, the default everyone trains with) or
        ``"minimax"`` (``E[log(1 − D(G(z)))]``, the original game's objective).
    """
    check_tensor("fake_logits", fake_logits, floating=True, nonempty=True)
    check_choice("kind", kind, GENERATOR_LOSSES)
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    return F.softplus(-fake_logits).mean()


def optimal_discriminator(p_data: torch.Tensor, p_model: torch.Tensor) -> torch.Tensor:
    """``D*(x) = p_data(x) / (p_data(x) + p_g(x))`` for a fixed generator; 1/2 where both densities are 0."""
    check_tensor("p_data", p_data, floating=True)
    check_tensor("p_model", p_model, floating=True)
    if bool((p_data < 0).any()) or bool((p_model < 0).any()):
        raise ValueError("p_data and p_model must be densities (>= 0)")
    total = p_data + p_model
    return torch.where(total > 0, p_data / total.where(total > 0, torch.ones_like(total)), torch.full_like(total, 0.5))
