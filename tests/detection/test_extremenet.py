"""ExtremeNet: extreme points of masks against a plain loop, centre grouping on hand-made heatmaps
(the box and score by hand, inconsistent combinations and low centre scores rejected), the loss
targets, training, output format, bad input and the command line."""

import math

import pytest
import torch

from deepnotes.core.registry import MODELS
from deepnotes.data import shapes
from deepnotes.detection.models import ExtremeNet, extreme_points, group_extreme_points

from ._helpers import assert_detections, assert_rejects, detect, few_images, no_objects, train_steps


def _loop_extremes(boxes, masks):
    points, centres = [], []
    for k in range(len(boxes)):
        x1, y1, x2, y2 = boxes[k].tolist()
        pixels = [(i, j) for i in range(masks.shape[1]) for j in range(masks.shape[2]) if masks[k, i, j]]
        if not pixels:
            p = [((x1 + x2) / 2, y1), (x1, (y1 + y2) / 2), ((x1 + x2) / 2, y2), (x2, (y1 + y2) / 2)]
        else:
            top, bottom = min(i for i, _ in pixels), max(i for i, _ in pixels)
            left, right = min(j for _, j in pixels), max(j for _, j in pixels)
            top_cols = [j for i, j in pixels if i == top]
            bottom_cols = [j for i, j in pixels if i == bottom]
            left_rows = [i for i, j in pixels if j == left]
            right_rows = [i for i, j in pixels if j == right]
            p = [((min(top_cols) + max(top_cols) + 1) / 2, top), (left, (min(left_rows) + max(left_rows) + 1) / 2),
                 ((min(bottom_cols) + max(bottom_cols) + 1) / 2, bottom + 1),
                 (right + 1, (min(right_rows) + max(right_rows) + 1) / 2)]
        points.append(p)
        centres.append(((p[1][0] + p[3][0]) / 2, (p[0][1] + p[2][1]) / 2))
    return torch.tensor(points, dtype=torch.float64), torch.tensor(centres, dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extreme_points_equal_a_plain_loop(seed):
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(7, 9, 11, generator=g) < torch.rand(7, 1, 1, generator=g) * 0.4
    masks[2] = False  # an empty mask: the box's edge midpoints
    xy = torch.rand(7, 2, generator=g, dtype=torch.float64) * 10
    boxes = torch.cat([xy, xy + torch.rand(7, 2, generator=g, dtype=torch.float64) * 5], 1)
    points, centres = extreme_points(boxes, masks.to(torch.uint8))
    ref_points, ref_centres = _loop_extremes(boxes, masks)
    torch.testing.assert_close(points, ref_points, rtol=0, atol=1e-12)
    torch.testing.assert_close(centres, ref_centres, rtol=0, atol=1e-12)
    no_masks, _ = extreme_points(boxes)  # every object falls back to its box
    torch.testing.assert_close(no_masks, _loop_extremes(boxes, torch.zeros_like(masks))[0], rtol=0, atol=1e-12)


def test_extreme_points_of_a_triangle_by_hand():
    # a right triangle filling rows 1..3: row 1 column 1; row 2 columns 1..2; row 3 columns 1..3
    mask = torch.zeros(1, 5, 5, dtype=torch.bool)
    mask[0, 1, 1] = True
    mask[0, 2, 1:3] = True
    mask[0, 3, 1:4] = True
    points, centres = extreme_points(torch.tensor([[0.0, 0.0, 5.0, 5.0]]), mask)
    # top: row 1's pixel (1, 1) → (1.5, 1); left: column 1, rows 1..3 → (1, 2.5);
    # bottom: row 3, columns 1..3 → (2.5, 4); right: column 3, row 3 → (4, 3.5)
    assert points[0].tolist() == [[1.5, 1.0], [1.0, 2.5], [2.5, 4.0], [4.0, 3.5]]
    assert centres[0].tolist() == [2.5, 2.5]  # the box (1, 1, 4, 4) they span


def _heatmaps(c=2, size=8):
    return (torch.zeros(1, 4, c, size, size, dtype=torch.float64), torch.zeros(1, c, size, size, dtype=torch.float64),
            torch.full((1, 4, 2, size, size), 0.5, dtype=torch.float64))


def _object(extreme, centre, cls=1, scores=(0.9, 0.8, 0.7, 0.6), cells=((3, 1), (1, 3), (4, 6), (6, 4))):
    for e, ((x, y), s) in enumerate(zip(cells, scores)):  # cells (x, y) of top, left, bottom, right
        extreme[0, e, cls, y, x] = s


def test_grouping_gives_the_hand_computed_box_and_score():
    extreme, centre, offsets = _heatmaps()
    _object(extreme, centre)
    # with offsets 0.5: top (3.5, 1.5), left (1.5, 3.5), bottom (4.5, 6.5), right (6.5, 4.5) in cells;
    # the box (1.5, 1.5, 6.5, 6.5) · 4 = (6, 6, 26, 26), its centre (4, 4) → centre cell (4, 4)
    centre[0, 1, 4, 4] = 0.5
    boxes, scores, labels, image = group_extreme_points(extreme, centre, offsets, stride=4, top_k=4)
    torch.testing.assert_close(boxes, torch.tensor([[6.0, 6.0, 26.0, 26.0]], dtype=torch.float64))
    torch.testing.assert_close(scores, torch.tensor([(0.9 + 0.8 + 0.7 + 0.6 + 0.5) / 5], dtype=torch.float64))
    assert labels.tolist() == [1] and image.tolist() == [0]
    centre[0, 1, 4, 4] = 0.05  # below center_thresh = 0.1
    assert len(group_extreme_points(extreme, centre, offsets, top_k=4)[1]) == 0
    centre[0, 1, 4, 4] = 0.5
    extreme[0, 2, 1, 6, 4] = 0.09  # the bottom point below peak_thresh = 0.1
    assert len(group_extreme_points(extreme, centre, offsets, top_k=4)[1]) == 0
    extreme[0, 2, 1, 6, 4] = 0.7
    extreme[0, 2, 1, 6, 5] = 0.8  # a brighter neighbour: (4, 6) is no 3 × 3 peak, (5, 6) replaces it
    boxes, scores, _, _ = group_extreme_points(extreme, centre, offsets, stride=4, top_k=4)
    torch.testing.assert_close(scores, torch.tensor([(0.9 + 0.8 + 0.8 + 0.6 + 0.5) / 5], dtype=torch.float64))
    extreme[0, 2, 1, 6, 5] = 0.0
    centre[0, 1, 4, 4] = 0.5
    centre[0, 0, 4, 4] = 0.0
    extreme[0, 3, 1] = 0.0  # no right point of class 2 ...
    extreme[0, 3, 0, 4, 6] = 0.6  # ... but one of class 1: classes do not mix
    assert len(group_extreme_points(extreme, centre, offsets, top_k=4)[1]) == 0


@pytest.mark.parametrize("moved", [
    (0, (7, 1)),  # the top point right of the right point
    (0, (0, 1)),  # the top point left of the left point
    (1, (1, 0)),  # the left point above the top point
    (3, (6, 7)),  # the right point below the bottom point
    (2, (4, 0)),  # the bottom point above the top point
])
def test_grouping_rejects_inconsistent_combinations(moved):
    extreme, centre, offsets = _heatmaps()
    centre[0, 1] = 0.5  # any centre would do
    cells = [(3, 1), (1, 3), (4, 6), (6, 4)]
    e, cell = moved
    cells[e] = cell
    _object(extreme, centre, cells=tuple(cells))
    assert len(group_extreme_points(extreme, centre, offsets, top_k=4)[1]) == 0


def test_grouping_keeps_the_two_true_objects_among_sixteen_combinations():
    extreme, centre, offsets = _heatmaps(c=1, size=16)
    offsets.zero_()
    _object(extreme, centre, cls=0, cells=((3, 1), (1, 3), (3, 5), (5, 3)))  # box (1, 1, 5, 5) cells, centre (3, 3)
    _object(extreme, centre, cls=0, cells=((11, 9), (9, 11), (11, 13), (13, 11)),
            scores=(0.5, 0.5, 0.5, 0.5))  # box (9, 9, 13, 13), centre (11, 11)
    centre[0, 0, 3, 3] = 0.4
    centre[0, 0, 11, 11] = 0.9
    boxes, scores, _, _ = group_extreme_points(extreme, centre, offsets, stride=1, top_k=4)
    order = scores.argsort(descending=True)
    # the mixed combinations pass the geometric test (e.g. t, l of the first and b, r of the second)
    # but their centres, e.g. (7, 7), are dark
    torch.testing.assert_close(boxes[order], torch.tensor([[1.0, 1.0, 5.0, 5.0], [9.0, 9.0, 13.0, 13.0]], dtype=torch.float64))
    torch.testing.assert_close(scores[order], torch.tensor([3.4 / 5, 2.9 / 5], dtype=torch.float64))
    centre[0, 0, 7, 7] = 0.3  # now the box (1, 1, 13, 13) spanned by both objects' outer points is found too
    boxes, scores, _, _ = group_extreme_points(extreme, centre, offsets, stride=1, top_k=4)
    assert [1.0, 1.0, 13.0, 13.0] in boxes.tolist() and len(boxes) == 3


def test_extremenet_decodes_its_raw_outputs_into_the_hand_computed_box():
    model = ExtremeNet((3, 32, 32), num_classes=2, width=4, top_k=4).eval()
    extreme, centre, offsets = _heatmaps()
    _object(extreme, centre)
    centre[0, 1, 4, 4] = 0.5
    logit = torch.special.logit
    raw = {"extreme": logit(extreme.clamp(1e-9, 1 - 1e-9)).float(), "center": logit(centre.clamp(1e-9, 1 - 1e-9)).float(),
           "offset": offsets.float()}
    det = model.postprocess(raw)[0]
    assert det["labels"].tolist() == [2]
    torch.testing.assert_close(det["boxes"], torch.tensor([[6.0, 6.0, 26.0, 26.0]]))
    torch.testing.assert_close(det["scores"], torch.tensor([0.7]))


def _raw(c=2, size=8):
    return {"extreme": torch.zeros(1, 4, c, size, size), "center": torch.zeros(1, c, size, size),
            "offset": torch.zeros(1, 4, 2, size, size)}


def test_loss_offsets_at_the_extreme_points_of_boxes_and_masks():
    model = ExtremeNet((3, 32, 32), num_classes=2, width=4)
    box = torch.tensor([[2.0, 6.0, 18.0, 26.0]])
    # box edge midpoints / 4: top (2.5, 1.5), left (0.5, 4), bottom (2.5, 6.5), right (4.5, 4)
    raw = _raw()
    for e, (x, y, ox, oy) in enumerate([(2, 1, 0.5, 0.5), (0, 4, 0.5, 0.0), (2, 6, 0.5, 0.5), (4, 4, 0.5, 0.0)]):
        raw["offset"][0, e, :, y, x] = torch.tensor([ox, oy])
    terms = model.loss(raw, [{"boxes": box, "labels": torch.tensor([2])}])
    assert set(terms) == set(model.loss_names)
    assert float(terms["loss_offset"]) == 0.0 and float(terms["loss_extreme"]) > 0 and float(terms["loss_center"]) > 0
    # a triangle filling the box, its right angle at the bottom left: top (2.5, 6), left (2, 16),
    # bottom (10, 26), right (18, 25) — not the box's edge midpoints
    rows = torch.arange(32).view(-1, 1)
    cols = torch.arange(32).view(1, -1)
    mask = (rows >= 6) & (rows < 26) & (cols >= 2) & (cols < 18) & ((cols - 2) * 20 <= (rows - 6 + 1) * 16 - 1)
    points, _ = extreme_points(box, mask[None])
    assert points[0].tolist() == [[2.5, 6.0], [2.0, 16.0], [10.0, 26.0], [18.0, 25.0]]
    with_mask = model.loss(raw, [{"boxes": box, "labels": torch.tensor([2]), "masks": mask[None].to(torch.uint8)}])
    expected = [(points[0, e] / 4 - (points[0, e] / 4).floor().clamp(max=7)) for e in range(4)]
    cells = [(points[0, e] / 4).floor().clamp(max=7).long() for e in range(4)]
    for e in range(4):  # the offsets at the mask's extreme points' cells: the offset loss vanishes again
        raw["offset"][0, e] = 0
        raw["offset"][0, e, :, cells[e][1], cells[e][0]] = expected[e]
    assert float(with_mask["loss_offset"]) > 0
    assert float(model.loss(raw, [{"boxes": box, "labels": torch.tensor([2]), "masks": mask[None]}])["loss_offset"]) < 1e-12


def test_extremenet_trains_and_its_loss_falls():
    assert MODELS.meta("extremenet")["task"] == "detect"
    assert MODELS.meta("extremenet")["zoo"]["target_map50"] == 0.80
    torch.manual_seed(0)
    model = MODELS.create("extremenet", (3, 32, 32), 3, width=8)
    x, t = few_images(4, masks=True)
    t[1] = {**no_objects(), "masks": torch.zeros(0, 32, 32, dtype=torch.uint8)}
    t[2] = {k: t[2][k] for k in ("boxes", "labels")}  # an image without masks: its boxes' midpoints
    losses, _ = train_steps(model, x, t, steps=25, lr=3e-3, loss_names=model.loss_names)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.5 * losses[0], losses


def test_extremenet_output_format():
    torch.manual_seed(0)
    model = ExtremeNet((3, 32, 32), 3, width=4, detections_per_img=7, peak_thresh=0.0, center_thresh=0.0,
                       score_thresh=0.0)
    x, _ = few_images(3)
    out = detect(model, x)
    assert_detections(out, n_images=3, num_classes=3, image_size=32, max_dets=7, min_dets=1)


def test_extremenet_groups_in_chunks_as_in_one_call(monkeypatch):
    import deepnotes.detection.models.extremenet as module

    torch.manual_seed(0)
    model = ExtremeNet((3, 32, 32), 3, width=4, peak_thresh=0.0, center_thresh=0.0, score_thresh=0.0, top_k=3)
    x, _ = few_images(3)
    whole = detect(model, x)
    monkeypatch.setattr(module, "MAX_COMBINATIONS", 1)  # one image per call
    for a, b in zip(whole, detect(model, x)):
        for k in a:
            torch.testing.assert_close(a[k], b[k])


def test_extremenet_bad_input():
    model = ExtremeNet((3, 32, 32), 3, width=4)
    x, t = few_images(2)
    assert_rejects(model, x, t, wrong_size=48, bad_label=0)
    with pytest.raises(ValueError, match="in_shape"):
        ExtremeNet((3, 30, 30), 3)
    with pytest.raises(ValueError, match="top_k"):
        ExtremeNet((3, 32, 32), 3, top_k=0)
    with pytest.raises(ValueError, match=r"targets\[1\]\['masks'\] must have shape"):
        model(x, [t[0], {**t[1], "masks": torch.zeros(len(t[1]["boxes"]), 16, 16)}])
    with pytest.raises(ValueError, match="center_thresh"):
        group_extreme_points(*_heatmaps(), center_thresh=1.5)
    with pytest.raises(ValueError, match="must agree"):
        group_extreme_points(torch.zeros(1, 4, 2, 8, 8), torch.zeros(1, 2, 8, 4), torch.zeros(1, 4, 2, 8, 8))
    with pytest.raises(ValueError, match="one mask per box"):
        extreme_points(torch.zeros(2, 4), torch.zeros(3, 5, 5))
    with pytest.raises(ValueError, match="boxes"):
        extreme_points(torch.zeros(2, 5))


def test_cli_trains_extremenet_on_shapes_and_detects(tmp_path, monkeypatch):
    import functools
    import json

    from PIL import Image

    import deepnotes.data as data
    from deepnotes.cli import main

    real = data.resolve_dataset
    tiny = dict(n_train=8, n_val=2, n_test=2, image_size=32, max_objects=2, min_size=8, max_size=16)
    monkeypatch.setattr(data, "resolve_dataset", lambda n: functools.partial(shapes, **tiny) if n == "shapes" else real(n))
    run = tmp_path / "run"
    assert main(["train", "--task", "detect", "--model", "extremenet", "--data", "shapes", "--epochs", "1",
                 "--batch-size", "4", "--model-kw", "width=8", "--out", str(run), "--no-progress"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert 0 <= summary["test_map_50"] <= 1 or summary["test_map_50"] == -1
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_loss_extreme", "train_loss_center", "train_loss_offset"} <= set(header)
    image, _ = shapes(**tiny).test[0]
    path = tmp_path / "a.png"
    Image.fromarray((image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()).save(path)
    assert main(["detect", str(run), str(path), "--out", str(tmp_path / "det"), "--score-thresh", "0"]) == 0
    assert (tmp_path / "det" / "a.png").exists()
