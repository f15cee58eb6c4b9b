"""Multi-scale testing: the window grid (hand values and coverage), the mapping of a mock
detector's boxes back to the original image (hand-computed, and a plain per-box loop on random
boxes), the merge against ``torchvision.ops.batched_nms`` and box voting against a plain loop,
``scales=(1.0,)`` reproducing real detectors' own output, empty results and bad input."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from deepnotes.core.registry import MODELS
from deepnotes.data import shapes
from deepnotes.detection import box_voting, merge_detections, multi_scale_detect, tile_starts


class MockDetector(nn.Module):
    """Returns boxes it is told to (``fixed``: a list of (box, score, label)) or, with ``seed``,
    random boxes inside the window; records every window it saw with what it returned."""

    def __init__(self, in_shape, fixed=None, seed=None, max_boxes=6, num_classes=2):
        super().__init__()
        self.in_shape, self.fixed, self.max_boxes, self.num_classes = in_shape, fixed, max_boxes, num_classes
        self.content_seeded = seed == "content"  # boxes a function of the window's pixels
        self.gen = torch.Generator().manual_seed(seed if isinstance(seed, int) else 0)
        self.calls, self.batches = [], []
        self.scale = nn.Parameter(torch.ones(()))  # so that .eval() / .train() mean something

    def forward(self, images):
        assert tuple(images.shape[1:]) == tuple(self.in_shape)  # the detectors' contract
        self.batches.append(len(images))
        out = []
        h, w = self.in_shape[1:]
        for img in images:
            if self.fixed is not None:
                boxes = torch.tensor([b for b, _, _ in self.fixed], dtype=images.dtype).reshape(-1, 4)
                scores = torch.tensor([s for _, s, _ in self.fixed], dtype=images.dtype)
                labels = torch.tensor([c for _, _, c in self.fixed], dtype=torch.int64)
            else:
                if self.content_seeded:
                    self.gen.manual_seed(int(img.double().sum() * 1e6) % 2**31)
                # boxes crowd around two points of the window (± 1 px, sides ± 20 %): NMS has work
                k = int(torch.randint(0, self.max_boxes + 1, (), generator=self.gen))
                size = torch.tensor([w, h], dtype=images.dtype)
                points = torch.tensor([[0.3, 0.4], [0.6, 0.7]], dtype=images.dtype) * size
                centre = points[torch.randint(0, 2, (k,), generator=self.gen)]
                centre = centre + 2 * torch.rand(k, 2, generator=self.gen, dtype=images.dtype) - 1
                half = size / 5 * (0.8 + 0.4 * torch.rand(k, 2, generator=self.gen, dtype=images.dtype))
                boxes = torch.cat([(centre - half).clamp(min=0), (centre + half).minimum(size)], 1)
                scores = torch.rand(k, generator=self.gen, dtype=images.dtype)
                labels = torch.randint(1, self.num_classes + 1, (k,), generator=self.gen)
            out.append({"boxes": boxes, "scores": scores, "labels": labels})
            self.calls.append((img.clone(), out[-1]))
        return out


# ---------------------------------------------------------------------------------------------
# the window grid


def test_tile_starts_hand_values():
    assert tile_starts(8, 8) == [0]
    assert tile_starts(5, 8) == [0]  # smaller than a window: one window, the rest is padding
    assert tile_starts(16, 8, 0.25) == [0, 4, 8]  # ceil(8 / 6) + 1 = 3 windows
    assert tile_starts(12, 8, 0.0) == [0, 4]
    assert tile_starts(24, 8, 0.0) == [0, 8, 16]  # no overlap asked: an exact partition


@pytest.mark.parametrize("length", [9, 17, 33, 50, 97])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.9])
def test_tile_starts_cover_with_overlap(length, overlap):
    tile = 8
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(0 < g <= tile - overlap * tile + 1 for g in gaps)  # one rounding pixel at most
    assert len(starts) == 1 or max(gaps) - min(gaps) <= 1  # evenly spread
    assert len(starts) == len(set(starts))  # no window twice, even for an overlap near 1


# ---------------------------------------------------------------------------------------------
# mapping back: hand-computed


BOXES = [([1.0, 1.0, 3.0, 3.0], 0.9, 1), ([5.0, 5.0, 7.0, 7.0], 0.8, 2), ([2.0, 2.0, 6.0, 6.0], 0.7, 1)]


def _rows(det):
    """Detections as a sorted list of (label, score, x1, y1, x2, y2) tuples."""
    return sorted(zip(det["labels"].tolist(), det["scores"].tolist(), *det["boxes"].T.tolist()))


def test_half_scale_shrinks_pads_and_maps_back_by_hand():
    model = MockDetector((1, 8, 8), fixed=BOXES).eval()
    out = multi_scale_detect(model, torch.rand(1, 1, 8, 8, dtype=torch.float64), scales=(0.5,), iou_threshold=1.0)
    # 8 × 8 → 4 × 4 padded to 8 × 8, one window at (0, 0). Centres: (2, 2) in; (6, 6) in the
    # padding, dropped; (4, 4) on the edge, in, ×2 = (4, 4, 12, 12), clipped to the 8 × 8 image.
    assert _rows(out[0]) == [(1, 0.7, 4.0, 4.0, 8.0, 8.0), (1, 0.9, 2.0, 2.0, 6.0, 6.0)]
    (window, _), = model.calls
    assert torch.equal(window[:, 4:, :], torch.zeros(1, 4, 8)) and torch.equal(window[:, :, 4:], torch.zeros(1, 8, 4))


def test_double_scale_tiles_and_maps_back_by_hand():
    model = MockDetector((1, 8, 8), fixed=BOXES[:1]).eval()
    image = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    out = multi_scale_detect(model, image, scales=(2.0,), iou_threshold=1.0)
    # 16 × 16, windows at 0, 4, 8 on each side: box (1, 1, 3, 3) in window (x0, y0) is
    # ((1 + x0) / 2, (1 + y0) / 2, (3 + x0) / 2, (3 + y0) / 2)
    want = sorted((1, 0.9, (1 + x0) / 2, (1 + y0) / 2, (3 + x0) / 2, (3 + y0) / 2)
                  for y0 in (0, 4, 8) for x0 in (0, 4, 8))
    assert _rows(out[0]) == want  # halves of integers: exact in float64
    assert (2.5, 4.5, 3.5, 5.5) in [r[2:] for r in _rows(out[0])]  # window (x0, y0) = (4, 8)
    big = F.interpolate(image, size=(16, 16), mode="bilinear", align_corners=False)
    seen = [w for w, _ in model.calls]
    assert len(seen) == 9
    for y0 in (0, 4, 8):
        for x0 in (0, 4, 8):
            assert any(torch.equal(w, big[0, :, y0:y0 + 8, x0:x0 + 8]) for w in seen)


# ---------------------------------------------------------------------------------------------
# mapping back and merging: random boxes against a plain loop and torchvision


def _reference_views(images, in_shape, scales, overlap):
    """Every window (scale, x0, y0, resized size, crops (N, C, H_in, W_in)) written plainly."""
    h, w = images.shape[-2:]
    hi, wi = in_shape[1:]
    for s in scales:
        hs, ws = max(1, round(s * h)), max(1, round(s * w))
        big = images if (hs, ws) == (h, w) else F.interpolate(
            images, size=(hs, ws), mode="bilinear", align_corners=False, antialias=hs < h or ws < w)
        canvas = torch.zeros(*images.shape[:2], max(hs, hi), max(ws, wi), dtype=images.dtype)
        canvas[:, :, :hs, :ws] = big
        for y0 in tile_starts(hs, hi, overlap):
            for x0 in tile_starts(ws, wi, overlap):
                yield s, x0, y0, (hs, ws), canvas[:, :, y0:y0 + hi, x0:x0 + wi]


def _reference_mapped(model, images, scales, overlap):
    """The mock's boxes mapped back one box at a time: the window of each recorded call is found
    by comparing pixels, then shift, drop centres in the padding, divide, clip."""
    views = list(_reference_views(images, model.in_shape, scales, overlap))
    h, w = images.shape[-2:]
    boxes, scores, labels, index = [], [], [], []
    for window, det in model.calls:
        found = [(i, v) for v in views for i in range(len(images)) if torch.equal(window, v[4][i])]
        assert len(found) == 1
        i, (s, x0, y0, (hs, ws), _) = found[0]
        for b, sc, lab in zip(det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist()):
            x1, y1, x2, y2 = b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            if not (0 <= cx <= ws and 0 <= cy <= hs):
                continue
            fx, fy = ws / w, hs / h
            boxes.append([min(max(x1 / fx, 0), w), min(max(y1 / fy, 0), h),
                          min(max(x2 / fx, 0), w), min(max(y2 / fy, 0), h)])
            scores.append(sc)
            labels.append(lab)
            index.append(i)
    return (torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4), torch.tensor(scores, dtype=torch.float64),
            torch.tensor(labels, dtype=torch.int64), torch.tensor(index, dtype=torch.int64))


def _torchvision_merge(boxes, scores, labels, index, batch, iou_threshold, detections_per_img):
    groups = index * (int(labels.max()) + 1) + labels
    keep = torchvision.ops.batched_nms(boxes, scores, groups, iou_threshold)
    out = []
    for i in range(batch):
        mine = keep[index[keep] == i][:detections_per_img]
        out.append({"boxes": boxes[mine], "scores": scores[mine], "labels": labels[mine]})
    return out, keep, groups


def _vote_loop(boxes, scores, groups, keep, iou_threshold):
    iou = torchvision.ops.box_iou(boxes, boxes)
    out = []
    for k in keep.tolist():
        num, den = torch.zeros(4, dtype=boxes.dtype), 0.0
        for j in range(len(boxes)):
            if groups[j] == groups[k] and (j == k or iou[k, j] > iou_threshold):
                num, den = num + scores[j] * boxes[j], den + float(scores[j])
        out.append(num / den if den > 0 else boxes[k])
    return torch.stack(out) if out else boxes[:0]


CASES = [  # (image size, in_shape, scales)
    ((16, 24), (2, 16, 24), (0.5, 0.75, 1.0, 1.5, 2.0)),
    ((20, 30), (2, 16, 16), (0.6, 1.0, 1.7)),  # images not of in_shape: padding on one side, tiles on the other
]


@pytest.mark.parametrize("method", ["nms", "vote"])
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("seed", [0, 1])
def test_mapping_and_merge_match_loop_and_torchvision(seed, case, method):
    (h, w), in_shape, scales = CASES[case]
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(3, in_shape[0], h, w, generator=gen, dtype=torch.float64)
    model = MockDetector(in_shape, seed=seed).eval()
    thr, k = 0.45, 12
    out = multi_scale_detect(model, images, scales=scales, iou_threshold=thr, method=method,
                             detections_per_img=k, batch_size=2, tile_overlap=0.3)
    boxes, scores, labels, index = _reference_mapped(model, images, scales, 0.3)
    assert len(boxes) > 30  # the case exercises the merge
    want, keep, groups = _torchvision_merge(boxes, scores, labels, index, len(images), thr, k)
    assert len(keep) < 0.8 * len(boxes)  # the merge has work to do ...
    assert max(int((index[keep] == i).sum()) for i in range(len(images))) > k  # ... and so has the cap
    if method == "vote":
        voted = _vote_loop(boxes, scores, groups, keep, thr)
        assert not torch.allclose(voted, boxes[keep])  # the votes moved boxes
        for i, d in enumerate(want):
            d["boxes"] = voted[index[keep] == i][:k]
    assert len(out) == len(images)
    for got, ref in zip(out, want):
        assert torch.equal(got["labels"], ref["labels"]) and got["labels"].dtype == torch.int64
        torch.testing.assert_close(got["scores"], ref["scores"], rtol=0, atol=0)
        torch.testing.assert_close(got["boxes"], ref["boxes"], rtol=1e-12, atol=1e-12)


def test_batch_size_does_not_change_the_result():
    images = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    small = MockDetector((1, 8, 8), seed="content").eval()
    a = multi_scale_detect(small, images, scales=(0.5, 1.5), batch_size=2)
    assert max(small.batches) == 2  # the model never sees more than batch_size windows at once
    b = multi_scale_detect(MockDetector((1, 8, 8), seed="content").eval(), images, scales=(0.5, 1.5), batch_size=64)
    # the mock's boxes depend on each window's pixels only, not on how the windows are batched
    assert sum(len(d["boxes"]) for d in a) > 10
    for x, y in zip(a, b):
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(x[key], y[key])


def test_vote_chunks_agree(monkeypatch):
    import deepnotes.detection.multiscale as module

    gen = torch.Generator().manual_seed(4)
    xy = torch.rand(300, 2, generator=gen, dtype=torch.float64) * 20
    boxes = torch.cat([xy, xy + 2 + 8 * torch.rand(300, 2, generator=gen, dtype=torch.float64)], 1)
    scores = torch.rand(300, generator=gen, dtype=torch.float64)
    groups = torch.randint(0, 7, (300,), generator=gen)
    keep = torchvision.ops.batched_nms(boxes, scores, groups, 0.5)
    whole = box_voting(boxes, scores, groups, keep, 0.5)
    torch.testing.assert_close(whole, _vote_loop(boxes, scores, groups, keep, 0.5), rtol=1e-12, atol=1e-12)
    for chunk in (1, 50, 997):  # one IoU per chunk (a row at a time), a few rows, many
        monkeypatch.setattr(module, "VOTE_CHUNK", chunk)
        torch.testing.assert_close(box_voting(boxes, scores, groups, keep, 0.5), whole, rtol=1e-12, atol=1e-12)


def test_vote_by_hand():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [1.0, 1.0, 11.0, 11.0]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.6, 0.5], dtype=torch.float64)
    labels = torch.tensor([1, 1, 2])  # the third box is another class: it does not vote
    out = merge_detections(boxes, scores, labels, torch.zeros(3, dtype=torch.int64), 1, 0.5, "vote")[0]
    # IoU = 81 / 119 > 0.5: (0.9 · (0, 0, 10, 10) + 0.6 · (1, 1, 11, 11)) / 1.5
    torch.testing.assert_close(out["boxes"], torch.tensor([[0.4, 0.4, 10.4, 10.4], [1.0, 1.0, 11.0, 11.0]],
                                                          dtype=torch.float64))
    assert out["scores"].tolist() == [0.9, 0.5] and out["labels"].tolist() == [1, 2]
    zero = box_voting(boxes[:2], torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.int64),
                      torch.tensor([0]), 0.5)
    assert torch.equal(zero, boxes[:1])  # voters all scoring 0: the kept box stays


# ---------------------------------------------------------------------------------------------
# real detectors


def _shapes_images(n=3, size=64):
    splits = shapes(seed=0, n_train=n, n_val=1, n_test=1, image_size=size, max_objects=3, min_size=8, max_size=24)
    return torch.stack([splits.train[i][0] for i in range(n)])


@pytest.mark.parametrize("name", ["yolov1", "centernet"])
def test_single_scale_is_the_models_own_output(name):
    torch.manual_seed(0)
    model = MODELS.create(name, (3, 64, 64), 3, width=4).eval()
    images = _shapes_images()
    with torch.no_grad():
        own = model(images)
    thr = getattr(model, "nms_thresh", None)
    thr = 1.0 if thr is None else thr  # CenterNet does no NMS: IoU > 1 never suppresses
    out = multi_scale_detect(model, images, scales=(1.0,), iou_threshold=thr)
    assert sum(len(d["boxes"]) for d in own) > 0
    for got, ref in zip(out, own):
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(got[key], ref[key]), key


def test_real_detector_smoke_several_scales():
    torch.manual_seed(0)
    model = MODELS.create("yolov1", (3, 64, 64), 3, width=4).eval()
    images = _shapes_images(2)
    for method in ("nms", "vote"):
        out = multi_scale_detect(model, images, scales=(0.5, 1.0, 1.5), method=method, detections_per_img=20)
        for d in out:
            assert d["boxes"].shape[1:] == (4,) and len(d["boxes"]) == len(d["scores"]) == len(d["labels"]) <= 20
            assert bool(torch.isfinite(d["boxes"]).all())
            assert bool((d["boxes"] >= 0).all()) and bool((d["boxes"][:, 2:] <= 64).all())
            assert bool((d["scores"][:-1] >= d["scores"][1:]).all())


# ---------------------------------------------------------------------------------------------
# empty results


def test_no_detections_give_empty_tensors():
    model = MockDetector((1, 8, 8), fixed=[]).eval()
    out = multi_scale_detect(model, torch.rand(2, 1, 8, 8), scales=(0.5, 1.0, 2.0))
    assert len(out) == 2
    for d in out:
        assert d["boxes"].shape == (0, 4) and d["boxes"].dtype == torch.float32
        assert d["scores"].shape == (0,) and d["scores"].dtype == torch.float32
        assert d["labels"].shape == (0,) and d["labels"].dtype == torch.int64


def test_detections_only_in_the_padding_are_dropped():
    model = MockDetector((1, 8, 8), fixed=[([5.0, 5.0, 8.0, 8.0], 0.9, 1)]).eval()
    out = multi_scale_detect(model, torch.rand(1, 1, 8, 8), scales=(0.5,))
    assert out[0]["boxes"].shape == (0, 4) and out[0]["labels"].dtype == torch.int64


def test_empty_batch():
    assert multi_scale_detect(MockDetector((1, 8, 8), fixed=[]).eval(), torch.rand(0, 1, 8, 8)) == []


# ---------------------------------------------------------------------------------------------
# bad input


def _mock():
    return MockDetector((1, 8, 8), fixed=BOXES).eval()


@pytest.mark.parametrize("scales", [(), []])
def test_empty_scales(scales):
    with pytest.raises(ValueError, match="scales"):
        multi_scale_detect(_mock(), torch.rand(1, 1, 8, 8), scales=scales)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_scale(bad):
    with pytest.raises(ValueError, match=r"scales\[1\]"):
        multi_scale_detect(_mock(), torch.rand(1, 1, 8, 8), scales=(1.0, bad))


def test_scales_not_a_sequence():
    with pytest.raises(TypeError, match="scales"):
        multi_scale_detect(_mock(), torch.rand(1, 1, 8, 8), scales=1.0)


def test_model_in_training_mode():
    with pytest.raises(ValueError, match="eval mode"):
        multi_scale_detect(_mock().train(), torch.rand(1, 1, 8, 8))


def test_model_without_in_shape():
    with pytest.raises(TypeError, match="in_shape"):
        multi_scale_detect(nn.Conv2d(1, 1, 1).eval(), torch.rand(1, 1, 8, 8))


def test_images_wrong_rank():
    with pytest.raises(ValueError, match="images"):
        multi_scale_detect(_mock(), torch.rand(1, 8, 8))


def test_images_wrong_channels():
    with pytest.raises(ValueError, match=r"images must have shape \(N, 1, H, W\)"):
        multi_scale_detect(_mock(), torch.rand(1, 3, 8, 8))


def test_images_not_float():
    with pytest.raises(TypeError, match="images"):
        multi_scale_detect(_mock(), torch.ones(1, 1, 8, 8, dtype=torch.uint8))


@pytest.mark.parametrize("kw, name", [
    (dict(method="wbf"), "method"),
    (dict(iou_threshold=1.5), "iou_threshold"),
    (dict(detections_per_img=0), "detections_per_img"),
    (dict(tile_overlap=1.0), "tile_overlap"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_options(kw, name):
    with pytest.raises(ValueError, match=name):
        multi_scale_detect(_mock(), torch.rand(1, 1, 8, 8), **kw)


def test_merge_inputs_must_agree():
    with pytest.raises(ValueError, match="same boxes"):
        merge_detections(torch.zeros(2, 4), torch.zeros(3), torch.zeros(2, dtype=torch.int64),
                         torch.zeros(2, dtype=torch.int64), 1)


def test_docstring_examples():
    import doctest

    import deepnotes.detection.multiscale as module

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("kw, name", [
    (dict(length=0), "length"),
    (dict(tile=0), "tile"),
    (dict(overlap=1.0), "overlap"),
    (dict(overlap=-0.1), "overlap"),
])
def test_tile_starts_bad_input(kw, name):
    with pytest.raises(ValueError, match=name):
        tile_starts(**{"length": 16, "tile": 8, **kw})


def test_box_voting_bad_input():
    boxes, scores = torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.ones(1)
    with pytest.raises(TypeError, match="groups"):
        box_voting(boxes, scores, torch.zeros(1), torch.tensor([0]), 0.5)
    with pytest.raises(ValueError, match="keep"):
        box_voting(boxes, scores, torch.zeros(1, dtype=torch.int64), torch.tensor([1]), 0.5)
    with pytest.raises(ValueError, match="same boxes"):
        box_voting(boxes, torch.ones(2), torch.zeros(1, dtype=torch.int64), torch.tensor([0]), 0.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        box_voting(boxes, scores, torch.zeros(1, dtype=torch.int64), torch.tensor([0]), -0.5)
