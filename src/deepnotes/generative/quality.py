"""Sample quality of a digits generator, measured with a separately trained digits classifier.

- **Fréchet distance** between Gaussians fitted to the classifier's penultimate features of the
  samples and of the real test digits (the FID recipe, with our small ``cnn`` in place of Inception):
  ``d² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{½} Σ₂ Σ₁^{½})^{½})``.
- **Confident share**: the fraction of samples the classifier assigns to some class with
  probability ≥ 0.9 (a recognisable digit), and the **class histogram** of its predictions (mode
  coverage: a collapsed generator puts most samples in few classes).
- **Baseline**: Gaussian noise with the training digits' mean and covariance — it matches the
  first two pixel moments and nothing else.
- **Floor**: the split's validation digits, which no generator or scorer trained on, scored at
  their own size (:func:`quality_report`). With 269 reference digits the Fréchet distance of
  real unseen digits is far from 0, and its ratio to the baseline varies widely between splits.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from deepnotes.core.checks import check_int, check_probability, check_tensor
from deepnotes.core.seeding import make_generator


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition."""
    vals, vecs = torch.linalg.eigh((a + a.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> torch.Tensor:
    """Squared Fréchet (2-Wasserstein) distance between ``N(mu1, cov1)`` and ``N(mu2, cov2)``.

    ``tr((Σ₁Σ₂)^{½})`` is computed as ``tr((Σ₁^{½} Σ₂ Σ₁^{½})^{½})``, the same value through a
    symmetric matrix (eigendecompositions instead of a general matrix square root). mu (Tensor[D]),
    cov (Tensor[D, D]) → scalar.
    """
    for name, m in (("mu1", mu1), ("mu2", mu2)):
        check_tensor(name, m, ndim=1, floating=True, finite=True)
    for name, c in (("cov1", cov1), ("cov2", cov2)):
        check_tensor(name, c, ndim=2, floating=True, finite=True)
    d = mu1.shape[0]
    if mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(
            f"shapes must be mu (D,), cov (D, D) with one D; got {tuple(mu1.shape)}, {tuple(cov1.shape)}, "
            f"{tuple(mu2.shape)}, {tuple(cov2.shape)}"
        )
    s1 = _sqrtm_psd(cov1)
    cross = torch.linalg.eigvalsh(s1 @ cov2 @ s1).clamp(min=0).sqrt().sum()
    return ((mu1 - mu2) ** 2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * cross


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (``Tensor[D]``) and unbiased covariance (``Tensor[D, D]``) of ``features (Tensor[N, D])``, N ≥ 2."""
    check_tensor("features", features, ndim=2, floating=True, finite=True)
    if features.shape[0] < 2:
        raise ValueError(f"features needs at least 2 rows for a covariance, got {features.shape[0]}")
    return features.mean(0), torch.cov(features.T).reshape(features.shape[1], features.shape[1])


def gaussian_baseline(data: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` draws of ``N(mean, cov)`` fitted to ``data (Tensor[N, *shape])``, shaped like ``data``'s rows.

    Not clipped to the pixel range. The covariance of digits is singular (constant corner
    pixels), so draws use ``V diag(√λ)`` from its eigendecomposition instead of a Cholesky factor.
    """
    check_tensor("data", data, floating=True, finite=True)
    n = check_int("n", n, min=1)
    flat = data.flatten(1).double()
    mean, cov = feature_statistics(flat)
    vals, vecs = torch.linalg.eigh(cov)
    factor = vecs * vals.clamp(min=0).sqrt()
    eps = torch.randn(n, flat.shape[1], generator=generator, dtype=torch.float64)
    return (mean + eps @ factor.T).to(data.dtype).view(n, *data.shape[1:])


def digits_tensors(split: str = "train", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``Tensor[N, 1, 8, 8]`` and labels ``Tensor[N]`` of one split of the bundled digits."""
    from deepnotes.core.checks import check_choice
    from deepnotes.data.builtin import digits

    subset = getattr(digits(seed=seed), check_choice("split", split, ("train", "val", "test")))
    idx = torch.as_tensor(subset.indices)
    return subset.dataset.inputs[idx], subset.dataset.targets[idx]


@functools.lru_cache(maxsize=4)
def digits_scorer(seed: int = 0, epochs: int = 15) -> torch.nn.Module:
    """The small ``cnn`` (width 16) trained on the digits training split (cached per process).

    Adam, lr 1e-2, batch 64, ``epochs`` epochs: a few seconds on one core, ≈ 97 % test accuracy.
    """
    from deepnotes.models.basic import SmallCNN

    x, y = digits_tensors("train", check_int("seed", seed, min=0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN((1, 8, 8), 10, width=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = make_generator(seed)
    model.train()
    with torch.enable_grad():  # callers may sit under no_grad (sample_quality does)
        _fit(model, opt, x, y, check_int("epochs", epochs, min=1), g)
    return model.eval().requires_grad_(False)


def _fit(model, opt, x, y, epochs, g) -> None:
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()


@torch.no_grad()
def classifier_outputs(model: torch.nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features (``Tensor[N, F]``) and class probabilities (``Tensor[N, 10]``) of the scorer."""
    feats = model.features(images.float()).flatten(1)
    return feats.double(), F.softmax(model.head(feats), dim=1).double()


@torch.no_grad()
def sample_quality(
    samples: torch.Tensor,
    real: torch.Tensor | None = None,
    scorer: torch.nn.Module | None = None,
    threshold: float = 0.9,
    data_seed: int = 0,
) -> dict[str, float | list[float]]:
    """Fréchet distance to ``real`` (default: the digits test split), confident share and class histogram.

    samples (Tensor[N, 1, 8, 8]), N ≥ 2 → ``{"frechet", "confident_share", "class_shares", "min_class_share",
    "n"}``; ``class_shares`` are the shares of samples per predicted class (all samples, confident or not).
    ``data_seed`` is the seed of the digits split the generator was trained on: the default ``real``
    digits are that split's test set and the default scorer is trained on its training set, so no
    image the generator saw is used as the reference.
    """
    check_tensor("samples", samples, ndim=4, floating=True, finite=True)
    if tuple(samples.shape[1:]) != (1, 8, 8):
        raise ValueError(f"samples must have shape (N, 1, 8, 8) (digits), got {tuple(samples.shape)}")
    threshold = check_probability("threshold", threshold)
    data_seed = check_int("data_seed", data_seed, min=0)
    scorer = scorer if scorer is not None else digits_scorer(data_seed)
    if real is None:
        real = digits_tensors("test", data_seed)[0]
    f_fake, p_fake = classifier_outputs(scorer, samples)
    f_real, _ = classifier_outputs(scorer, check_tensor("real", real, ndim=4, floating=True, finite=True))
    fd = frechet_distance(*feature_statistics(f_fake), *feature_statistics(f_real))
    conf, cls = p_fake.max(1)
    shares = torch.bincount(cls, minlength=p_fake.shape[1]).double() / len(cls)
    return {
        "frechet": float(fd),
        "confident_share": float((conf >= threshold).double().mean()),
        "class_shares": [round(float(s), 4) for s in shares],
        "min_class_share": float(shares.min()),
        "n": len(samples),
    }


def quality_report(samples: torch.Tensor, seed: int = 0, data_seed: int = 0) -> dict[str, dict]:
    """:func:`sample_quality` of ``samples`` beside the Gaussian baseline and real digits, at two sizes.

    ``data_seed`` names the digits split the generator was trained on (the run's ``--seed``); every
    row is measured against that split's test digits. Rows (each a :func:`sample_quality` dict):

    * ``samples``, ``baseline``, ``real_train``: all the given samples, as many baseline draws
      (seeded by ``seed``) from ``N(mean, cov)`` of the split's training digits, and as many
      training digits (capped at the split's size);
    * ``heldout_samples``, ``heldout_baseline``, ``heldout_real``: at the size of the split's
      validation set (269 digits), its first samples, as many baseline draws, and the validation
      digits themselves. Those digits took no part in a gradient step of the generator or of the
      scorer, so ``heldout_real`` is about what a generator of new, perfect digits would score at that
      size: the floor of the measure. Training digits are no such floor: the scorer was fitted on
      them, so their features differ from those of unseen digits.

    The Fréchet distance of finite samples is biased upwards, the more so the fewer the samples,
    so compare rows of one size only.
    """
    check_tensor("samples", samples, ndim=4, floating=True, finite=True)
    data_seed = check_int("data_seed", data_seed, min=0)
    train = digits_tensors("train", data_seed)[0]
    heldout = digits_tensors("val", data_seed)[0]
    g = make_generator(check_int("seed", seed, min=0))
    n = len(samples)
    m = min(n, len(heldout))
    report = {
        "samples": samples,
        "baseline": gaussian_baseline(train, n, g),
        "real_train": train[:n],
        "heldout_samples": samples[:m],
        "heldout_baseline": gaussian_baseline(train, m, g),
        "heldout_real": heldout[:m],
    }
    return {row: sample_quality(x, data_seed=data_seed) for row, x in report.items()}
