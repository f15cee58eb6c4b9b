"""Anchors, matcher and sampler against torchvision; k-means anchors against a slow loop."""

import pytest
import torch
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler as TVSampler
from torchvision.models.detection._utils import Matcher as TVMatcher
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.image_list import ImageList

from deepnotes.core.seeding import make_generator
from deepnotes.detection import (
    AnchorGenerator,
    BalancedPositiveNegativeSampler,
    Matcher,
    box_iou,
    kmeans_anchors,
    wh_iou,
)
from deepnotes.detection.anchors import seed_centres


def tv_anchors(sizes, ratios, image_size, feature_sizes):
    gen = TVAnchorGenerator(sizes, ratios)
    images = ImageList(torch.zeros(1, 3, *image_size), [tuple(image_size)])
    feats = [torch.zeros(1, 8, h, w) for h, w in feature_sizes]
    return gen(images, feats)[0]


@pytest.mark.parametrize(
    "sizes,ratios,image_size,feature_sizes",
    [
        (((128, 256, 512),), ((0.5, 1.0, 2.0),), (800, 1216), [(50, 76)]),
        (
            ((32,), (64,), (128,), (256,), (512,)),
            ((0.5, 1.0, 2.0),) * 5,
            (512, 640),
            [(128, 160), (64, 80), (32, 40), (16, 20), (8, 10)],
        ),
        (((16, 24), (48, 60)), ((0.33, 1.0, 3.0), (1.0,)), (97, 131), [(13, 17), (7, 9)]),
    ],
)
def test_anchor_generator_equals_torchvision(sizes, ratios, image_size, feature_sizes):
    ours = AnchorGenerator(sizes, ratios)(image_size, feature_sizes)
    ref = tv_anchors(sizes, ratios, image_size, feature_sizes)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    assert torch.equal(ours, ref)
    assert (
        AnchorGenerator(sizes, ratios).num_anchors_per_location()
        == TVAnchorGenerator(sizes, ratios).num_anchors_per_location()
    )


def random_quality(seed, m=6, n=40, ties=True):
    g = torch.Generator().manual_seed(seed)
    q = torch.rand(m, n, generator=g, dtype=torch.float64)
    if ties:
        q = (q * 10).round() / 10  # many exact ties, also of each row's maximum
    return q


@pytest.mark.parametrize("allow_low", [False, True])
@pytest.mark.parametrize("thresholds", [(0.7, 0.3), (0.5, 0.5), (0.5, 0.4)])
@pytest.mark.parametrize("seed", range(5))
def test_matcher_equals_torchvision(seed, thresholds, allow_low):
    q = random_quality(seed, ties=seed % 2 == 0)
    ours = Matcher(*thresholds, allow_low_quality_matches=allow_low)(q)
    ref = TVMatcher(*thresholds, allow_low_quality_matches=allow_low)(q.clone())
    assert torch.equal(ours, ref)


def test_matcher_on_box_iou_matches_torchvision():
    g = torch.Generator().manual_seed(3)
    gt = torch.tensor([[10.0, 10, 50, 50], [60, 60, 120, 100], [0, 80, 30, 120]])
    anchors = AnchorGenerator(((32, 64),), ((0.5, 1.0, 2.0),))((128, 128), [(8, 8)])
    anchors = anchors + torch.rand(anchors.shape, generator=g)
    anchors = torch.cat(
        [
            torch.minimum(anchors[:, :2], anchors[:, 2:]),
            torch.maximum(anchors[:, :2], anchors[:, 2:]),
        ],
        1,
    )
    q = box_iou(gt, anchors)
    assert torch.equal(Matcher(0.7, 0.3, True)(q), TVMatcher(0.7, 0.3, True)(q))


def test_sampler_equals_torchvision_under_the_same_seed():
    g = torch.Generator().manual_seed(0)
    labels = [torch.randint(-1, 3, (500,), generator=g) for _ in range(3)] + [
        torch.zeros(10, dtype=torch.int64)
    ]
    torch.manual_seed(123)
    ours = BalancedPositiveNegativeSampler(256, 0.25)(labels)
    torch.manual_seed(123)
    ref = TVSampler(256, 0.25)(labels)
    for a, b in zip(ours[0] + ours[1], ref[0] + ref[1]):
        assert torch.equal(a, b)
    pos, neg = ours
    assert all(int(p.sum()) <= 64 for p in pos) and all(
        int(p.sum() + n.sum()) <= 256 for p, n in zip(pos, neg)
    )


def test_wh_iou_is_box_iou_of_corner_aligned_boxes():
    wh = torch.rand(20, 2, dtype=torch.float64) * 50 + 1
    c = torch.rand(5, 2, dtype=torch.float64) * 50 + 1
    boxes = lambda x: torch.cat([torch.zeros_like(x), x], 1)  # noqa: E731
    torch.testing.assert_close(wh_iou(wh, c), box_iou(boxes(wh), boxes(c)), rtol=1e-12, atol=1e-12)


def slow_kmeans(wh, centres, distance, max_iter=300):
    """Plain Lloyd iterations with loops, from given starting centres."""
    wh = wh.tolist()
    centres = [list(c) for c in centres.tolist()]

    def d(b, c):
        if distance == "euclidean":
            return (b[0] - c[0]) ** 2 + (b[1] - c[1]) ** 2
        inter = min(b[0], c[0]) * min(b[1], c[1])
        return 1 - inter / (b[0] * b[1] + c[0] * c[1] - inter)

    assign = None
    for _ in range(max_iter):
        new = [min(range(len(centres)), key=lambda k: (d(b, centres[k]), k)) for b in wh]
        if new == assign:
            break
        assign = new
        for k in range(len(centres)):
            members = [b for b, a in zip(wh, assign) if a == k]
            if members:
                centres[k] = [
                    sum(m[0] for m in members) / len(members),
                    sum(m[1] for m in members) / len(members),
                ]
    return torch.tensor(centres, dtype=torch.float64)


@pytest.mark.parametrize("distance", ["iou", "euclidean"])
@pytest.mark.parametrize("seed", range(3))
def test_kmeans_anchors_is_lloyd_from_its_seeding(distance, seed):
    g = torch.Generator().manual_seed(seed)
    wh = torch.exp(torch.randn(200, 2, generator=g, dtype=torch.float64) * 0.6 + 3)
    anchors, score = kmeans_anchors(wh, k=5, distance=distance, seed=seed)
    starts = seed_centres(wh, 5, distance, make_generator(seed))
    exp = slow_kmeans(wh, starts, distance)
    exp = exp[torch.argsort(exp[:, 0] * exp[:, 1])]
    torch.testing.assert_close(anchors, exp, rtol=1e-10, atol=1e-10)
    best = sum(max(float(wh_iou(b[None], a[None])) for a in anchors) for b in wh) / len(wh)
    assert abs(score - best) < 1e-12


def test_bad_input():
    with pytest.raises(ValueError, match="one entry per level"):
        AnchorGenerator(((32,), (64,)), ((1.0,), (1.0,), (2.0,)))
    with pytest.raises(ValueError, match="feature_sizes must have one"):
        AnchorGenerator()((64, 64), [(8, 8), (4, 4)])
    with pytest.raises(ValueError, match="positive numbers"):
        AnchorGenerator(((0,),), ((1.0,),))
    with pytest.raises(ValueError, match="low_threshold"):
        Matcher(0.3, 0.7)
    with pytest.raises(ValueError, match="no ground-truth"):
        Matcher(0.7, 0.3)(torch.zeros(0, 5))
    with pytest.raises(ValueError, match="match_quality_matrix must be finite"):
        Matcher(0.7, 0.3)(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="positive_fraction must be <= 1"):
        BalancedPositiveNegativeSampler(10, 1.5)
    with pytest.raises(ValueError, match="wh must have shape"):
        kmeans_anchors(torch.zeros(5, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="k must be <= 5"):
        kmeans_anchors(torch.ones(5, 2, dtype=torch.float64), k=6)
