"""shapes → COCO / VOC files → read back identically; pycocotools reads what we write."""

import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from deepnotes.cli import main
from deepnotes.data import SHAPES_CLASSES, CocoDetection, ShapesDataset, VOCDetection
from deepnotes.data.export import export_coco, export_voc, mask_to_rle, rle_to_mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rle_matches_pycocotools(seed):
    g = torch.Generator().manual_seed(seed)
    m = (torch.rand(7, 9, generator=g) < 0.4).to(torch.uint8)
    m[0, 0] = seed % 2  # both a leading zero-run and a leading one-run
    rle = mask_to_rle(m)
    ref = mask_utils.frPyObjects(rle, *rle["size"])
    assert np.array_equal(mask_utils.decode(ref), m.numpy())
    assert torch.equal(rle_to_mask(rle), m)


def test_coco_round_trip_and_pycocotools(tmp_path):
    ds = ShapesDataset(6, split="test", image_size=64, max_size=30)
    path = export_coco(ds, tmp_path)
    back = CocoDetection(tmp_path, masks=True)
    assert back.categories == list(SHAPES_CLASSES)
    for i in range(6):
        (img, t), (img2, t2) = ds[i], back[i]
        assert torch.equal(t2["boxes"], t["boxes"]) and torch.equal(t2["labels"], t["labels"])
        assert torch.equal(t2["masks"], t["masks"]) and torch.equal(t2["area"], t["area"])
        assert torch.equal(img2, (img * 255).round() / 255)
    coco = COCO(str(path))
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[2]))
    assert np.array_equal(np.stack([coco.annToMask(a) for a in ann]), ds[2][1]["masks"].numpy())
    dets = [dict(a, score=1.0) for a in coco.loadAnns(coco.getAnnIds())]
    ev = COCOeval(coco, coco.loadRes(dets), "bbox")
    ev.evaluate(), ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_voc_round_trip(tmp_path):
    ds = ShapesDataset(5, split="val", image_size=64, max_size=30)
    export_voc(ds, tmp_path)
    back = VOCDetection(tmp_path, classes=SHAPES_CLASSES)
    for i in range(5):
        (img, t), (img2, t2) = ds[i], back[i]
        assert torch.equal(t2["boxes"], t["boxes"]) and torch.equal(t2["labels"], t["labels"])
        assert torch.equal(img2, (img * 255).round() / 255)


def test_cli_export_and_errors(tmp_path, capsys):
    assert main(["data", "export", "shapes", "--format", "coco", "--out", str(tmp_path / "c"), "--limit", "3"]) == 0
    assert len(CocoDetection(tmp_path / "c")) == 3
    assert main(["data", "export", "shapes", "--format", "voc", "--out", str(tmp_path / "v"), "--limit", "2",
                 "--split", "test"]) == 0
    assert len(VOCDetection(tmp_path / "v", classes=SHAPES_CLASSES)) == 2
    assert main(["data", "export", "digits", "--format", "coco", "--out", str(tmp_path / "d")]) != 0
    assert "not a detection dataset" in capsys.readouterr().err


def test_masks_need_uncompressed_rle(tmp_path):
    ds = ShapesDataset(2, image_size=32, max_size=16)
    path = export_coco(ds, tmp_path)
    data = json.loads(path.read_text())
    data["annotations"][0]["segmentation"] = [[0, 0, 5, 0, 5, 5]]  # a polygon
    path.write_text(json.dumps(data))
    assert len(CocoDetection(tmp_path)) == 2  # boxes only: segmentation is not read
    with pytest.raises(ValueError, match="uncompressed RLE"):
        CocoDetection(tmp_path, masks=True)
    with pytest.raises(ValueError, match="H·W"):
        rle_to_mask({"counts": [1, 2], "size": [2, 2]})
