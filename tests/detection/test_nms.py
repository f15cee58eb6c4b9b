"""NMS and batched NMS against torchvision (exact keep indices); DIoU-NMS and Soft-NMS against slow loops."""

import importlib
import math

import pytest
import torch
import torchvision.ops as tvo
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.detection import batched_nms, diou_nms, nms, soft_nms

nms_module = importlib.import_module("deepnotes.detection.nms")


def scene(n, seed, img=200.0, size=80.0, ties=False, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * img
    wh = torch.rand(n, 2, generator=g) * size
    s = torch.rand(n, generator=g)
    if ties:
        s = (s * 4).round() / 4
    return torch.cat([xy, xy + wh], 1).to(dtype), s.to(dtype)


def clustered(n, seed, objects=10):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(objects, 2, generator=g) * 500
    sizes = torch.rand(objects, 2, generator=g) * 80 + 10
    k = torch.randint(objects, (n,), generator=g)
    c = centres[k] + torch.randn(n, 2, generator=g) * 4
    wh = sizes[k] * (1 + 0.1 * torch.randn(n, 2, generator=g)).clamp(min=0.2)
    return torch.cat([c - wh / 2, c + wh / 2], 1), torch.rand(n, generator=g)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_nms_equals_torchvision(seed, ties):
    n = [0, 1, 2, 5, 30, 200, 700][seed % 7]
    b, s = scene(n, seed, ties=ties)
    for thr in (0.0, 0.3, 0.5, 0.7, 1.0):
        assert torch.equal(nms(b, s, thr), tvo.nms(b, s, thr)), thr


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nms_at_the_threshold_plus_minus_1e6(dtype):
    # pairs of nested boxes: IoU = inner area / outer area, one pair per threshold
    g = torch.Generator().manual_seed(0)
    outer = torch.tensor([0.0, 0.0, 10.0, 10.0], dtype=dtype)
    for frac in torch.rand(20, generator=g).tolist():
        inner = torch.tensor([0.0, 0.0, 10.0, 10.0 * frac], dtype=dtype)
        boxes = torch.stack([outer, inner])
        scores = torch.tensor([0.9, 0.8], dtype=dtype)
        iou = float(tvo.box_iou(boxes[:1], boxes[1:]))
        for thr in (iou, iou - 1e-6, iou + 1e-6, math.nextafter(iou, 0), math.nextafter(iou, 1)):
            thr = min(max(thr, 0.0), 1.0)
            assert torch.equal(nms(boxes, scores, thr), tvo.nms(boxes, scores, thr))
        assert nms(boxes, scores, iou).tolist() == [0, 1]  # IoU == threshold does not suppress
        assert nms(boxes, scores, iou - 1e-6).tolist() == [0]


def test_nms_on_clustered_boxes_and_long_chains():
    for seed in range(3):
        b, s = clustered(3000, seed)  # > HEAD_FROM: the head pre-pass runs
        assert torch.equal(nms(b, s, 0.5), tvo.nms(b, s, 0.5))
    # a chain: each box overlaps only the next, scores decreasing: keeps every other box
    n = 300
    x = torch.arange(n, dtype=torch.float32) * 5
    chain = torch.stack([x, torch.zeros(n), x + 10, torch.full((n,), 10.0)], 1)
    s = torch.linspace(1, 0.1, n)
    assert torch.equal(nms(chain, s, 0.2), tvo.nms(chain, s, 0.2))
    assert nms(chain, s, 0.2).tolist() == list(range(0, n, 2))


def test_small_pair_chunks_give_the_same_result(monkeypatch):
    b, s = scene(500, 3)
    expected = tvo.nms(b, s, 0.4)
    monkeypatch.setattr(nms_module, "PAIR_CHUNK", 97)
    assert torch.equal(nms(b, s, 0.4), expected)


def test_zero_area_boxes_do_not_suppress():
    b = torch.tensor([[5.0, 5, 5, 5], [5.0, 5, 5, 5], [0.0, 0, 10, 10], [0.0, 0, 10, 10]])
    s = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert nms(b, s, 0.5).tolist() == [0, 1, 2]
    assert torch.equal(nms(b, s, 0.5), tvo.nms(b, s, 0.5))


@pytest.mark.parametrize("seed", range(6))
def test_batched_nms_equals_torchvision_on_both_paths(seed):
    for n in (7, 300, 1000, 1001, 2500):  # torchvision switches strategy above 1000 boxes
        b, s = scene(n, seed, ties=seed % 2 == 1)
        idx = torch.randint(0, 1 + seed * 3, (n,), generator=torch.Generator().manual_seed(seed))
        for thr in (0.3, 0.6):
            assert torch.equal(batched_nms(b, s, idx, thr), tvo.batched_nms(b, s, idx, thr)), (
                n,
                thr,
            )


def test_empty_inputs():
    e, s = torch.zeros(0, 4), torch.zeros(0)
    for out in (
        nms(e, s, 0.5),
        batched_nms(e, s, torch.zeros(0, dtype=torch.int64), 0.5),
        diou_nms(e, s, 0.5),
    ):
        assert out.shape == (0,) and out.dtype == torch.int64
    keep, sc = soft_nms(e, s)
    assert keep.shape == (0,) and keep.dtype == torch.int64 and sc.shape == (0,)


def slow_greedy(boxes, scores, thr, crit):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(crit(boxes[k], boxes[i]) <= thr for k in keep):
            keep.append(i)
    return keep


def slow_iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def slow_diou(a, b):
    cw = max(a[2], b[2]) - min(a[0], b[0])
    ch = max(a[3], b[3]) - min(a[1], b[1])
    rho2 = ((a[0] + a[2] - b[0] - b[2]) / 2) ** 2 + ((a[1] + a[3] - b[1] - b[3]) / 2) ** 2
    c2 = cw * cw + ch * ch
    return slow_iou(a, b) - (rho2 / c2 if c2 > 0 else 0.0)


@pytest.mark.parametrize("seed", range(8))
def test_diou_nms_equals_a_slow_loop(seed):
    b, s = scene(120, seed, dtype=torch.float64)
    for thr in (0.2, 0.4, 0.6):
        assert diou_nms(b, s, thr).tolist() == slow_greedy(b.tolist(), s.tolist(), thr, slow_diou)


def slow_soft_nms(boxes, scores, method, sigma, thr, score_thr):
    s = list(scores)
    alive = [i for i in range(len(s)) if s[i] >= score_thr]
    keep, kept = [], []
    while alive:
        m = max(alive, key=lambda i: (s[i], -i))
        keep.append(m)
        kept.append(s[m])
        alive.remove(m)
        for j in alive:
            iou = slow_iou(boxes[m], boxes[j])
            if method == "linear":
                s[j] *= (1 - iou) if iou > thr else 1.0
            else:
                s[j] *= math.exp(-(iou * iou) / sigma)
        alive = [j for j in alive if s[j] >= score_thr]
    return keep, kept


@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("seed", range(5))
def test_soft_nms_equals_a_slow_loop(method, seed):
    b, s = scene(80, seed, dtype=torch.float64)
    keep, kept = soft_nms(b, s, method=method, sigma=0.5, iou_threshold=0.3, score_threshold=0.05)
    ref_keep, ref_kept = slow_soft_nms(b.tolist(), s.tolist(), method, 0.5, 0.3, 0.05)
    assert keep.tolist() == ref_keep
    torch.testing.assert_close(
        kept, torch.tensor(ref_kept, dtype=torch.float64), rtol=1e-12, atol=1e-12
    )


def test_soft_nms_linear_with_full_decay_is_greedy_nms():
    # with IoU threshold t, linear Soft-NMS scales overlapping boxes by (1 − IoU); with a score
    # threshold above every decayed score it drops them, which is greedy NMS
    b, s = scene(60, 1, dtype=torch.float64)
    s = s * 0.5 + 0.5  # scores in [0.5, 1]
    keep, _ = soft_nms(b, s, method="linear", iou_threshold=0.5, score_threshold=0.5)
    assert keep.tolist() == tvo.nms(b, s, 0.5).tolist()


@settings(derandomize=True, deadline=None, max_examples=60)
@given(st.integers(0, 10_000), st.integers(0, 60), st.floats(0, 1))
def test_nms_property_matches_torchvision(seed, n, thr):
    b, s = scene(n, seed, img=60.0, size=40.0, ties=seed % 3 == 0)
    assert torch.equal(nms(b, s, thr), tvo.nms(b, s, thr))


def test_bad_input():
    b, s = scene(5, 0)
    with pytest.raises(ValueError, match="scores must be finite"):
        nms(b, torch.tensor([0.1, float("nan"), 0.2, 0.3, 0.4]), 0.5)
    with pytest.raises(ValueError, match="boxes must be finite"):
        nms(torch.full((5, 4), float("inf")), s, 0.5)
    with pytest.raises(ValueError, match="iou_threshold must be <= 1"):
        nms(b, s, 1.5)
    with pytest.raises(ValueError, match="iou_threshold must be >= 0"):
        nms(b, s, -0.1)
    with pytest.raises(ValueError, match="scores must have one entry per box"):
        nms(b, s[:3], 0.5)
    with pytest.raises(ValueError, match="boxes must have shape"):
        nms(torch.zeros(5, 3), s, 0.5)
    with pytest.raises(ValueError, match="x2 >= x1"):
        nms(torch.tensor([[3.0, 0, 1, 1]]), s[:1], 0.5)
    with pytest.raises(ValueError, match="idxs must have one entry per box"):
        batched_nms(b, s, torch.zeros(4, dtype=torch.int64), 0.5)
    with pytest.raises(TypeError, match="idxs must be an integer tensor"):
        batched_nms(b, s, torch.zeros(5), 0.5)
    with pytest.raises(TypeError, match="boxes must be a floating-point tensor"):
        nms(torch.tensor([[0, 0, 10, 10]]), s[:1], 0.5)
    with pytest.raises(ValueError, match="method must be one of"):
        soft_nms(b, s, method="cubic")
    with pytest.raises(ValueError, match="sigma must be > 0"):
        soft_nms(b, s, method="gaussian", sigma=0.0)
