"""The synthetic ``shapes`` detection set: determinism, target consistency, sequences, bad input."""

import pytest
import torch
from torchvision.ops import masks_to_boxes

from deepnotes.core.registry import DATASETS
from deepnotes.data import ShapesDataset, ShapesSequence, render_shapes, shapes


def _small(**kw):
    return shapes(seed=kw.pop("seed", 0), n_train=40, n_val=8, n_test=8, **kw)


def test_registered_as_a_detection_dataset():
    assert DATASETS.meta("shapes")["task"] == "detect"
    s = DATASETS.create("shapes", seed=0, n_train=3, n_val=2, n_test=2)
    assert s.task == "detect" and s.num_classes == 3 and s.in_shape == (3, 128, 128)
    assert (len(s.train), len(s.val), len(s.test)) == (3, 2, 2)
    default = shapes()
    assert (len(default.train), len(default.val), len(default.test)) == (2000, 250, 250)


def test_deterministic_from_seed_and_independent_of_access_order():
    a, b = _small(seed=3), _small(seed=3)
    x5, y5 = a.train[5]
    for i in range(5):
        b.train[i]
    x5b, y5b = b.train[5]
    assert torch.equal(x5, x5b) and torch.equal(y5["boxes"], y5b["boxes"]) and torch.equal(y5["masks"], y5b["masks"])
    assert not torch.equal(_small(seed=4).train[5][0], x5)
    assert not torch.equal(a.val[0][0], a.train[0][0]), "splits must not share images"


def test_targets_match_the_pixels():
    s = _small()
    for i in range(40):
        img, t = s.train[i]
        assert img.shape == (3, 128, 128) and img.dtype == torch.float32
        assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
        n = len(t["labels"])
        assert 1 <= n <= 6
        assert t["boxes"].dtype == torch.float32 and t["boxes"].shape == (n, 4)
        assert t["labels"].dtype == torch.int64 and bool(((t["labels"] >= 1) & (t["labels"] <= 3)).all())
        m = t["masks"]
        assert m.dtype == torch.uint8 and m.shape == (n, 128, 128)
        assert int(m.sum(0).max()) <= 1, "instance masks of visible pixels are disjoint"
        assert bool((m.sum((1, 2)) >= 16).all())
        # torchvision's masks_to_boxes gives the last pixel index; ours is the pixel edge (+1)
        ref = masks_to_boxes(m.bool()) + torch.tensor([0.0, 0.0, 1.0, 1.0])
        torch.testing.assert_close(t["boxes"], ref, rtol=0, atol=0)
        semantic = (m.long() * t["labels"].view(-1, 1, 1)).sum(0)
        assert torch.equal(t["semantic"], semantic)
        assert torch.equal(t["area"], m.sum((1, 2)).float())
        assert torch.equal(t["iscrowd"], torch.zeros(n, dtype=torch.int64)) and t["image_id"] == i


def test_counts_classes_sizes_and_occlusion_over_many_images():
    s = _small()
    counts, labels, widths, fractions = [], [], [], []
    for i in range(40):
        _, t = s.train[i]
        counts.append(len(t["labels"]))
        labels += t["labels"].tolist()
        top = t["boxes"][-1]  # the topmost object is never occluded: its box is its drawn size
        widths += [float(top[2] - top[0]), float(top[3] - top[1])]
        box_area = (t["boxes"][:, 2] - t["boxes"][:, 0]) * (t["boxes"][:, 3] - t["boxes"][:, 1])
        fractions += (t["area"] / box_area).tolist()
    assert min(counts) == 1 and max(counts) == 6
    assert set(labels) == {1, 2, 3}
    assert 6 <= min(widths) and max(widths) <= 65
    assert min(fractions) < 0.45, "some objects are occluded or are triangles; not every box is full"


def test_small_images_and_transform():
    ds = ShapesDataset(4, image_size=32, max_size=16, transform=lambda x, t: (x.flip(-1), t))
    plain = ShapesDataset(4, image_size=32, max_size=16)
    assert torch.equal(ds[1][0], plain[1][0].flip(-1)) and ds[-1][0].shape == (3, 32, 32)
    img, t = render_shapes(7, image_size=48, max_size=20)
    assert img.shape == (3, 48, 48) and len(t["labels"]) >= 1


def test_sequence_tracks_move_smoothly_and_bounce():
    seq = ShapesSequence(num_frames=60, seed=2, num_objects=4, max_speed=3.0)
    assert len(seq) == 60
    p = torch.stack([seq.positions(t) for t in range(60)])
    span = 128 - seq._obj["wh"]
    assert bool((p >= 0).all()) and bool((p <= span + 1e-9).all())
    assert float((p[1:] - p[:-1]).abs().max()) <= 3.0 + 1e-9
    seen, vis = set(), []
    for t in range(60):
        frame, tgt = seq[t]
        assert frame.shape == (3, 128, 128)
        assert tgt["track_ids"].dtype == torch.int64 and len(tgt["track_ids"]) == len(tgt["boxes"])
        seen |= set(tgt["track_ids"].tolist())
        vis += tgt["visibility"].tolist()
        ids = tgt["track_ids"] - 1
        assert torch.equal(tgt["labels"], seq._obj["labels"][ids])
    assert seen == {1, 2, 3, 4}
    assert max(vis) == 1.0 and all(0.3 <= v <= 1.0 for v in vis)
    again = ShapesSequence(num_frames=60, seed=2, num_objects=4, max_speed=3.0)
    assert torch.equal(again[17][0], seq[17][0])


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        ({"split": "dev"}, ValueError, "split"),
        ({"num_images": -1}, ValueError, "num_images"),
        ({"image_size": 8}, ValueError, "image_size"),
        ({"image_size": 32, "max_size": 64.0}, ValueError, "max_size"),
        ({"min_size": 20.0, "max_size": 10.0}, ValueError, "max_size"),
        ({"max_objects": 0}, ValueError, "max_objects"),
        ({"min_visible": 1.5}, ValueError, "min_visible"),
        ({"transform": 3}, TypeError, "transform"),
    ],
)
def test_bad_arguments(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        ShapesDataset(**kwargs)


def test_sequence_objects_as_large_as_the_image_stay_put():
    seq = ShapesSequence(num_frames=3, image_size=32, min_size=32.0, max_size=32.0, num_objects=2)
    assert torch.equal(seq.positions(2), torch.zeros(2, 2, dtype=torch.float64))
    assert torch.isfinite(seq[2][0]).all()


def test_bad_index_and_sequence_arguments():
    with pytest.raises(IndexError):
        ShapesDataset(3)[3]
    with pytest.raises(ValueError, match="num_frames"):
        ShapesSequence(num_frames=0)
    with pytest.raises(ValueError, match="max_speed"):
        ShapesSequence(max_speed=-1.0)
    with pytest.raises(ValueError, match="n_train"):
        shapes(n_train=0)
