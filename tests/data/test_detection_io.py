"""COCO-JSON and Pascal-VOC loaders: contents against pycocotools / hand-written files, bad files."""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from deepnotes.data import CocoDetection, VOCDetection, resolve_dataset


def _write_images(folder, names, h=20, w=30):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in names:
        mpimg.imsave(folder / n, rng.random((h, w, 3)))


def _coco(tmp_path, mutate=None):
    data = {
        "images": [{"id": 7, "file_name": "a.png", "width": 30, "height": 20},
                   {"id": 3, "file_name": "b.png", "width": 30, "height": 20}],
        "categories": [{"id": 5, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 5, "bbox": [1.5, 2.0, 10.0, 4.0], "area": 30.0, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 2, "bbox": [0, 0, 3, 3], "iscrowd": 1},
            {"id": 3, "image_id": 3, "category_id": 5, "bbox": [4, 5, 6, 7]},
        ],
    }
    if mutate:
        mutate(data)
    _write_images(tmp_path / "images", ["a.png", "b.png"])
    (tmp_path / "annotations.json").write_text(json.dumps(data))
    return tmp_path


def test_coco_targets_match_pycocotools(tmp_path):
    root = _coco(tmp_path)
    ds = CocoDetection(root)
    assert len(ds) == 2 and ds.categories == ["dog", "cat"] and ds.label_to_category == {1: 2, 2: 5}
    coco = COCO(str(root / "annotations.json"))
    for i, im_id in enumerate([7, 3]):
        image, t = ds[i]
        assert image.shape == (3, 20, 30) and t["image_id"] == im_id
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[im_id]))
        ref = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                            for a in anns], dtype=torch.float32)
        assert torch.equal(t["boxes"], ref)
        assert [ds.label_to_category[int(v)] for v in t["labels"]] == [a["category_id"] for a in anns]
        assert t["area"].tolist() == [float(a.get("area", a["bbox"][2] * a["bbox"][3])) for a in anns]
        assert t["iscrowd"].tolist() == [a.get("iscrowd", 0) for a in anns]
    splits = resolve_dataset(f"coco:{root}")(seed=0)
    assert splits.task == "detect" and splits.num_classes == 2
    assert len(CocoDetection(root / "annotations.json")) == 2


def _missing_area(data):
    for a in data["annotations"]:
        a.pop("area", None)


def test_coco_area_defaults_to_box_area(tmp_path):
    ds = CocoDetection(_coco(tmp_path, _missing_area))
    assert ds[0][1]["area"].tolist() == [40.0, 9.0]


@pytest.mark.parametrize(
    ("mutate", "word"),
    [
        (lambda d: d.pop("annotations"), "annotations"),
        (lambda d: d["annotations"][0].update(image_id=99), "unknown image_id"),
        (lambda d: d["annotations"][0].update(category_id=99), "unknown category_id"),
        (lambda d: d["annotations"][1].update(bbox=[0, 0, -1, 3]), "bbox"),
        (lambda d: d["annotations"][1].update(bbox=[0, 0, 3]), "bbox"),
        (lambda d: d["annotations"][1].update(bbox=[0, "x", 3, 3]), "bbox"),
        (lambda d: d["images"][0].pop("file_name"), "file_name"),
        (lambda d: d["images"][1].update(file_name="missing.png"), "missing.png"),
        (lambda d: d["images"].append(dict(d["images"][0])), "unique"),
        (lambda d: d["categories"][0].update(id="5"), "categories"),
    ],
)
def test_coco_malformed_files(tmp_path, mutate, word):
    root = _coco(tmp_path, mutate)
    with pytest.raises(ValueError, match=word) as err:
        CocoDetection(root)
    assert "annotations.json" in str(err.value)


def test_coco_not_json_or_missing(tmp_path):
    _coco(tmp_path)
    (tmp_path / "annotations.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        CocoDetection(tmp_path)
    (tmp_path / "annotations.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        CocoDetection(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        CocoDetection(tmp_path / "nope.json")


VOC_XML = """<annotation><filename>{file}</filename>
{objects}</annotation>"""
VOC_OBJ = ("<object><name>{name}</name><difficult>{d}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
           "<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")


def _voc(tmp_path, objects=None, file="a.png", raw=None):
    ann = tmp_path / "Annotations"
    ann.mkdir(parents=True, exist_ok=True)
    _write_images(tmp_path / "JPEGImages", ["a.png"])
    objects = objects if objects is not None else [
        {"name": "dog", "d": 0, "x1": 1, "y1": 2, "x2": 10, "y2": 12},
        {"name": "cat", "d": 1, "x1": 5, "y1": 5, "x2": 5, "y2": 9},
    ]
    text = raw or VOC_XML.format(file=file, objects="".join(VOC_OBJ.format(**o) for o in objects))
    (ann / "000001.xml").write_text(text)
    return tmp_path


def test_voc_boxes_labels_difficult(tmp_path):
    ds = VOCDetection(_voc(tmp_path))
    assert ds.classes[:3] == ("aeroplane", "bicycle", "bird") and len(ds.classes) == 20
    image, t = ds[0]
    assert image.shape == (3, 20, 30)
    # 1-based inclusive corners → pixel edges
    assert torch.equal(t["boxes"], torch.tensor([[0.0, 1.0, 10.0, 12.0], [4.0, 4.0, 5.0, 9.0]]))
    assert t["labels"].tolist() == [ds.classes.index("dog") + 1, ds.classes.index("cat") + 1]
    assert t["difficult"].tolist() == [0, 1]
    own = VOCDetection(_voc(tmp_path / "own", [{"name": "zebra", "d": 0, "x1": 1, "y1": 1, "x2": 3, "y2": 3}]))
    assert own.classes == ("zebra",)
    assert resolve_dataset(f"voc:{tmp_path}")(seed=0).num_classes == 20


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"raw": "<annotation><filename>a.png</filename><object>"}, "not valid XML"),
        ({"raw": "<annotation><object><name>dog</name></object></annotation>"}, "filename"),
        ({"raw": "<annotation><filename>a.png</filename><object><name>dog</name></object></annotation>"}, "bndbox"),
        ({"objects": [{"name": "dog", "d": 0, "x1": "a", "y1": 1, "x2": 3, "y2": 3}]}, "xmin"),
        ({"objects": [{"name": "dog", "d": 0, "x1": 5, "y1": 1, "x2": 3, "y2": 3}]}, "xmax >= xmin"),
        ({"file": "gone.png"}, "missing image"),
    ],
)
def test_voc_malformed_files(tmp_path, kwargs, word):
    root = _voc(tmp_path, **kwargs)
    with pytest.raises(ValueError, match=word):
        VOCDetection(root)


def test_voc_bad_root_set_and_classes(tmp_path):
    with pytest.raises(ValueError, match="Annotations"):
        VOCDetection(tmp_path)
    root = _voc(tmp_path)
    with pytest.raises(ValueError, match="image set"):
        VOCDetection(root, image_set="train")
    with pytest.raises(ValueError, match="not in classes"):
        VOCDetection(root, classes=("dog",))
