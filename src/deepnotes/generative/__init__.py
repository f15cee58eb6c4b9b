"""Generative models: GANs (DCGAN-style and MLP) and the variational autoencoder, with sample-quality measures."""

from deepnotes.generative.augment import POLICIES, diff_augment
from deepnotes.generative.callbacks import SampleGrid
from deepnotes.generative.elbo import (
    bernoulli_log_likelihood,
    elbo,
    gaussian_kl,
    gaussian_log_likelihood,
    reparameterize,
)
from deepnotes.generative.gan_losses import (
    GENERATOR_LOSSES,
    discriminator_loss,
    generator_loss,
    optimal_discriminator,
)
from deepnotes.generative.grid import image_grid, save_grid
from deepnotes.generative.latent_prior import LatentMixture
from deepnotes.generative.networks import (
    GAN,
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    dcgan,
)
from deepnotes.generative.optim import adam_gan
from deepnotes.generative.quality import (
    classifier_outputs,
    digits_scorer,
    digits_tensors,
    feature_statistics,
    frechet_distance,
    gaussian_baseline,
    quality_report,
    sample_quality,
)
from deepnotes.generative.vae import LIKELIHOODS, VAE, vae

__all__ = [
    "GAN",
    "GENERATOR_LOSSES",
    "LIKELIHOODS",
    "LatentMixture",
    "VAE",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "POLICIES",
    "adam_gan",
    "bernoulli_log_likelihood",
    "classifier_outputs",
    "dcgan",
    "diff_augment",
    "digits_scorer",
    "digits_tensors",
    "discriminator_loss",
    "elbo",
    "feature_statistics",
    "frechet_distance",
    "gaussian_baseline",
    "gaussian_kl",
    "gaussian_log_likelihood",
    "generator_loss",
    "optimal_discriminator",
    "reparameterize",
    "SampleGrid",
    "image_grid",
    "quality_report",
    "sample_quality",
    "save_grid",
    "vae",
]
