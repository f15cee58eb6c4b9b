"""Classification + localization: the synthetic data, paired IoU against torchvision, and training."""

import pytest
import torch
import torchvision

from deepnotes.models.localization import (
    SHAPES,
    ClassifyLocalize,
    box_iou_paired,
    make_shapes,
    train_localizer,
)
from tests._reference import assert_same_maths

pytestmark = pytest.mark.usefixtures("one_thread")



def test_shapes_boxes_are_tight_around_the_shape():
    x, y, b = make_shapes(50, 20, seed=3, noise=0.0)
    assert x.shape == (50, 3, 20, 20) and y.shape == (50,) and b.shape == (50, 4)
    assert set(y.tolist()) <= set(range(len(SHAPES)))
    # loop reference: the box from the pixels that differ from the background colour
    for i in range(50):
        fg = (x[i] != x[i, :, 0, 0][:, None, None]).any(0)
        rows, cols = fg.any(1).nonzero().flatten(), fg.any(0).nonzero().flatten()
        ref = torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]) / 20
        assert torch.equal(b[i], ref.float())


def test_paired_iou_matches_torchvision_diagonal():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(30, 2, generator=g, dtype=torch.float64)
    a = torch.cat([p, p + torch.rand(30, 2, generator=g, dtype=torch.float64)], 1)
    q = torch.rand(30, 2, generator=g, dtype=torch.float64)
    b = torch.cat([q, q + torch.rand(30, 2, generator=g, dtype=torch.float64)], 1)
    assert_same_maths(box_iou_paired(a, b), torchvision.ops.box_iou(a, b).diagonal())
    empty = torch.zeros(1, 4, dtype=torch.float64)
    assert box_iou_paired(empty, empty).item() == 0.0  # torchvision gives NaN here
    with pytest.raises(ValueError, match="a and b"):
        box_iou_paired(a, b[:3])


def test_localizer_reaches_mean_iou_0_7():
    torch.manual_seed(0)
    train, test = make_shapes(1200, 24, seed=0), make_shapes(300, 24, seed=1)
    model = ClassifyLocalize((3, 24, 24), 3, width=16)
    report = train_localizer(model, train, test, epochs=6)
    assert report.mean_iou >= 0.7
    assert report.accuracy >= 0.9
    assert report.history[-1] < report.history[0]


def test_localizer_contract():
    model = ClassifyLocalize((3, 16, 16), 3)
    x = torch.rand(2, 3, 16, 16)
    logits, boxes = model(x)
    assert logits.shape == (2, 3) and boxes.shape == (2, 4)
    assert bool(torch.isfinite(logits).all()) and bool(((boxes >= -0.5) & (boxes <= 1.5)).all())
    assert bool((boxes[:, 2:] >= boxes[:, :2]).all())  # widths and heights are non-negative
    (logits.sum() + boxes.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x))


def test_localization_errors():
    with pytest.raises(ValueError, match="n"):
        make_shapes(0)
    with pytest.raises(ValueError, match="minimum input size 8x8"):
        ClassifyLocalize((3, 4, 4))
    with pytest.raises(ValueError, match="epochs"):
        train_localizer(ClassifyLocalize((3, 8, 8)), make_shapes(4, 8), make_shapes(4, 8), epochs=0)
