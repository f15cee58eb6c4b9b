"""Box formats, areas, clipping and the IoU family against torchvision.ops (values and gradients)."""

import itertools

import pytest
import torch
import torchvision.ops as tvo
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.detection import (
    box_area,
    box_convert,
    box_iou,
    box_iou_paired,
    clip_boxes_to_image,
    complete_box_iou,
    complete_box_iou_paired,
    distance_box_iou,
    distance_box_iou_paired,
    generalized_box_iou,
    generalized_box_iou_loss,
    generalized_box_iou_paired,
    remove_small_boxes,
)

TOL = dict(rtol=1e-7, atol=1e-7)
FORMATS = ("xyxy", "xywh", "cxcywh")


def rand_boxes(n, seed, dtype=torch.float64, scale=100.0, min_size=0.5):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * scale
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * scale / 2 + min_size
    return torch.cat([xy, xy + wh], 1).to(dtype)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("fin,fout", list(itertools.product(FORMATS, FORMATS)))
def test_box_convert_matches_torchvision(seed, fin, fout):
    b = tvo.box_convert(rand_boxes(50, seed), "xyxy", fin)
    assert torch.equal(box_convert(b, fin, fout), tvo.box_convert(b, fin, fout))


def test_box_convert_and_area_on_integer_boxes():
    b = torch.tensor([[0, 0, 4, 6], [2, 3, 5, 9]])
    assert torch.equal(box_convert(b, "xyxy", "xywh"), tvo.box_convert(b, "xyxy", "xywh"))
    assert torch.equal(box_area(b), tvo.box_area(b))
    assert torch.equal(box_iou(b, b), tvo.box_iou(b, b))


@pytest.mark.parametrize("fmt", FORMATS)
def test_box_area_matches_torchvision(fmt):
    b = tvo.box_convert(rand_boxes(40, 1), "xyxy", fmt)
    torch.testing.assert_close(box_area(b, fmt), tvo.box_area(b, fmt=fmt), **TOL)


PAIRWISE = [
    (box_iou, tvo.box_iou, box_iou_paired),
    (generalized_box_iou, tvo.generalized_box_iou, generalized_box_iou_paired),
    (distance_box_iou, tvo.distance_box_iou, distance_box_iou_paired),
    (complete_box_iou, tvo.complete_box_iou, complete_box_iou_paired),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ours,ref,_", PAIRWISE, ids=lambda f: getattr(f, "__name__", ""))
def test_pairwise_iou_values_and_gradients_match_torchvision(seed, ours, ref, _):
    a = rand_boxes(30, seed).requires_grad_()
    b = rand_boxes(20, seed + 100).requires_grad_()
    out, exp = ours(a, b), ref(a, b)
    assert out.shape == (30, 20)
    torch.testing.assert_close(out, exp, **TOL)
    w = torch.randn(30, 20, dtype=torch.float64)
    ga = torch.autograd.grad((out * w).sum(), (a, b))
    gb = torch.autograd.grad((exp * w).sum(), (a, b))
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, **TOL)


@pytest.mark.parametrize("ours,_,paired", PAIRWISE, ids=lambda f: getattr(f, "__name__", ""))
def test_paired_versions_are_the_diagonal(ours, _, paired):
    a, b = rand_boxes(25, 7), rand_boxes(25, 8)
    torch.testing.assert_close(paired(a, b), torch.diagonal(ours(a, b)), **TOL)


def test_float32_box_iou_is_bitwise_torchvision():
    a, b = rand_boxes(200, 3, torch.float32), rand_boxes(150, 4, torch.float32)
    assert torch.equal(box_iou(a, b), tvo.box_iou(a, b))


def test_degenerate_boxes_give_zero_not_nan():
    point = torch.tensor([[5.0, 5.0, 5.0, 5.0]])
    line = torch.tensor([[0.0, 5.0, 10.0, 5.0]])
    both = torch.cat([point, line])
    assert torch.isnan(tvo.box_iou(point, point)).all()  # the pitfall we avoid
    for f in (box_iou, generalized_box_iou, distance_box_iou, complete_box_iou):
        out = f(both, both)
        assert torch.isfinite(out).all()
    assert torch.equal(box_iou(both, both), torch.zeros(2, 2))
    assert torch.equal(generalized_box_iou(point, point), torch.zeros(1, 1))
    # a zero-area box inside a real one: IoU 0, GIoU = 0 − (|C| − |A∪B|)/|C| = 0
    big = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    assert box_iou(point, big).item() == 0.0
    assert generalized_box_iou(point, big).item() == 0.0
    # gradients stay finite too
    x = both.clone().requires_grad_()
    for f in (box_iou, generalized_box_iou, distance_box_iou):
        (g,) = torch.autograd.grad(f(x, x).sum(), x)
        assert torch.isfinite(g).all()


def test_empty_inputs_give_empty_outputs():
    e = torch.zeros(0, 4)
    assert box_iou(e, rand_boxes(3, 0, torch.float32)).shape == (0, 3)
    assert generalized_box_iou(rand_boxes(2, 0), e.double()).shape == (2, 0)
    assert box_area(e).shape == (0,)
    assert remove_small_boxes(e, 1.0).dtype == torch.int64


def test_clip_and_remove_small_match_torchvision():
    b = rand_boxes(60, 5) - 20
    assert torch.equal(clip_boxes_to_image(b, (50, 70)), tvo.clip_boxes_to_image(b, (50, 70)))
    for m in (0.0, 5.0, 30.0):
        assert torch.equal(remove_small_boxes(b, m), tvo.remove_small_boxes(b, m))


box_st = st.tuples(
    st.floats(-1e4, 1e4), st.floats(-1e4, 1e4), st.floats(0, 1e4), st.floats(0, 1e4)
).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@settings(derandomize=True, deadline=None, max_examples=200)
@given(st.lists(box_st, min_size=1, max_size=6), st.lists(box_st, min_size=1, max_size=6))
def test_iou_properties(a, b):
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    iou, giou = box_iou(a, b), generalized_box_iou(a, b)
    assert torch.isfinite(iou).all() and torch.isfinite(giou).all()
    assert ((iou >= 0) & (iou <= 1 + 1e-12)).all()
    assert ((giou >= -1 - 1e-12) & (giou <= iou + 1e-12)).all()
    torch.testing.assert_close(iou, box_iou(b, a).T, rtol=0, atol=0)
    assert torch.isfinite(distance_box_iou(a, b)).all()
    assert torch.isfinite(complete_box_iou(a, b)).all()


def test_bad_input():
    good = rand_boxes(3, 0)
    with pytest.raises(ValueError, match="boxes1 must have shape"):
        box_iou(torch.zeros(3, 5), good)
    with pytest.raises(ValueError, match="boxes2 must satisfy x2 >= x1"):
        box_iou(good, torch.tensor([[5.0, 0.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match="boxes1 must be finite"):
        box_iou(torch.tensor([[0.0, 0.0, float("nan"), 1.0]]), good)
    with pytest.raises(ValueError, match="in_fmt must be one of"):
        box_convert(good, "xyhw", "xyxy")
    with pytest.raises(ValueError, match="width >= 0"):
        box_convert(torch.tensor([[0.0, 0.0, -1.0, 1.0]]), "xywh", "xyxy")
    with pytest.raises(ValueError, match="same number of boxes"):
        box_iou_paired(good, good[:2])
    with pytest.raises(TypeError, match="boxes1 must be a torch.Tensor"):
        box_iou([[0, 0, 1, 1]], good)
    with pytest.raises(ValueError, match="size must be"):
        clip_boxes_to_image(good, (10,))
    with pytest.raises(ValueError, match="eps must be >= 0"):
        distance_box_iou(good, good, eps=-1.0)


def test_half_precision_boxes_are_widened_to_float32_like_torchvision():
    b = rand_boxes(20, 9, dtype=torch.float16)
    for ours, ref in ((box_iou, tvo.box_iou), (generalized_box_iou, tvo.generalized_box_iou)):
        out, exp = ours(b, b), ref(b, b)
        assert out.dtype == exp.dtype == torch.float32
        # torchvision subtracts corners in float16 before widening, we widen first: same up to
        # float16 rounding of the corner differences
        torch.testing.assert_close(out, exp, rtol=0, atol=2e-3)
    assert box_area(b).dtype == tvo.box_area(b).dtype


def test_box_checks_tell_overflowing_sides_from_non_finite_corners():
    """The finite test runs on the sides; a side that overflows from finite corners is not an error."""
    big = torch.tensor([[-3e38, 0.0, 3e38, 1.0]])  # x2 - x1 overflows float32 to inf
    assert box_iou(big, big).shape == (1, 1)
    with pytest.raises(ValueError, match="boxes1 must satisfy x2 >= x1"):
        box_iou(torch.tensor([[3e38, 0.0, -3e38, 1.0], [0.0, 0.0, 1.0, 1.0]]), big)
    for bad in (float("inf"), -float("inf"), float("nan")):
        with pytest.raises(ValueError, match="boxes2 must be finite"):
            box_iou(big, torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, bad, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="boxes1 must be finite"):
        generalized_box_iou_loss(torch.tensor([[0.0, 0.0, float("inf"), 1.0]]), torch.ones(1, 4))
