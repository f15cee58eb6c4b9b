"""Selective Search (Uijlings et al., 2013): object proposals by hierarchical grouping.

1. Over-segment the image (Felzenszwalb–Huttenlocher graph segmentation, scikit-image).
2. Describe every region by its size, box, colour histogram (25 bins per channel) and texture
   histogram (Gaussian derivatives in 8 orientations, 10 bins each per channel), both L1-normalised.
3. Repeatedly merge the most similar pair of *adjacent* regions, with

       s(a, b) = s_colour + s_texture + s_size + s_fill   (any subset may be switched off)
       s_colour = Σ_k min(c_a[k], c_b[k]),   s_texture = Σ_k min(t_a[k], t_b[k])
       s_size = 1 - (|a| + |b|) / |image|,   s_fill = 1 - (|box(a ∪ b)| - |a| - |b|) / |image|

   The merged region's histograms are the size-weighted means; it is adjacent to the neighbours of
   both. Every region ever formed (the initial ones and each merge) is a proposal.
4. Diversify: run the grouping in several colour spaces, over-segmentation scales and similarity
   sets; rank each hierarchy's regions by position (the whole image first) times a random number
   in [0, 1], pool all strategies, drop duplicate boxes.

Per merge, the work is vectorized (one argmax over the pair-similarity matrix, the new region's
similarities to all its neighbours at once); the merges themselves are sequential — each depends
on the previous one.
"""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.core.checks import check_choice, check_int, check_tensor

COLOUR_BINS, TEXTURE_BINS, ORIENTATIONS = 25, 10, 8
SIMILARITIES = ("colour", "texture", "size", "fill")


def _histograms(values: np.ndarray, labels: np.ndarray, n: int, bins: int) -> np.ndarray:
    """Per-region histograms of ``values`` (H, W, D) in [0, 1]: (n, D·bins), L1-normalised rows."""
    d = values.shape[-1]
    b = np.minimum((values.reshape(-1, d) * bins).astype(np.int64), bins - 1)  # (P, D)
    key = (labels.reshape(-1, 1) * d + np.arange(d)) * bins + b  # one bincount for all channels
    hist = np.bincount(key.ravel(), minlength=n * d * bins).reshape(n, d * bins).astype(np.float64)
    return hist / hist.sum(1, keepdims=True)


def _texture(image: np.ndarray) -> np.ndarray:
    """Gaussian-derivative (σ = 1) responses in 8 orientations per channel, scaled to [0, 1]."""
    from scipy.ndimage import gaussian_filter

    gy = np.stack([gaussian_filter(image[..., c], 1.0, order=(1, 0)) for c in range(image.shape[-1])], -1)
    gx = np.stack([gaussian_filter(image[..., c], 1.0, order=(0, 1)) for c in range(image.shape[-1])], -1)
    angles = np.arange(ORIENTATIONS // 2) * np.pi / (ORIENTATIONS // 2)
    d = np.cos(angles) * gx[..., None] + np.sin(angles) * gy[..., None]  # (H, W, C, 4)
    resp = np.concatenate([np.maximum(d, 0), np.maximum(-d, 0)], -1)  # 8 signed orientations
    resp = resp / np.maximum(resp.max(axis=(0, 1), keepdims=True), 1e-12)
    return resp.reshape(*image.shape[:2], -1)


def region_features(image: np.ndarray, labels: np.ndarray, texture: np.ndarray | None = None) -> dict:
    """Size, box (pixel-edge xyxy), colour and texture histograms of every label in ``labels``.

    ``texture`` : the image's oriented-derivative responses, if already computed (they depend on the
    image only, not on the segmentation).
    """
    from scipy.ndimage import find_objects

    n = int(labels.max()) + 1
    slices = find_objects(labels + 1)
    boxes = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices], dtype=np.float64)
    return {
        "size": np.bincount(labels.ravel(), minlength=n).astype(np.float64),
        "box": boxes,
        "colour": _histograms(image, labels, n, COLOUR_BINS),
        "texture": _histograms(_texture(image) if texture is None else texture, labels, n, TEXTURE_BINS),
    }


def adjacency(labels: np.ndarray) -> np.ndarray:
    """Boolean (n, n) matrix: regions sharing a horizontal or vertical pixel edge."""
    n = int(labels.max()) + 1
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    adj = np.zeros((n, n), dtype=bool)
    adj[a, b] = adj[b, a] = True
    np.fill_diagonal(adj, False)
    return adj


def _similarity(f: dict, i, j, image_area: float, use: tuple[str, ...]) -> np.ndarray:
    """s(i, j) element-wise for index arrays ``i`` and ``j`` (or one region ``i`` against many)."""
    s = np.zeros(len(j))
    if "colour" in use:
        s += np.minimum(f["colour"][i], f["colour"][j]).sum(1)
    if "texture" in use:
        s += np.minimum(f["texture"][i], f["texture"][j]).sum(1)
    if "size" in use:
        s += 1.0 - (f["size"][i] + f["size"][j]) / image_area
    if "fill" in use:
        lo = np.minimum(f["box"][i, :2], f["box"][j, :2])
        hi = np.maximum(f["box"][i, 2:], f["box"][j, 2:])
        box_area = np.prod(hi - lo, axis=1)
        s += 1.0 - (box_area - f["size"][i] - f["size"][j]) / image_area
    return s


def hierarchical_grouping(features: dict, adj: np.ndarray, image_area: float, use=SIMILARITIES) -> np.ndarray:
    """Greedy merging of the most similar adjacent pair until no adjacent pair is left.

    Returns the boxes of every region in creation order, Tensor-like (M, 4): the ``n`` initial
    regions, then one box per merge (ties in similarity: the smallest ``(i, j)`` pair merges first).
    """
    n = len(features["size"])
    total = 2 * n - 1
    f = {k: np.concatenate([v, np.zeros((n - 1, *v.shape[1:]))]) for k, v in features.items()}
    nbr = np.zeros((total, total), dtype=bool)
    nbr[:n, :n] = np.triu(adj, 1) | np.triu(adj.T, 1)
    sim = np.full((total, total), -np.inf)
    i_idx, j_idx = np.nonzero(nbr[:n, :n])
    sim[i_idx, j_idx] = _similarity(f, i_idx, j_idx, image_area, use)  # every adjacent pair at once
    count = n
    while count < total:
        flat = int(np.argmax(sim[:count, :count]))
        i, j = divmod(flat, count)
        if not np.isfinite(sim[i, j]):
            break  # no adjacent pair left (disconnected regions)
        t = count
        si, sj = f["size"][i], f["size"][j]
        for key in ("colour", "texture"):
            f[key][t] = (si * f[key][i] + sj * f[key][j]) / (si + sj)
        f["size"][t] = si + sj
        f["box"][t] = np.concatenate([np.minimum(f["box"][i, :2], f["box"][j, :2]),
                                      np.maximum(f["box"][i, 2:], f["box"][j, 2:])])
        neighbours = (nbr[i, :count] | nbr[:count, i] | nbr[j, :count] | nbr[:count, j])
        neighbours[[i, j]] = False
        for r in (i, j):  # i and j are gone: no pair may involve them any more
            nbr[r, :], nbr[:, r] = False, False
            sim[r, :], sim[:, r] = -np.inf, -np.inf
        js = np.nonzero(neighbours)[0]
        nbr[js, t] = True  # t is the newest region: store its pairs as (older, t)
        sim[js, t] = _similarity(f, t, js, image_area, use)
        count += 1
    return f["box"][:count]


def _colour_space(image: np.ndarray, space: str) -> np.ndarray:
    from skimage import color

    if space == "rgb":
        return image
    if space == "hsv":
        return color.rgb2hsv(image)
    lab = color.rgb2lab(image)  # L in [0, 100], a and b roughly in [-128, 127]
    return np.clip((lab + np.array([0.0, 128.0, 128.0])) / np.array([100.0, 255.0, 255.0]), 0.0, 1.0)


STRATEGIES = {
    "single": [("hsv", 100, SIMILARITIES)],
    "fast": [(space, k, use) for space in ("hsv", "lab") for k in (50, 100)
             for use in (SIMILARITIES, ("texture", "size", "fill"))],
}


def selective_search(image: torch.Tensor, mode: str = "fast", min_size: int = 20, sigma: float = 0.8,
                     seed: int = 0) -> torch.Tensor:
    """Selective Search proposals for ``image`` Tensor[3, H, W] (RGB in [0, 1]).

    mode : ``"single"`` (HSV, k = 100, all four similarities) or ``"fast"`` (the paper's fast
    diversification: HSV and Lab × k ∈ {50, 100} × {colour+texture+size+fill, texture+size+fill}).
    Returns Tensor[N, 4] float32 pixel-edge ``xyxy`` boxes, best-ranked first, without duplicates.
    """
    from skimage.segmentation import felzenszwalb

    check_tensor("image", image, ndim=3, floating=True, finite=True)
    if image.shape[0] != 3:
        raise ValueError(f"image must be RGB with shape (3, H, W), got {tuple(image.shape)}")
    check_choice("mode", mode, tuple(STRATEGIES))
    min_size = check_int("min_size", min_size, min=1)
    rgb = image.detach().permute(1, 2, 0).double().clamp(0, 1).cpu().numpy()
    area = float(rgb.shape[0] * rgb.shape[1])
    rng = np.random.default_rng(check_int("seed", seed, min=0))
    boxes, ranks = [], []
    spaces: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for space, k, use in STRATEGIES[mode]:
        if space not in spaces:  # the colour conversion and the texture responses, once per space
            img = _colour_space(rgb, space)
            spaces[space] = (img, _texture(img))
        img, texture = spaces[space]
        labels = felzenszwalb(img, scale=k, sigma=sigma, min_size=min_size, channel_axis=-1)
        hier = hierarchical_grouping(region_features(img, labels, texture), adjacency(labels), area, use)
        position = np.arange(len(hier), 0, -1)  # the last merge (largest region) ranks first
        boxes.append(hier)
        ranks.append(position * rng.random(len(hier)))
    boxes, ranks = np.concatenate(boxes), np.concatenate(ranks)
    boxes = boxes[np.argsort(ranks, kind="stable")]
    _, first = np.unique(boxes, axis=0, return_index=True)
    return torch.from_numpy(boxes[np.sort(first)]).to(torch.float32)
