"""Box-aware augmentation: augmenting then drawing the boxes equals drawing then augmenting."""

import pytest
import torch
from torchvision.ops import masks_to_boxes

from deepnotes.data import (
    DetectionAugment,
    ShapesDataset,
    collate_detection,
    color_jitter_detection,
    crop_detection,
    cutmix_detection,
    hflip_detection,
    mosaic_detection,
    resize_detection,
)
from deepnotes.data.augment import color_jitter


def draw(boxes, h, w):
    """Box k painted as value k + 1 over a zero canvas (later boxes on top), pixel-edge boxes."""
    cols, rows = torch.arange(w).view(1, 1, -1), torch.arange(h).view(1, -1, 1)
    b = boxes.view(-1, 4, 1, 1)
    inside = (cols >= b[:, 0]) & (cols < b[:, 2]) & (rows >= b[:, 1]) & (rows < b[:, 3])
    order = torch.arange(1, len(boxes) + 1).view(-1, 1, 1)
    return (inside * order).amax(0) if len(boxes) else torch.zeros(h, w, dtype=torch.long)


def _sample(i=0, size=64):
    return ShapesDataset(8, image_size=size, max_size=30)[i]


@pytest.mark.parametrize("i", range(4))
def test_flip_commutes_with_drawing(i):
    img, t = _sample(i)
    out, t2 = hflip_detection(img, t)
    assert torch.equal(draw(t2["boxes"], 64, 64), draw(t["boxes"], 64, 64).flip(-1))
    assert torch.equal(out, img.flip(-1)) and torch.equal(t2["masks"], t["masks"].flip(-1))
    assert torch.equal(masks_to_boxes(t2["masks"].bool()) + torch.tensor([0, 0, 1.0, 1.0]), t2["boxes"])
    again, _ = hflip_detection(out, t2)
    assert torch.equal(again, img)


@pytest.mark.parametrize(("top", "left", "hh", "ww"), [(0, 0, 64, 64), (10, 5, 30, 40), (33, 20, 31, 44), (0, 50, 64, 14)])
def test_crop_commutes_with_drawing(top, left, hh, ww):
    img, t = _sample(1)
    out, t2 = crop_detection(img, t, top, left, hh, ww, min_area=1.0)
    canvas = draw(t["boxes"], 64, 64)[top : top + hh, left : left + ww]
    ref_boxes = (t["boxes"] - torch.tensor([left, top, left, top])).clamp(min=0)
    ref_boxes = torch.minimum(ref_boxes, torch.tensor([ww, hh, ww, hh]))
    keep = (ref_boxes[:, 2] > ref_boxes[:, 0]) & (ref_boxes[:, 3] > ref_boxes[:, 1])
    ids = torch.cumsum(keep.long(), 0) * keep  # old id → new id (0 for a box cropped away)
    relabelled = torch.cat([torch.zeros(1, dtype=torch.long), ids])[canvas]
    assert torch.equal(draw(t2["boxes"], hh, ww), relabelled)
    assert out.shape == (3, hh, ww) and torch.equal(out, img[:, top : top + hh, left : left + ww])
    assert torch.equal(t2["masks"], t["masks"][keep][:, top : top + hh, left : left + ww])
    assert torch.equal(t2["labels"], t["labels"][keep]) and torch.equal(t2["area"], t2["masks"].sum((1, 2)).float())


@pytest.mark.parametrize("factor", [2, 3])
def test_integer_upscale_commutes_with_drawing(factor):
    img, t = _sample(2)
    out, t2 = resize_detection(img, t, (64 * factor, 64 * factor))
    up = draw(t["boxes"], 64, 64).repeat_interleave(factor, 0).repeat_interleave(factor, 1)
    assert torch.equal(draw(t2["boxes"], 64 * factor, 64 * factor), up)
    assert torch.equal(t2["masks"], t["masks"].repeat_interleave(factor, 1).repeat_interleave(factor, 2))
    assert out.shape == (3, 64 * factor, 64 * factor)


def test_halving_with_even_boxes_commutes_with_drawing():
    img = torch.rand(3, 40, 40)
    boxes = torch.tensor([[2.0, 4.0, 20.0, 16.0], [10.0, 0.0, 40.0, 30.0]])
    t = {"boxes": boxes, "labels": torch.tensor([1, 2])}
    _, t2 = resize_detection(img, t, (20, 20))
    assert torch.equal(draw(t2["boxes"], 20, 20), draw(boxes, 40, 40)[1::2, 1::2])


def test_color_jitter_leaves_geometry_and_matches_the_image_op():
    img, t = _sample(3)
    out, t2 = color_jitter_detection(img, t, 0.3, 0.3, 0.3, generator=torch.Generator().manual_seed(1))
    ref = color_jitter(img.unsqueeze(0), 0.3, 0.3, 0.3, generator=torch.Generator().manual_seed(1))[0]
    assert torch.equal(out, ref) and torch.equal(t2["boxes"], t["boxes"]) and torch.equal(t2["masks"], t["masks"])


def test_pipeline_is_seeded_and_keeps_targets_consistent():
    ds = ShapesDataset(12, image_size=64, max_size=30, transform=DetectionAugment(seed=3))
    again = ShapesDataset(12, image_size=64, max_size=30, transform=DetectionAugment(seed=3))
    for i in range(12):
        img, t = ds[i]
        img2, t2 = again[i]
        assert torch.equal(img, img2) and torch.equal(t["boxes"], t2["boxes"])
        h, w = img.shape[-2:]
        assert (h, w) == (64, 64) or min(h, w) < 64
        b = t["boxes"]
        assert bool((b[:, 0] >= 0).all()) and bool((b[:, 2] <= w).all()) and bool((b[:, 3] <= h).all())
        assert len(t["labels"]) == len(b) == len(t["masks"]) and t["masks"].shape[-2:] == (h, w)
    flip_scale = DetectionAugment(p_flip=1.0, scale=(2.0, 2.0), crop=False, brightness=0, contrast=0, saturation=0)
    img, t = _sample(0)
    out, t2 = flip_scale(img, t)
    ref = draw(t["boxes"], 64, 64).flip(-1).repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(draw(t2["boxes"], 128, 128), ref)


def test_collate_detection():
    batch = [_sample(i) for i in range(3)]
    x, ts = collate_detection(batch)
    assert x.shape == (3, 3, 64, 64) and len(ts) == 3 and ts[1] is batch[1][1]
    odd = batch + [(torch.zeros(3, 10, 10), {"boxes": torch.zeros(0, 4)})]
    with pytest.raises(ValueError, match="stack=False"):
        collate_detection(odd)
    xs, _ = collate_detection(odd, stack=False)
    assert isinstance(xs, list) and len(xs) == 4
    with pytest.raises(ValueError, match="batch"):
        collate_detection([])


def test_bad_input():
    img, t = _sample(0)
    with pytest.raises(ValueError, match="exceeds"):
        crop_detection(img, t, 10, 10, 60, 20)
    with pytest.raises(TypeError, match="target"):
        hflip_detection(img, {"labels": t["labels"]})
    with pytest.raises(ValueError, match="boxes"):
        hflip_detection(img, {"boxes": torch.zeros(2, 5)})
    with pytest.raises(ValueError, match="image"):
        hflip_detection(img[0], t)
    with pytest.raises(ValueError, match="scale"):
        DetectionAugment(scale=(2.0, 1.0))
    with pytest.raises(ValueError, match="p_flip"):
        DetectionAugment(p_flip=1.5)


@pytest.mark.parametrize("center", [(32, 32), (20, 45), (64, 0), (50, 10)])
def test_mosaic_commutes_with_drawing(center):
    samples = [_sample(i) for i in range(4)]
    canvas, t = mosaic_detection(samples, (64, 64), center)
    # draw each sample's boxes with ids offset by the boxes of the samples before it, then tile
    offset, drawn = 0, []
    for _, tg in samples:
        d = draw(tg["boxes"], 64, 64)
        drawn.append((torch.where(d > 0, d + offset, d).float().expand(3, -1, -1), {"boxes": tg["boxes"]}))
        offset += len(tg["boxes"])
    tiled, tiled_t = mosaic_detection(drawn, (64, 64), center)
    tiled = tiled[0].long()
    ids = torch.unique(tiled[tiled > 0])  # the boxes still visible, in order
    relabel = torch.zeros(offset + 1, dtype=torch.long)
    relabel[ids] = torch.arange(1, len(ids) + 1)
    assert torch.equal(draw(t["boxes"], 64, 64), relabel[tiled])
    assert torch.equal(t["boxes"], tiled_t["boxes"]) and len(t["labels"]) == len(t["boxes"]) == len(t["masks"])
    assert torch.equal(t["semantic"], (t["masks"].long() * t["labels"].view(-1, 1, 1)).sum(0))


def test_mosaic_bad_input():
    with pytest.raises(ValueError, match="four"):
        mosaic_detection([_sample(0)] * 3, (64, 64), (32, 32))
    with pytest.raises(ValueError, match="center"):
        mosaic_detection([_sample(0)] * 4, (64, 64), (70, 32))


@pytest.mark.parametrize("region", [(10, 5, 40, 50), (0, 0, 64, 20), (30, 30, 31, 31), (0, 0, 64, 64)])
def test_cutmix_keeps_targets_consistent_with_pixels(region):
    a, b = _sample(0), _sample(5)
    image, t = cutmix_detection(a, b, region)
    x1, y1, x2, y2 = region
    inside = torch.zeros(64, 64, dtype=torch.bool)
    inside[y1:y2, x1:x2] = True
    assert torch.equal(image, torch.where(inside, b[0], a[0]))
    m = t["masks"]
    assert int(m.sum(0).max()) <= 1 and bool((m.flatten(1).sum(1) > 0).all())
    assert torch.equal(t["boxes"], masks_to_boxes(m.bool()) + torch.tensor([0, 0, 1.0, 1.0]))
    assert torch.equal(t["semantic"], (m.long() * t["labels"].view(-1, 1, 1)).sum(0))
    assert torch.equal(t["semantic"], torch.where(inside, b[1]["semantic"], a[1]["semantic"]))
    assert torch.equal(t["area"], m.sum((1, 2)).float())


def test_cutmix_without_masks_and_bad_input():
    a = (torch.rand(3, 20, 20), {"boxes": torch.tensor([[2.0, 2.0, 6.0, 6.0], [0.0, 0.0, 20.0, 20.0]]), "labels": torch.tensor([1, 2])})
    b = (torch.rand(3, 20, 20), {"boxes": torch.tensor([[8.0, 8.0, 18.0, 18.0]]), "labels": torch.tensor([3])})
    _, t = cutmix_detection(a, b, (0, 0, 10, 10))
    assert t["boxes"].tolist() == [[0.0, 0.0, 20.0, 20.0], [8.0, 8.0, 10.0, 10.0]] and t["labels"].tolist() == [2, 3]
    with pytest.raises(ValueError, match="region"):
        cutmix_detection(a, b, (5, 5, 5, 9))
    with pytest.raises(ValueError, match="same shape"):
        cutmix_detection(a, (torch.rand(3, 10, 10), b[1]), (0, 0, 5, 5))
