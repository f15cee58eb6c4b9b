"""Methods without a captum equivalent, against slow loops, hand-computed values or scikit-learn."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.transforms.v2.functional import gaussian_blur as tv_blur

from deepnotes.explain import (
    activation_maps,
    class_model,
    clip_smallest,
    embed_2d,
    filter_grid,
    first_layer_filters,
    gaussian_blur,
    layer_geometry,
    nearest_neighbors,
    neighbor_label_agreement,
    normalize_filters,
    penultimate_features,
    top_patches,
    total_variation,
)
from deepnotes.models.basic import SmallCNN
from deepnotes.nn.calculators import receptive_field
from tests._reference import assert_same_maths
from tests.explain._models import Chain, images


def test_filters_are_the_first_conv_and_grid_places_each_normalized_filter():
    torch.manual_seed(0)
    model = SmallCNN((3, 8, 8), 4, width=5).double()
    w = first_layer_filters(model)
    assert torch.equal(w, model.features[0].weight.detach())
    norm = normalize_filters(w)
    for i in range(5):  # each filter scaled to [0, 1] on its own
        f = w[i]
        assert_same_maths(norm[i], (f - f.min()) / (f.max() - f.min()))
    grid = filter_grid(w, ncols=2, padding=1, pad_value=1.0)
    assert grid.shape == (3, 3 * 4 + 1, 2 * 4 + 1)
    expected = torch.ones(3, 13, 9, dtype=torch.float64)
    for i in range(5):
        r, c = divmod(i, 2)
        for y in range(3):
            for x in range(3):
                expected[:, 1 + r * 4 + y, 1 + c * 4 + x] = norm[i, :, y, x]
    assert torch.equal(grid, expected)


def test_constant_filter_is_mid_grey():
    w = torch.zeros(2, 1, 3, 3, dtype=torch.float64)
    w[1, 0, 0, 0] = 1.0
    norm = normalize_filters(w)
    assert torch.equal(norm[0], torch.full((1, 3, 3), 0.5, dtype=torch.float64))
    assert norm[1].max() == 1.0 and norm[1].min() == 0.0


def test_penultimate_features_are_the_head_input_in_any_batch_size():
    torch.manual_seed(0)
    model = SmallCNN((2, 8, 8), 4, width=3).double().eval()
    x = images(n=7)
    expected = model.features(x).flatten(1)
    assert_same_maths(penultimate_features(model, x, batch_size=3), expected)
    assert_same_maths(penultimate_features(model, x, layer="head"), expected)
    # another layer's input, flattened
    assert_same_maths(penultimate_features(model, x, layer="features.3"), model.features[:3](x).flatten(1))


def test_nearest_neighbors_equal_a_slow_loop():
    g = torch.Generator().manual_seed(3)
    bank = torch.randn(30, 2, 3, 3, generator=g, dtype=torch.float64)
    query = torch.randn(6, 2, 3, 3, generator=g, dtype=torch.float64)
    got = nearest_neighbors(query, bank, k=4)
    for i in range(6):
        d = [float(((query[i] - bank[j]) ** 2).sum()) for j in range(30)]
        assert got[i].tolist() == sorted(range(30), key=lambda j: (d[j], j))[:4]
    own = nearest_neighbors(bank, bank, k=3, exclude_self=True)
    for i in range(30):
        d = [float(((bank[i] - bank[j]) ** 2).sum()) if j != i else math.inf for j in range(30)]
        assert own[i].tolist() == sorted(range(30), key=lambda j: (d[j], j))[:3]


def test_neighbor_label_agreement_by_hand():
    nb = torch.tensor([[0, 1], [2, 3]])
    labels = torch.tensor([5, 5, 7, 1])
    assert neighbor_label_agreement(nb, labels, torch.tensor([5, 7])) == pytest.approx(3 / 4)


def test_embed_2d_is_sklearns_pca_and_tsne():
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    g = torch.Generator().manual_seed(0)
    f = torch.randn(40, 6, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(embed_2d(f, "pca"), PCA(2, random_state=0).fit_transform(f.numpy()), rtol=1e-12, atol=1e-12)
    t = embed_2d(f, "tsne", perplexity=10.0, max_iter=250)
    ref = TSNE(2, perplexity=10.0, init="pca", random_state=0, max_iter=250).fit_transform(f.numpy())
    np.testing.assert_allclose(t, ref, rtol=1e-10, atol=1e-10)
    assert embed_2d(f[:5], "tsne", max_iter=250).shape == (5, 2)  # perplexity capped for a tiny set


def test_activation_maps_are_the_layer_output():
    torch.manual_seed(0)
    model = Chain().double().eval()
    x = images()
    assert_same_maths(activation_maps(model, "features.2", x), model.features[:3](x))


class _LinearChain(nn.Module):
    """Positive weights, no ReLU, average pooling: a unit's input gradient is non-zero exactly on its field."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, stride=1, padding=1, bias=False)
        self.b = nn.Conv2d(2, 2, 3, stride=2, padding=2, dilation=2, bias=False)
        self.pool = nn.AvgPool2d(2)
        self.c = nn.Conv2d(2, 3, 2, stride=1, padding=0, bias=False)
        for m in (self.a, self.b, self.c):
            m.weight.data.uniform_(0.5, 1.0)

    def forward(self, x):
        return self.c(self.pool(self.b(self.a(x)))).mean(dim=(2, 3))


@pytest.mark.parametrize("layer", ["a", "b", "pool", "c"])
def test_receptive_field_equals_the_gradient_support(layer):
    torch.manual_seed(0)
    model = _LinearChain().double()
    x = torch.rand(1, 1, 24, 24, dtype=torch.float64)
    geo = layer_geometry(model, layer, x)
    mods = list(model.children())
    upto = mods[: [n for n, _ in model.named_children()].index(layer) + 1]
    assert (geo.size, geo.jump) == (receptive_field(upto)["size"], receptive_field(upto)["jump"])
    xg = x.clone().requires_grad_()
    out = nn.Sequential(*upto)(xg)
    h, w = out.shape[-2:]
    for i, j in [(0, 0), (h // 2, w // 3), (h - 1, w - 1)]:
        (g,) = torch.autograd.grad(out[0, 0, i, j], xg, retain_graph=True)
        rows = torch.nonzero(g[0, 0].abs().sum(1)).flatten()
        cols = torch.nonzero(g[0, 0].abs().sum(0)).flatten()
        (y0, y1), (x0, x1) = geo.span(torch.tensor(i)), geo.span(torch.tensor(j))
        # the support is the field clipped to the image (dilation leaves holes, not a smaller box)
        assert (int(rows.min()), int(rows.max()) + 1) == (max(int(y0), 0), min(int(y1), 24))
        assert (int(cols.min()), int(cols.max()) + 1) == (max(int(x0), 0), min(int(x1), 24))


def test_top_patches_equal_a_slow_loop():
    torch.manual_seed(0)
    model = Chain().double().eval()
    x = images(n=6)
    res = top_patches(model, "features.3", x, channel=2, k=4, fill=-1.0)
    with torch.no_grad():
        maps = model.features[:4](x)[:, 2]
    best = [(float(maps[n].max()), n) for n in range(6)]
    order = [n for _, n in sorted(best, key=lambda t: (-t[0], t[1]))][:4]
    assert res.image_index.tolist() == order
    size, jump, start = res.geometry.size, res.geometry.jump, res.geometry.start
    # by hand: conv 3x3 pad 1 → (size 3, jump 1, start −1); pool 2x2 → (4, 2, −1); conv 3x3 pad 1 → (4 + 2·2, 2, −1 − 1·2)
    assert (size, jump, start) == (8, 2, -3)
    for r, n in enumerate(order):
        i, j = divmod(int(maps[n].flatten().argmax()), maps.shape[-1])
        assert res.position[r].tolist() == [i, j]
        assert float(res.value[r]) == float(maps[n, i, j])
        for dy in range(size):
            for dx in range(size):
                y, xx = start + i * jump + dy, start + j * jump + dx
                inside = 0 <= y < 8 and 0 <= xx < 8
                want = x[n, :, y, xx] if inside else torch.full((2,), -1.0, dtype=torch.float64)
                assert torch.equal(res.patches[r, :, dy, dx], want)
        y0, x0 = start + i * jump, start + j * jump
        assert res.box[r].tolist() == [max(y0, 0), max(x0, 0), min(y0 + size, 8), min(x0 + size, 8)]


def test_class_model_without_regularizers_is_the_closed_form_on_a_linear_model():
    # S_c(I) = w_c · I: with L2 λ, I_t = (1 − 2·lr·λ)·I_{t−1} + lr·w_c, so I_T = lr·w_c·Σ_{t<T} a^t
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.Flatten(), nn.Linear(9, 3)).double()
    model[0].weight.data.fill_(1.0)
    wc = model[2].weight.detach()[1].reshape(1, 1, 3, 3)
    lr, lam, T = 0.3, 0.2, 7
    a = 1 - 2 * lr * lam
    img = class_model(model, 1, (1, 3, 3), steps=T, lr=lr, l2=lam, blur_every=0, value_clip=0, grad_clip=0)
    assert_same_maths(img, lr * wc * sum(a**t for t in range(T)))
    plain = class_model(model, 1, (1, 3, 3), steps=T, lr=lr, l2=0.0, blur_every=0)
    assert_same_maths(plain, T * lr * wc)


def _slow_clip(image, strength, fraction):
    out = image.clone()
    n, _, h, w = image.shape
    m = math.floor(fraction * h * w)
    for b in range(n):
        vals = [(float(strength[b].flatten()[p]), p) for p in range(h * w)]
        for _, p in sorted(vals)[:m]:
            out[b, :, p // w, p % w] = 0
    return out


def test_clip_smallest_equals_a_slow_loop():
    g = torch.Generator().manual_seed(0)
    img = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    strength = img.norm(dim=1)
    strength[0, 0, :3] = 0.0  # ties: the lower index goes first
    assert torch.equal(clip_smallest(img, strength, 0.3), _slow_clip(img, strength, 0.3))
    assert torch.equal(clip_smallest(img, strength, 0.0), img)


def test_class_model_with_every_regularizer_equals_a_slow_loop():
    torch.manual_seed(0)
    model = Chain(c=2, k=4).double().eval()
    kw = dict(steps=6, lr=0.2, l2=0.05, blur_every=2, blur_sigma=0.7, value_clip=0.1, grad_clip=0.2, clamp=(-1.0, 1.0))
    got = class_model(model, torch.tensor([1, 3]), (2, 8, 8), **kw)
    img = torch.zeros(2, 2, 8, 8, dtype=torch.float64)
    for t in range(1, 7):
        for b, c in enumerate((1, 3)):
            x = img[b : b + 1].clone().requires_grad_()
            obj = model(x)[0, c] - 0.05 * (x**2).sum()
            (g,) = torch.autograd.grad(obj, x)
            new = (x + 0.2 * g).detach()
            new = _slow_clip(new, new.norm(dim=1), 0.1)
            new = _slow_clip(new, g.norm(dim=1), 0.2)
            if t % 2 == 0:
                new = tv_blur(new, kernel_size=[2 * math.ceil(2.1) + 1] * 2, sigma=[0.7, 0.7])
            img[b] = new.clamp(-1.0, 1.0)[0]
    assert_same_maths(got, img)


@pytest.mark.parametrize("sigma", [0.3, 0.5, 1.0, 1.7])
def test_gaussian_blur_equals_torchvision(sigma):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 11, 12, generator=g, dtype=torch.float64)
    size = 2 * math.ceil(3 * sigma) + 1
    assert_same_maths(gaussian_blur(img, sigma), tv_blur(img, kernel_size=[size, size], sigma=[sigma, sigma]))
    with pytest.raises(ValueError, match="too wide"):
        gaussian_blur(img[..., :3, :3], sigma + 1.0)


def test_total_variation_by_hand():
    img = torch.tensor([[[[0.0, 1.0], [1.0, 3.0]]]], dtype=torch.float64)
    # vertical |1−0|, |3−1|; horizontal |1−0|, |3−1| → mean 1.5
    assert total_variation(img).tolist() == [1.5]
