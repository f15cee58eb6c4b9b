"""Sliding windows and Selective Search: each step against a plain loop written here."""

import numpy as np
import pytest
import torch

from deepnotes.data import ShapesDataset
from deepnotes.detection.proposals import sliding_window_boxes
from deepnotes.detection.selective_search import (
    SIMILARITIES,
    adjacency,
    hierarchical_grouping,
    region_features,
    selective_search,
)


def test_sliding_windows_equal_a_loop():
    sizes, (h, w), stride = [(8, 8), (4, 10), (20, 30)], (17, 23), (3, 5)
    ours = sliding_window_boxes((h, w), sizes, stride)
    ref = [[x, y, x + ww, y + wh] for wh, ww in sizes if wh <= h and ww <= w
           for y in range(0, h - wh + 1, stride[0]) for x in range(0, w - ww + 1, stride[1])]
    assert torch.equal(ours, torch.tensor(ref, dtype=torch.float32))
    assert len(sliding_window_boxes(16, [(32, 32)], 4)) == 0


@pytest.mark.parametrize(("kwargs", "exc", "word"), [
    ({"image_size": 0}, ValueError, "image_size"),
    ({"image_size": 16, "stride": (1, 2, 3)}, ValueError, "stride"),
    ({"image_size": 16, "window_sizes": []}, ValueError, "window_sizes"),
    ({"image_size": 16, "window_sizes": [(0, 4)]}, ValueError, r"window_sizes\[0\]"),
    ({"image_size": 16, "window_sizes": 8}, TypeError, "window_sizes"),
])
def test_sliding_windows_bad_input(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        sliding_window_boxes(**kwargs)


def _labels(seed, h=24, w=30):
    """A small over-segmentation: a random Voronoi map of 12 seeds, relabelled 0..n-1."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, (h, w), size=(12, 2))
    yy, xx = np.mgrid[:h, :w]
    lab = ((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2).argmin(-1)
    return np.unique(lab, return_inverse=True)[1].reshape(h, w), rng.random((h, w, 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_region_features_and_adjacency_equal_loops(seed):
    lab, img = _labels(seed)
    f = region_features(img, lab)
    n = lab.max() + 1
    for r in range(n):
        ys, xs = np.nonzero(lab == r)
        assert f["size"][r] == len(ys)
        assert f["box"][r].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        hist = np.concatenate([np.histogram(img[..., c][lab == r], bins=25, range=(0, 1))[0] for c in range(3)])
        np.testing.assert_allclose(f["colour"][r], hist / hist.sum(), rtol=0, atol=1e-12)
        assert f["texture"][r].shape == (3 * 8 * 10,) and abs(f["texture"][r].sum() - 1) < 1e-12
    adj = adjacency(lab)
    ref = np.zeros_like(adj)
    h, w = lab.shape
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0)):
                if y + dy < h and x + dx < w and lab[y, x] != lab[y + dy, x + dx]:
                    ref[lab[y, x], lab[y + dy, x + dx]] = ref[lab[y + dy, x + dx], lab[y, x]] = True
    assert np.array_equal(adj, ref)


def _slow_grouping(f, adj, area, use):
    """Greedy grouping with dicts and a scan over every live pair (ties: smallest (i, j))."""
    regions = {r: {k: f[k][r].copy() for k in f} for r in range(len(f["size"]))}
    pairs = {(i, j) for i in range(len(adj)) for j in range(i + 1, len(adj)) if adj[i, j]}

    def sim(a, b):
        s = 0.0
        if "colour" in use:
            s += np.minimum(a["colour"], b["colour"]).sum()
        if "texture" in use:
            s += np.minimum(a["texture"], b["texture"]).sum()
        if "size" in use:
            s += 1 - (a["size"] + b["size"]) / area
        if "fill" in use:
            box = np.r_[np.minimum(a["box"][:2], b["box"][:2]), np.maximum(a["box"][2:], b["box"][2:])]
            s += 1 - ((box[2] - box[0]) * (box[3] - box[1]) - a["size"] - b["size"]) / area
        return s

    boxes = [regions[r]["box"] for r in sorted(regions)]
    while pairs:
        i, j = max(sorted(pairs), key=lambda p: (sim(regions[p[0]], regions[p[1]]), -p[0], -p[1]))
        a, b = regions.pop(i), regions.pop(j)
        t = len(boxes)
        new = {"size": a["size"] + b["size"],
               "box": np.r_[np.minimum(a["box"][:2], b["box"][:2]), np.maximum(a["box"][2:], b["box"][2:])]}
        for k in ("colour", "texture"):
            new[k] = (a["size"] * a[k] + b["size"] * b[k]) / (a["size"] + b["size"])
        nbrs = {q for p in pairs if i in p or j in p for q in p} - {i, j}
        pairs = {p for p in pairs if i not in p and j not in p} | {(q, t) for q in nbrs}
        regions[t] = new
        boxes.append(new["box"])
    return np.array(boxes)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("use", [SIMILARITIES, ("texture", "size", "fill"), ("size",), ("colour", "fill")])
def test_hierarchical_grouping_equals_slow_loop(seed, use):
    lab, img = _labels(seed)
    f, adj = region_features(img, lab), adjacency(lab)
    ours = hierarchical_grouping(f, adj, float(lab.size), use)
    ref = _slow_grouping(f, adj, float(lab.size), use)
    assert ours.shape == (2 * len(f["size"]) - 1, 4)
    np.testing.assert_array_equal(ours, ref)
    assert ours[-1].tolist() == [0, 0, lab.shape[1], lab.shape[0]]


def test_selective_search_on_shapes():
    img, t = ShapesDataset(3, split="test")[0]
    boxes = selective_search(img, mode="single")
    assert boxes.dtype == torch.float32 and boxes.shape[1] == 4 and len(boxes) > len(t["boxes"])
    assert bool((boxes[:, 2] > boxes[:, 0]).all()) and bool((boxes[:, :2] >= 0).all()) and bool((boxes[:, 2:] <= 128).all())
    assert len(torch.unique(boxes, dim=0)) == len(boxes)
    assert [0.0, 0.0, 128.0, 128.0] in boxes.tolist()
    assert torch.equal(selective_search(img, mode="single", seed=4), selective_search(img, mode="single", seed=4))
    fast = selective_search(img, mode="fast")
    assert len(fast) >= len(boxes)


def test_selective_search_finds_a_lone_rectangle():
    img = torch.full((3, 64, 64), 0.2)
    img[:, 20:44, 10:50] = torch.tensor([0.9, 0.1, 0.1]).view(3, 1, 1)
    boxes = selective_search(img, mode="single")
    true = torch.tensor([10.0, 20.0, 50.0, 44.0])
    lo, hi = torch.maximum(boxes[:, :2], true[:2]), torch.minimum(boxes[:, 2:], true[2:])
    inter = (hi - lo).clamp(min=0).prod(1)
    iou = inter / ((boxes[:, 2:] - boxes[:, :2]).prod(1) + 40 * 24 - inter)
    assert float(iou.max()) >= 0.9  # Felzenszwalb's smoothing (sigma 0.8) blurs the edge by a pixel


@pytest.mark.parametrize(("image", "kwargs", "exc", "word"), [
    (torch.rand(64, 64), {}, ValueError, "image"),
    (torch.rand(4, 32, 32), {}, ValueError, "RGB"),
    (torch.full((3, 16, 16), float("nan")), {}, ValueError, "finite"),
    (torch.rand(3, 16, 16), {"mode": "quality"}, ValueError, "mode"),
    (torch.rand(3, 16, 16), {"min_size": 0}, ValueError, "min_size"),
    (torch.randint(0, 255, (3, 16, 16)), {}, TypeError, "image"),
])
def test_selective_search_bad_input(image, kwargs, exc, word):
    with pytest.raises(exc, match=word):
        selective_search(image, **kwargs)
