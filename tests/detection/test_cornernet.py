"""CornerNet: corner pooling against a plain loop (values and gradients), pull/push losses by hand,
the corner targets, pairing of corners into boxes, training, output format and bad input."""

import math

import pytest
import torch

from deepnotes.core.registry import MODELS
from deepnotes.detection.models import CornerNet, corner_pool, pull_push_loss

from ._helpers import assert_detections, assert_rejects, detect, few_images, no_objects, train_steps


def _loop_pool(h, v, corner):
    out = torch.zeros_like(h)
    n, c, rows, cols = h.shape
    for b in range(n):
        for ch in range(c):
            for i in range(rows):
                for j in range(cols):
                    if corner == "top_left":
                        out[b, ch, i, j] = h[b, ch, i, j:].max() + v[b, ch, i:, j].max()
                    else:
                        out[b, ch, i, j] = h[b, ch, i, : j + 1].max() + v[b, ch, : i + 1, j].max()
    return out


@pytest.mark.parametrize("corner", ["top_left", "bottom_right"])
def test_corner_pool_equals_a_plain_loop(corner):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    ours = corner_pool(h, v, corner)
    ref = _loop_pool(h, v, corner)
    torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-7)
    w = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    g_ours = torch.autograd.grad((ours * w).sum(), (h, v))
    g_ref = torch.autograd.grad((ref * w).sum(), (h, v))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-7)


def test_corner_pool_looks_right_and_down_from_the_top_left():
    h = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    v = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    h[0, 0, 1, 2] = 5.0  # right of (1, 0) and (1, 1)
    v[0, 0, 2, 0] = 7.0  # below (0, 0) and (1, 0)
    tl = corner_pool(h, v, "top_left")[0, 0]
    assert tl.tolist() == [[7.0, 0.0, 0.0], [12.0, 5.0, 5.0], [7.0, 0.0, 0.0]]
    br = corner_pool(h, v, "bottom_right")[0, 0]
    assert br.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 5.0], [7.0, 0.0, 0.0]]  # looks left and up


def test_pull_push_losses_by_hand():
    # image 0: two objects, embeddings (tl, br) = (1.0, 0.6) and (0.0, 0.2) → means 0.8 and 0.1;
    # image 1: one object (0.5, 0.5); image 2: no object
    tl = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    br = torch.tensor([0.6, 0.2, 0.5], dtype=torch.float64)
    image = torch.tensor([0, 0, 1])
    pull, push = pull_push_loss(tl, br, image, batch=3)
    pull0 = ((1 - 0.8) ** 2 + (0.6 - 0.8) ** 2 + (0 - 0.1) ** 2 + (0.2 - 0.1) ** 2) / 2
    push0 = 2 * max(0.0, 1 - abs(0.8 - 0.1)) / (2 * 1)  # both ordered pairs over N(N − 1)
    assert float(pull) == pytest.approx(pull0 / 3, abs=1e-12)
    assert float(push) == pytest.approx(push0 / 3, abs=1e-12)
    far, _ = pull_push_loss(tl, br, torch.tensor([0, 1, 2]), batch=3)  # one object per image: no push
    assert float(pull_push_loss(tl, br, torch.tensor([0, 1, 2]), batch=3)[1]) == 0.0
    assert float(far) > 0


def test_cornernet_pairs_matching_corners_into_one_box():
    model = CornerNet((3, 32, 32), num_classes=2, width=4, score_thresh=0.6).eval()  # a real corner with a background one scores < 0.45
    raw = {f"{c}_{k}": torch.zeros(1, n, 8, 8) for c in ("top_left", "bottom_right")
           for k, n in (("heatmap", 2), ("embedding", 1), ("offset", 2))}
    raw["top_left_heatmap"].fill_(-10.0)
    raw["bottom_right_heatmap"].fill_(-10.0)
    raw["top_left_heatmap"][0, 1, 1, 2] = 2.0      # class 2 top-left at cell (x 2, y 1)
    raw["top_left_offset"][0, :, 1, 2] = torch.tensor([0.5, 0.25])
    raw["bottom_right_heatmap"][0, 1, 5, 6] = 1.0  # class 2 bottom-right at cell (x 6, y 5)
    raw["top_left_embedding"][0, 0, 1, 2] = 0.3
    raw["bottom_right_embedding"][0, 0, 5, 6] = 0.1
    det = model.postprocess(raw)[0]
    assert det["labels"].tolist() == [2]
    # corners ((2 + 0.5)·4, (1 + 0.25)·4) = (10, 5) and (6·4, 5·4) = (24, 20); score = mean
    torch.testing.assert_close(det["boxes"], torch.tensor([[10.0, 5.0, 24.0, 20.0]]))
    expected = (torch.sigmoid(torch.tensor(2.0)) + torch.sigmoid(torch.tensor(1.0))) / 2
    torch.testing.assert_close(det["scores"], expected.view(1))
    raw["bottom_right_embedding"][0, 0, 5, 6] = 0.9  # embeddings 0.6 apart: not one object
    assert len(model.postprocess(raw)[0]["boxes"]) == 0


def test_cornernet_loss_at_its_targets_has_no_offset_or_pull_term():
    model = CornerNet((3, 32, 32), num_classes=2, width=4)
    boxes = torch.tensor([[2.0, 6.0, 18.0, 26.0]])  # corners (0.5, 1.5) and (4.5, 6.5) at stride 4
    target = [{"boxes": boxes, "labels": torch.tensor([1])}]
    raw = {f"{c}_{k}": torch.zeros(1, n, 8, 8) for c in ("top_left", "bottom_right")
           for k, n in (("heatmap", 2), ("embedding", 1), ("offset", 2))}
    raw["top_left_offset"][0, :, 1, 0] = torch.tensor([0.5, 0.5])
    raw["bottom_right_offset"][0, :, 6, 4] = torch.tensor([0.5, 0.5])
    terms = model.loss(raw, target)
    assert float(terms["loss_offset"]) == 0.0 and float(terms["loss_pull"]) == 0.0
    assert float(terms["loss_push"]) == 0.0  # one object: nothing to push apart
    assert float(terms["loss_heatmap"]) > 0
    raw["top_left_offset"][0, :, 1, 0] = torch.tensor([0.0, 0.5])  # off by 0.5 in x: smooth L1 = 0.125
    assert float(model.loss(raw, target)["loss_offset"]) == pytest.approx(0.5 * 0.5**2, abs=1e-7)


def test_cornernet_trains_and_its_loss_falls():
    assert MODELS.meta("cornernet")["task"] == "detect"
    torch.manual_seed(0)
    model = MODELS.create("cornernet", (3, 32, 32), 3, width=8)
    x, t = few_images(4)
    t[1] = no_objects()
    losses, _ = train_steps(model, x, t, steps=25, lr=3e-3, loss_names=model.loss_names)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.5 * losses[0], losses


def test_cornernet_output_format():
    torch.manual_seed(0)
    model = CornerNet((3, 32, 32), 3, width=4, detections_per_img=7, score_thresh=0.0)
    x, _ = few_images(3)
    out = detect(model, x)
    assert_detections(out, n_images=3, num_classes=3, image_size=32, max_dets=7)


def test_cornernet_bad_input():
    model = CornerNet((3, 32, 32), 3, width=4)
    x, t = few_images(2)
    assert_rejects(model, x, t, wrong_size=48, bad_label=0)
    with pytest.raises(ValueError, match="in_shape"):
        CornerNet((3, 30, 30), 3)
    with pytest.raises(ValueError, match="corner"):
        corner_pool(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), "top_right")
    with pytest.raises(ValueError, match="one shape"):
        corner_pool(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))
