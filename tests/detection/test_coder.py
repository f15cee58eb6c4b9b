"""BoxCoder against torchvision's detection BoxCoder; YOLO grid offsets against the formula, loop by loop."""

import math

import pytest
import torch
from torchvision.models.detection._utils import BoxCoder as TVBoxCoder

from deepnotes.detection import BoxCoder, yolo_decode, yolo_encode

from .test_boxes_iou import rand_boxes

TOL = dict(rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize(
    "weights", [(10.0, 10.0, 5.0, 5.0), (1.0, 1.0, 1.0, 1.0), (2.0, 3.0, 0.5, 4.0)]
)
@pytest.mark.parametrize("seed", range(3))
def test_encode_decode_match_torchvision(weights, seed):
    ours, ref = BoxCoder(weights), TVBoxCoder(weights)
    gt, proposals = rand_boxes(40, seed), rand_boxes(40, seed + 50)
    torch.testing.assert_close(ours.encode(gt, proposals), ref.encode_single(gt, proposals), **TOL)
    g = torch.Generator().manual_seed(seed)
    codes = torch.randn(40, 12, generator=g, dtype=torch.float64) * 3  # K = 3 classes, some clipped
    codes[0, 2] = 100.0  # far beyond bbox_xform_clip
    torch.testing.assert_close(
        ours.decode(codes, proposals), ref.decode_single(codes, proposals), **TOL
    )
    torch.testing.assert_close(
        ours.decode(ours.encode(gt, proposals), proposals), gt, rtol=1e-9, atol=1e-9
    )


def test_decode_gradients_match_torchvision():
    proposals = rand_boxes(10, 3)
    codes = torch.randn(10, 4, dtype=torch.float64, requires_grad=True)
    a = torch.autograd.grad(BoxCoder().decode(codes, proposals).sum(), codes)[0]
    b = torch.autograd.grad(
        TVBoxCoder((10.0, 10.0, 5.0, 5.0)).decode_single(codes, proposals).sum(), codes
    )[0]
    torch.testing.assert_close(a, b, **TOL)


def test_default_clip_is_log_1000_over_16():
    assert BoxCoder().bbox_xform_clip == math.log(1000.0 / 16)


def test_yolo_decode_matches_the_formula_cell_by_cell():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(3, 4, 2, 4, generator=g, dtype=torch.float64)
    anchors = torch.tensor([[10.0, 14.0], [23.0, 27.0]], dtype=torch.float64)
    out = yolo_decode(codes, anchors, stride=8.0)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    for row in range(3):
        for col in range(4):
            for a in range(2):
                tx, ty, tw, th = codes[row, col, a].tolist()
                cx, cy = (sig(tx) + col) * 8, (sig(ty) + row) * 8
                w, h = anchors[a, 0].item() * math.exp(tw), anchors[a, 1].item() * math.exp(th)
                exp = torch.tensor(
                    [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=torch.float64
                )
                torch.testing.assert_close(out[row, col, a], exp, **TOL)


def test_yolo_encode_round_trips():
    boxes = rand_boxes(30, 2)
    anchors = torch.rand(30, 2, dtype=torch.float64) * 40 + 5
    cells, codes = yolo_encode(boxes, anchors, stride=16.0)
    grid = torch.zeros(
        int(cells[:, 0].max()) + 1, int(cells[:, 1].max()) + 1, 30, 4, dtype=torch.float64
    )
    grid[cells[:, 0], cells[:, 1], torch.arange(30)] = codes
    decoded = yolo_decode(grid, anchors, 16.0)[cells[:, 0], cells[:, 1], torch.arange(30)]
    torch.testing.assert_close(decoded, boxes, rtol=1e-9, atol=1e-9)


def test_bad_input():
    with pytest.raises(ValueError, match="weights must have 4 entries"):
        BoxCoder((1.0, 1.0))
    with pytest.raises(ValueError, match="same length"):
        BoxCoder().encode(rand_boxes(3, 0), rand_boxes(2, 0))
    with pytest.raises(ValueError, match="positive width and height"):
        BoxCoder().encode(
            rand_boxes(1, 0), torch.tensor([[1.0, 1.0, 1.0, 5.0]], dtype=torch.float64)
        )
    with pytest.raises(ValueError, match="rel_codes must have shape"):
        BoxCoder().decode(torch.zeros(3, 5, dtype=torch.float64), rand_boxes(3, 0))
    with pytest.raises(ValueError, match="rel_codes must be finite"):
        BoxCoder().decode(torch.full((1, 4), float("nan")), rand_boxes(1, 0))
    with pytest.raises(ValueError, match="codes must have shape"):
        yolo_decode(torch.zeros(2, 2, 3, 4), torch.ones(2, 2), 8.0)
    with pytest.raises(ValueError, match="anchors must have positive"):
        yolo_decode(torch.zeros(2, 2, 1, 4), torch.zeros(1, 2), 8.0)
    with pytest.raises(ValueError, match="stride must be > 0"):
        yolo_encode(rand_boxes(1, 0), torch.ones(1, 2, dtype=torch.float64), 0.0)
