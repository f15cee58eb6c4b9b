"""The detect task: collate, training on summed loss terms, mAP evaluation (equal to the toolkit's
mean_average_precision on the same predictions), exact resume, and the CLI end to end —
``deepnotes train --task detect`` and ``deepnotes detect`` — with its errors."""

import csv
import functools
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from deepnotes.cli import main
from deepnotes.data import shapes
from deepnotes.detection import mean_average_precision
from deepnotes.detection.models import YOLOv1
from deepnotes.train import Trainer
from deepnotes.train.tasks import get_task
from tests._torchrun import run_two_ranks

TINY = dict(n_train=12, n_val=4, n_test=4, image_size=32, max_objects=2, min_size=8, max_size=16)


def _tiny(seed=0):
    return shapes(seed=seed, **TINY)


def _trainer(out, epochs, splits=None):
    splits = splits or _tiny()
    torch.manual_seed(0)
    model = YOLOv1((3, 32, 32), 3, width=8)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    return Trainer(model, opt, splits.train, val_data=splits.val, task="detect", epochs=epochs,
                   batch_size=4, seed=1, out_dir=out)


def _flat(module):
    return torch.cat([p.detach().flatten() for p in module.state_dict().values() if p.is_floating_point()])


def _timeless(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_collate_keeps_images_without_objects_and_refuses_mixed_sizes():
    task = get_task("detect")
    img = torch.rand(3, 16, 16)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 16, 16)}
    one = {"boxes": torch.tensor([[1.0, 2.0, 5.0, 9.0]]), "labels": torch.tensor([2])}
    images, targets = task.collate([(img, empty), (img, one)])
    assert images.shape == (2, 3, 16, 16) and task.batch_size((images, targets)) == 2
    assert targets[0]["boxes"].shape == (0, 4)
    # instance masks are kept when given (uint8, for mask heads), absent otherwise
    assert set(targets[0]) == {"boxes", "labels", "masks"} and targets[0]["masks"].dtype == torch.uint8
    assert set(targets[1]) == {"boxes", "labels"}
    assert torch.equal(targets[1]["labels"], torch.tensor([2]))
    with pytest.raises(ValueError, match="one size"):
        task.collate([(img, one), (torch.rand(3, 8, 8), one)])
    with pytest.raises(ValueError, match="'boxes' and 'labels'"):
        task.collate([(img, {"boxes": torch.zeros(0, 4)})])
    with pytest.raises(ValueError, match="empty"):
        task.collate([])


def test_detection_run_resumes_exactly_and_writes_map_metrics(tmp_path):
    straight = _trainer(tmp_path / "a", 3)
    history = straight.fit()
    _trainer(tmp_path / "b", 1).fit()
    resumed = _trainer(tmp_path / "b", 3)
    resumed.fit(resume=True)
    assert torch.equal(_flat(straight.module), _flat(resumed.module))
    assert _timeless(resumed.history) == _timeless(history)
    with open(tmp_path / "a" / "metrics.csv") as f:
        header = next(csv.reader(f))
    terms = ["train_loss_class", "train_loss_noobj", "train_loss_obj", "train_loss_wh", "train_loss_xy"]
    assert header[:8] == ["epoch", "step", "train_loss", *terms]
    assert {"val_map", "val_map_50", "val_map_75", "val_mar_100"} <= set(header)
    # the summed loss is the sum of the logged terms
    last = history[-1]
    assert last["train_loss"] == pytest.approx(sum(last[t] for t in terms), rel=1e-5)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["best_epoch_by_val_map_50"] == max(history, key=lambda h: h["val_map_50"])["epoch"]


def test_evaluate_equals_the_toolkit_map_of_the_same_predictions(tmp_path):
    splits = _tiny()
    trainer = _trainer(None, 1, splits)
    trainer.fit()
    got = trainer.evaluate(splits.test, batch_size=3)  # batches of unequal size
    model = trainer.module.eval()
    images, targets = zip(*(splits.test[i] for i in range(len(splits.test))))
    with torch.no_grad():
        preds = model(torch.stack(images))
    want = mean_average_precision(preds, [{k: t[k] for k in ("boxes", "labels")} for t in targets])
    assert set(got) == set(get_task("detect").metrics)
    for k, v in got.items():
        assert v == pytest.approx(float(want[k]), abs=1e-6), k
    predicted = trainer.predict(splits.test, batch_size=3)  # one dict per image, in order
    assert len(predicted) == len(preds)
    for p, q in zip(predicted, preds):
        assert torch.allclose(p["boxes"], q["boxes"], atol=1e-4) and torch.equal(p["labels"], q["labels"])


@pytest.fixture
def tiny_shapes(monkeypatch):
    """``--data shapes`` resolves to a tiny shapes set (same factory, small sizes)."""
    import deepnotes.data as data

    real = data.resolve_dataset
    monkeypatch.setattr(data, "resolve_dataset",
                        lambda name: functools.partial(shapes, **TINY) if name == "shapes" else real(name))


def _train_cli(out, *extra):
    return main(["train", "--task", "detect", "--model", "yolov1", "--data", "shapes", "--epochs", "1",
                 "--batch-size", "4", "--model-kw", "width=8", "--out", str(out), "--no-progress", *extra])


def test_cli_train_and_detect_end_to_end(tmp_path, tiny_shapes):
    from PIL import Image

    run = tmp_path / "run"
    assert _train_cli(run) == 0
    summary = json.loads((run / "summary.json").read_text())
    for k in ("test_map", "test_map_50", "test_map_75", "test_mar_100"):
        assert 0 <= summary[k] <= 1 or summary[k] == -1
    image, _ = _tiny().test[0]
    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    pixels = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    Image.fromarray(pixels).save(a)
    Image.fromarray(pixels).resize((48, 40)).convert("L").save(b)  # another size, grey: converted
    out = tmp_path / "det"
    assert main(["detect", str(run), str(a), str(b), "--out", str(out), "--score-thresh", "0"]) == 0
    drawn = Image.open(out / "a.png")
    assert drawn.size == (32, 32) and Image.open(out / "b.png").size == (48, 40)
    assert (np.asarray(drawn.convert("RGB")) != pixels).any()  # boxes drawn
    results = json.loads((out / "detections.json").read_text())
    assert results and {r["image_id"] for r in results} == {1, 2}
    assert set(results[0]) == {"image_id", "category_id", "score", "bbox"}
    assert all(1 <= r["category_id"] <= 3 and len(r["bbox"]) == 4 for r in results)
    info = json.loads((out / "images.json").read_text())
    assert [i["width"] for i in info["images"]] == [32, 48]
    assert [c["name"] for c in info["categories"]] == ["rectangle", "ellipse", "triangle"]


def test_cli_detect_errors(tmp_path, tiny_shapes, capsys):
    run = tmp_path / "run"
    assert _train_cli(run) == 0
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["detect", str(run), str(bad)]) == 2
    assert "cannot be read as an image" in capsys.readouterr().err
    assert main(["detect", str(run), str(tmp_path / "missing.png")]) == 2
    assert "missing.png" in capsys.readouterr().err
    cls = tmp_path / "cls"
    cls.mkdir()
    (cls / "config.json").write_text(json.dumps({"task": "classification", "model": "cnn", "data": "digits"}))
    assert main(["detect", str(cls), str(bad)]) == 2
    assert "not a detection run" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "nowhere"), str(bad)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_cli_train_refuses_a_classification_model_for_detect_and_the_reverse(tmp_path, capsys):
    assert main(["train", "--task", "detect", "--model", "cnn", "--data", "shapes", "--out", str(tmp_path / "x")]) == 2
    assert "not a model for task 'detect'" in capsys.readouterr().err
    assert main(["train", "--model", "yolov1", "--data", "digits", "--out", str(tmp_path / "y")]) == 2
    assert "yolov1" in capsys.readouterr().err


DDP_SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path

    import torch

    sys.path.insert(0, sys.argv[2])
    from test_detect_task import _tiny
    from deepnotes.detection.models import YOLOv1
    from deepnotes.train import Trainer
    from deepnotes.train.distributed import cleanup, init_from_env, shard

    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    rank, world, device = init_from_env("gloo")
    splits = _tiny()

    def trainer(distributed):
        torch.manual_seed(0)
        model = YOLOv1((3, 32, 32), 3, width=8, score_thresh=0.0)
        return Trainer(model, torch.optim.Adam(model.parameters(), lr=5e-3), splits.train, task="detect",
                       epochs=10, batch_size=4, seed=0, distributed=distributed)

    ddp = trainer(None)
    ddp.fit()
    # after training, rank 1 holds its own batch-norm running statistics (DDP copies rank 0's only
    # at the next training forward); Trainer.evaluate must use rank 0's on every shard
    single = trainer(False)
    single.module.load_state_dict(ddp.module.state_dict())
    data = splits.train  # 12 images the model has seen: shards of 6
    result = {"ddp": ddp.evaluate(data), "single": single.evaluate(data),
              "shards": [single.evaluate(shard(data, r, world)) for r in range(world)], "world": world}
    if rank == 0:
        torch.save(result, out / "result.pt")
    cleanup()
''')


def test_ddp_gathers_every_rank_predictions_before_measuring_map(tmp_path):
    res = run_two_ranks(DDP_SCRIPT, tmp_path, str(Path(__file__).parent), timeout=400)
    assert res["world"] == 2
    assert res["ddp"] == res["single"]  # the mAP of all 12 images, not of one rank's shard
    assert res["single"]["map_50"] > 0
    mean_of_shards = sum(s["map"] for s in res["shards"]) / 2
    assert mean_of_shards != pytest.approx(res["single"]["map"], abs=1e-9)  # averaging per rank would differ
