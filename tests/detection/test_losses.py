"""Box losses and the focal loss against torchvision.ops (values and gradients); the rest against formulas
written out in the tests."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.ops as tvo

from deepnotes.detection import (
    box_iou_paired,
    complete_box_iou_loss,
    distance_box_iou_loss,
    eiou_loss,
    generalized_box_iou_loss,
    iou_loss,
    repulsion_loss,
    sigmoid_focal_loss,
    smooth_l1_box_loss,
)

from .test_boxes_iou import rand_boxes

TOL = dict(rtol=1e-7, atol=1e-7)
PAIRS = [
    (generalized_box_iou_loss, tvo.generalized_box_iou_loss),
    (distance_box_iou_loss, tvo.distance_box_iou_loss),
    (complete_box_iou_loss, tvo.complete_box_iou_loss),
]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("ours,ref", PAIRS, ids=lambda f: f.__name__)
def test_iou_losses_match_torchvision(ours, ref, seed, reduction):
    a = rand_boxes(64, seed).requires_grad_()
    b = rand_boxes(64, seed + 9).requires_grad_()
    out, exp = ours(a, b, reduction=reduction), ref(a, b, reduction=reduction)
    torch.testing.assert_close(out, exp, **TOL)
    w = torch.randn(out.shape, dtype=torch.float64)
    for x, y in zip(
        torch.autograd.grad((out * w).sum(), (a, b)), torch.autograd.grad((exp * w).sum(), (a, b))
    ):
        torch.testing.assert_close(x, y, **TOL)


@pytest.mark.parametrize("ours,ref", PAIRS, ids=lambda f: f.__name__)
def test_iou_losses_on_single_boxes_and_empty_batches(ours, ref):
    a, b = rand_boxes(1, 1)[0], rand_boxes(1, 2)[0]
    torch.testing.assert_close(ours(a, b), ref(a, b), **TOL)
    e = torch.zeros(0, 4, dtype=torch.float64)
    torch.testing.assert_close(ours(e, e, reduction="mean"), ref(e, e, reduction="mean"))


def test_iou_loss_is_one_minus_iou_and_flat_for_disjoint_boxes():
    a, b = rand_boxes(50, 3), rand_boxes(50, 4)
    inter_union_eps = 1 - box_iou_paired(a, b)
    torch.testing.assert_close(iou_loss(a, b), inter_union_eps, rtol=1e-6, atol=1e-6)
    p = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[3.0, 3.0, 4.0, 4.0]], dtype=torch.float64)
    (g_iou,) = torch.autograd.grad(iou_loss(p, t).sum(), p)
    (g_giou,) = torch.autograd.grad(generalized_box_iou_loss(p, t).sum(), p)
    assert torch.equal(g_iou, torch.zeros_like(g_iou))
    assert g_giou.abs().sum() > 0


def test_eiou_loss_matches_the_formula():
    a = rand_boxes(30, 5).requires_grad_()
    b = rand_boxes(30, 6)
    eps = 1e-7
    rows = []
    for p, t in zip(a, b):
        iw = (torch.min(p[2], t[2]) - torch.max(p[0], t[0])).clamp(min=0)
        ih = (torch.min(p[3], t[3]) - torch.max(p[1], t[1])).clamp(min=0)
        inter = iw * ih
        union = (p[2] - p[0]) * (p[3] - p[1]) + (t[2] - t[0]) * (t[3] - t[1]) - inter
        cw = torch.max(p[2], t[2]) - torch.min(p[0], t[0])
        ch = torch.max(p[3], t[3]) - torch.min(p[1], t[1])
        rho2 = ((p[0] + p[2]) / 2 - (t[0] + t[2]) / 2) ** 2 + (
            (p[1] + p[3]) / 2 - (t[1] + t[3]) / 2
        ) ** 2
        dw = (p[2] - p[0]) - (t[2] - t[0])
        dh = (p[3] - p[1]) - (t[3] - t[1])
        rows.append(
            1
            - inter / (union + eps)
            + rho2 / (cw**2 + ch**2 + eps)
            + dw**2 / (cw**2 + eps)
            + dh**2 / (ch**2 + eps)
        )
    exp = torch.stack(rows)
    out = eiou_loss(a, b)
    torch.testing.assert_close(out, exp, **TOL)
    w = torch.randn(30, dtype=torch.float64)
    torch.testing.assert_close(
        torch.autograd.grad((out * w).sum(), a)[0],
        torch.autograd.grad((exp * w).sum(), a)[0],
        **TOL,
    )


@pytest.mark.parametrize("beta", [1.0, 1 / 9])
def test_smooth_l1_box_loss_sums_torch_over_the_four_deltas(beta):
    x = torch.randn(40, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randn(40, 4, dtype=torch.float64)
    out = smooth_l1_box_loss(x, t, beta=beta, reduction="mean")
    exp = F.smooth_l1_loss(x, t, beta=beta, reduction="none").sum(1).mean()
    torch.testing.assert_close(out, exp, **TOL)
    torch.testing.assert_close(
        torch.autograd.grad(out, x)[0], torch.autograd.grad(exp, x)[0], **TOL
    )


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.5, 0.0), (-1.0, 2.0), (0.9, 1.5)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_focal_loss_matches_torchvision(alpha, gamma, reduction):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(20, 5, generator=g, dtype=torch.float64) * 4).requires_grad_()
    y = (torch.rand(20, 5, generator=g) < 0.3).double()
    out = sigmoid_focal_loss(x, y, alpha, gamma, reduction)
    exp = tvo.sigmoid_focal_loss(x, y, alpha, gamma, reduction)
    torch.testing.assert_close(out, exp, **TOL)
    w = torch.randn(out.shape, dtype=torch.float64)
    torch.testing.assert_close(
        torch.autograd.grad((out * w).sum(), x)[0],
        torch.autograd.grad((exp * w).sum(), x)[0],
        **TOL,
    )


def test_focal_loss_with_gamma_0_and_no_alpha_is_bce():
    x = torch.randn(100, dtype=torch.float64) * 3
    y = (torch.rand(100) < 0.5).double()
    torch.testing.assert_close(
        sigmoid_focal_loss(x, y, alpha=-1, gamma=0, reduction="mean"),
        F.binary_cross_entropy_with_logits(x, y),
        rtol=1e-12,
        atol=1e-12,
    )


def slow_repulsion(pred, gt, assigned, alpha, beta, sigma_gt, sigma_box):
    def area(b):
        return (b[2] - b[0]) * (b[3] - b[1])

    def inter(a, b):
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
            0.0, min(a[3], b[3]) - max(a[1], b[1])
        )

    def iou(a, b):
        u = area(a) + area(b) - inter(a, b)
        return inter(a, b) / u if u > 0 else 0.0

    def smooth_ln(x, s):
        x = min(x, 1 - 1e-6)
        return -math.log(1 - x) if x <= s else (x - s) / (1 - s) - math.log(1 - s)

    def sl1(d):
        return 0.5 * d * d if abs(d) < 1 else abs(d) - 0.5

    n = len(pred)
    attr = sum(sum(sl1(p - t) for p, t in zip(pred[i], gt[assigned[i]])) for i in range(n)) / n
    rep_gt = 0.0
    for i in range(n):
        others = [j for j in range(len(gt)) if j != assigned[i]]
        if others:
            best = max(others, key=lambda j: (iou(pred[i], gt[j]), -j))
            rep_gt += smooth_ln(inter(pred[i], gt[best]) / area(gt[best]), sigma_gt)
    rep_gt /= n
    total, count = 0.0, 0
    for i in range(n):
        for j in range(i + 1, n):
            if assigned[i] != assigned[j]:
                o = iou(pred[i], pred[j])
                total += smooth_ln(o, sigma_box)
                count += o > 0
    return attr + alpha * rep_gt + beta * total / (count + 1e-9)


@pytest.mark.parametrize("sigmas", [(1.0, 0.0), (0.5, 0.5), (0.3, 0.9)])
@pytest.mark.parametrize("seed", range(3))
def test_repulsion_loss_equals_a_slow_loop(seed, sigmas):
    gt = rand_boxes(5, seed, scale=30.0)
    assigned = torch.randint(0, 5, (12,), generator=torch.Generator().manual_seed(seed))
    pred = (
        gt[assigned]
        + torch.randn(12, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2
    )
    pred = torch.cat(
        [torch.minimum(pred[:, :2], pred[:, 2:]), torch.maximum(pred[:, :2], pred[:, 2:])], 1
    )
    out = repulsion_loss(pred, gt, assigned, 0.5, 0.5, *sigmas)
    exp = slow_repulsion(pred.tolist(), gt.tolist(), assigned.tolist(), 0.5, 0.5, *sigmas)
    assert abs(float(out) - exp) < 1e-9
    p = pred.clone().requires_grad_()
    (g,) = torch.autograd.grad(repulsion_loss(p, gt, assigned), p)
    assert torch.isfinite(g).all()


def test_bad_input():
    a = rand_boxes(3, 0)
    with pytest.raises(ValueError, match="same shape"):
        generalized_box_iou_loss(a, a[:2])
    with pytest.raises(ValueError, match="reduction must be one of"):
        distance_box_iou_loss(a, a, reduction="avg")
    with pytest.raises(ValueError, match="boxes1 must be finite"):
        complete_box_iou_loss(torch.full((1, 4), float("nan")), a[:1])
    with pytest.raises(ValueError, match="boxes2 must satisfy"):
        iou_loss(a[:1], torch.tensor([[2.0, 2.0, 1.0, 3.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="alpha must be <= 1"):
        sigmoid_focal_loss(torch.zeros(3), torch.ones(3), alpha=1.5)
    with pytest.raises(ValueError, match="targets must have the shape"):
        sigmoid_focal_loss(torch.zeros(3), torch.ones(4))
    with pytest.raises(ValueError, match="inputs must be finite"):
        sigmoid_focal_loss(torch.tensor([float("nan")]), torch.ones(1))
    with pytest.raises(ValueError, match="assigned must index"):
        repulsion_loss(a, a, torch.tensor([0, 1, 5]))
    with pytest.raises(ValueError, match="input and target must both have shape"):
        smooth_l1_box_loss(torch.zeros(3, 5), torch.zeros(3, 5))
