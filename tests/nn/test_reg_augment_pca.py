import pytest
import torch
import torchvision.transforms.v2.functional as TF
from sklearn.decomposition import PCA as SkPCA

from deepnotes.classic.pca import PCA
from deepnotes.data.augment import (
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    color_jitter,
    hflip,
    random_crop,
    random_hflip,
)
from tests._reference import assert_same_maths

pytestmark = pytest.mark.usefixtures("one_thread")


def _imgs(n=6, c=3, h=7, w=9, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("c", [1, 3])
def test_colour_ops_match_torchvision_per_image(c):
    x = _imgs(c=c)
    f = torch.linspace(0.2, 1.8, len(x), dtype=torch.float64)
    for ours, ref in ((adjust_brightness, TF.adjust_brightness), (adjust_contrast, TF.adjust_contrast),
                      (adjust_saturation, TF.adjust_saturation)):
        out = ours(x, f)
        expected = torch.stack([ref(img, float(fi)) for img, fi in zip(x, f)])
        assert_same_maths(out, expected)
    assert_same_maths(hflip(x), TF.horizontal_flip(x))


def test_color_jitter_replays_with_torchvision_and_is_seeded():
    x = _imgs()
    out, factors = color_jitter(x, 0.4, 0.5, 0.6, generator=torch.Generator().manual_seed(1), return_factors=True)
    again = color_jitter(x, 0.4, 0.5, 0.6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    expected = []
    for i, img in enumerate(x):
        img = TF.adjust_brightness(img, float(factors["brightness"][i]))
        img = TF.adjust_contrast(img, float(factors["contrast"][i]))
        expected.append(TF.adjust_saturation(img, float(factors["saturation"][i])))
    assert_same_maths(out, torch.stack(expected))
    assert factors["contrast"].min() >= 0.5 and factors["contrast"].max() <= 1.5
    assert torch.equal(color_jitter(x), x)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_random_crop_matches_torchvision_pad_and_crop(mode):
    x = _imgs(8, 3, 6, 6)
    out, (top, left) = random_crop(x, (5, 4), padding=2, padding_mode=mode, fill=0.5,
                                   generator=torch.Generator().manual_seed(2), return_offsets=True)
    tv_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    for i, img in enumerate(x):
        padded = TF.pad(img, [2], fill=0.5, padding_mode=tv_mode)
        assert torch.equal(out[i], TF.crop(padded, int(top[i]), int(left[i]), 5, 4))
    # offsets cover the whole range over many draws
    _, (t, lft) = random_crop(_imgs(400, 1, 6, 6), 4, padding=1, generator=torch.Generator().manual_seed(0),
                            return_offsets=True)
    assert set(t.tolist()) == set(range(5)) and set(lft.tolist()) == set(range(5))


def test_random_hflip_statistics_and_errors():
    x = _imgs(2000, 1, 2, 3)
    out = random_hflip(x, 0.3, generator=torch.Generator().manual_seed(0))
    flipped = (out != x).flatten(1).any(1)
    assert torch.equal(out[flipped], x[flipped].flip(-1)) and torch.equal(out[~flipped], x[~flipped])
    assert abs(flipped.double().mean().item() - 0.3) < 5 * (0.3 * 0.7 / 2000) ** 0.5
    assert torch.equal(random_hflip(x, 0.0), x) and torch.equal(random_hflip(x, 1.0), x.flip(-1))
    with pytest.raises(ValueError, match="p must be"):
        random_hflip(x, 1.5)
    with pytest.raises(ValueError, match="x must have 4"):
        hflip(torch.rand(3, 3))
    with pytest.raises(ValueError, match="size"):
        random_crop(x, 5)
    with pytest.raises(ValueError, match="brightness must be >= 0"):
        color_jitter(x, brightness=-0.1)
    with pytest.raises(ValueError, match="factor must be"):
        adjust_contrast(x, -1.0)


@pytest.mark.parametrize("k", [2, 5, 0.9, None])
def test_pca_matches_sklearn_up_to_sign(k):
    X = torch.randn(40, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    X = X @ torch.randn(6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = PCA(k).fit(X)
    ref = SkPCA(k, svd_solver="full").fit(X.numpy())
    assert ours.n_components_ == ref.n_components_
    signs = torch.sign((ours.components_ * torch.from_numpy(ref.components_)).sum(1))
    assert_same_maths(ours.components_ * signs[:, None], torch.from_numpy(ref.components_))
    assert_same_maths(ours.explained_variance_, torch.from_numpy(ref.explained_variance_))
    assert_same_maths(ours.explained_variance_ratio_, torch.from_numpy(ref.explained_variance_ratio_))
    assert_same_maths(ours.transform(X) * signs, torch.from_numpy(ref.transform(X.numpy())))
    assert_same_maths(ours.inverse_transform(ours.transform(X)),
                      torch.from_numpy(ref.inverse_transform(ref.transform(X.numpy()))))


def test_pca_errors():
    with pytest.raises(ValueError, match="n_components"):
        PCA(0)
    with pytest.raises(ValueError, match="n_components"):
        PCA(1.5)
    with pytest.raises(ValueError, match="n_components"):
        PCA(10).fit(torch.randn(5, 3))
    with pytest.raises(ValueError, match="X must be 2-D"):
        PCA(1).fit(torch.randn(1, 3))
    with pytest.raises(ValueError, match="not fitted"):
        PCA(1).transform(torch.randn(2, 3))
