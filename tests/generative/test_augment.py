"""Differentiable augmentation (DiffAugment) against slow per-image loops, its gradients, and the GAN option."""

import pytest
import torch

from deepnotes.generative import GAN, MLPDiscriminator, MLPGenerator, dcgan
from deepnotes.generative.augment import color, cutout, diff_augment, translate
from deepnotes.generative.training import gan_step, optimizers_step

G = torch.Generator().manual_seed(0)


def _images(b=64, c=2, h=8, w=6):
    return torch.rand(b, c, h, w, generator=G, dtype=torch.float64) + 0.1  # no zero pixels


def _shifted(img, dy, dx):  # slow loop: out[i, j] = img[i − dy, j − dx], zero outside
    out = torch.zeros_like(img)
    for i in range(img.shape[1]):
        for j in range(img.shape[2]):
            if 0 <= i - dy < img.shape[1] and 0 <= j - dx < img.shape[2]:
                out[:, i, j] = img[:, i - dy, j - dx]
    return out


def test_translate_shifts_each_image_by_at_most_the_ratio_and_uses_every_shift():
    x = _images()
    out = translate(x, ratio=0.25, generator=torch.Generator().manual_seed(1))  # up to 2 rows, 2 columns (6 · 0.25)
    seen = set()
    for img, got in zip(x, out):
        hits = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(_shifted(img, dy, dx), got)]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) > 15  # of 25 shifts in 64 images


def test_cutout_zeroes_one_clipped_square_per_image():
    x = _images(h=8, w=8)
    out = cutout(x, ratio=0.5, generator=torch.Generator().manual_seed(2))
    sizes = set()
    for img, got in zip(x, out):
        zero = (got == 0).all(0)
        assert torch.equal(got[:, ~zero], img[:, ~zero])  # untouched elsewhere
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert int(zero.sum()) == len(rows) * len(cols)  # a rectangle …
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all()  # … of consecutive rows and columns
        assert 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4
        sizes.add((len(rows), len(cols)))
    assert (4, 4) in sizes and len(sizes) > 1  # whole squares inside, clipped ones at the borders


def test_color_is_a_brightness_offset_and_a_contrast_scale_per_image():
    x = _images()
    out = color(x, generator=torch.Generator().manual_seed(3))
    for img, got in zip(x, out):
        offset = got.mean() - img.mean()  # the contrast scale keeps the mean
        scale = (got - got.mean()).norm() / (img - img.mean()).norm()
        assert -0.5 <= float(offset) <= 0.5 and 0.5 <= float(scale) <= 1.5
        torch.testing.assert_close(got, (img - img.mean()) * scale + img.mean() + offset, rtol=0, atol=1e-12)


@pytest.mark.parametrize("policy", [("translation",), ("cutout",), ("color",), ("translation", "cutout", "color")])
def test_diff_augment_is_differentiable(policy):
    x = _images(b=3, c=1, h=4, w=4).requires_grad_()

    def f(inp):  # the same draws at every call
        return diff_augment(inp, policy, torch.Generator().manual_seed(4), translation_ratio=0.25)

    assert torch.autograd.gradcheck(f, (x,))


def test_empty_policy_is_the_identity():
    x = _images(b=2)
    assert diff_augment(x, ()) is x


def test_gan_discriminates_augmented_images_only_when_asked():
    torch.manual_seed(0)
    plain = dcgan((1, 8, 8), latent_dim=4, width=8)
    aug = dcgan((1, 8, 8), latent_dim=4, width=8, augment="translation, cutout")
    aug.load_state_dict(plain.state_dict())
    assert aug.augment == ("translation", "cutout") and plain.augment == ()
    x = torch.rand(6, 1, 8, 8, generator=G)
    assert torch.equal(plain.discriminate(x), plain.discriminator(x))
    got = aug.discriminate(x, torch.Generator().manual_seed(5))
    want = aug.discriminator(diff_augment(x, ("translation", "cutout"), torch.Generator().manual_seed(5)))
    assert torch.equal(got, want) and not torch.equal(got, aug.discriminator(x))


def test_gan_step_with_augmentation_updates_both_networks():
    torch.manual_seed(0)
    gan = dcgan((1, 8, 8), latent_dim=4, width=8, augment=["translation"])
    opts = {n: torch.optim.SGD(getattr(gan, n).parameters(), lr=0.1) for n in ("generator", "discriminator")}
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    gan_step(gan, torch.rand(8, 1, 8, 8), optimizers_step(opts), generator=torch.Generator().manual_seed(0))
    changed = {k.split(".")[0] for k, v in gan.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"generator", "discriminator"}


# -- bad input -------------------------------------------------------------------------------------
def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="policy must be one of"):
        diff_augment(_images(b=2), ("rotation",))


def test_ratio_outside_zero_one_is_rejected():
    with pytest.raises(ValueError, match="cutout_ratio"):
        diff_augment(_images(b=2), ("cutout",), cutout_ratio=1.5)


def test_diff_augment_needs_image_batches():
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        diff_augment(torch.zeros(3, 8, 8), ("translation",))


def test_gan_rejects_an_unknown_augmentation():
    with pytest.raises(ValueError, match="augment must be one of"):
        GAN(MLPGenerator(2, 2, 4), MLPDiscriminator(2, 4), augment="flip")
