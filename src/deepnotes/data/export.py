"""Write a detection dataset (e.g. ``shapes``) in the COCO or the Pascal VOC layout.

``export_coco(dataset, out)`` writes ``out/images/000000.png …`` and ``out/annotations.json``
(boxes as ``[x, y, w, h]``, instance masks as uncompressed RLE, the format pycocotools reads);
``export_voc(dataset, out)`` writes ``out/JPEGImages/*.png`` (lossless, despite the folder's
name) and ``out/Annotations/*.xml`` (1-based inclusive corners). Reading the result back with
:class:`CocoDetection` / :class:`VOCDetection` gives the same boxes and labels, and images equal
to the originals rounded to 8 bits.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

from deepnotes.core.io import atomic_write_text


def mask_to_rle(mask: torch.Tensor) -> dict:
    """COCO's uncompressed RLE of a binary mask Tensor[H, W]: run lengths in column-major order,
    starting with a run of zeros (possibly empty)."""
    flat = mask.bool().T.reshape(-1).numpy()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return {"counts": runs, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def rle_to_mask(rle: dict) -> torch.Tensor:
    """Inverse of :func:`mask_to_rle` (uncompressed RLE only) → Tensor[H, W] uint8."""
    h, w = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.sum() != h * w:
        raise ValueError(f"RLE counts sum to {counts.sum()}, expected H·W = {h * w}")
    values = np.arange(len(counts)) % 2  # runs alternate 0, 1, 0, …
    flat = np.repeat(values, counts).astype(np.uint8)
    return torch.from_numpy(flat.reshape(w, h).T.copy())


def _save_png(image: torch.Tensor, path: Path) -> None:
    import matplotlib.image as mpimg

    arr = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    mpimg.imsave(path, arr)


def export_coco(dataset, out: str | os.PathLike, categories=None) -> Path:
    """Write ``dataset`` (items ``(image, target)``) as COCO; returns the JSON's path."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    names = categories or getattr(dataset, "classes", None)
    if names is None:
        raise ValueError("categories must be given when the dataset has no 'classes' attribute")
    images, annotations = [], []
    for i in range(len(dataset)):
        image, t = dataset[i]
        name = f"{i:06d}.png"
        _save_png(image, out / "images" / name)
        images.append({"id": i, "file_name": name, "height": int(image.shape[1]), "width": int(image.shape[2])})
        boxes = t["boxes"].tolist()
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            ann = {"id": len(annotations) + 1, "image_id": i, "category_id": int(t["labels"][k]),
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0,
                   "area": float(t["area"][k]) if "area" in t else (x2 - x1) * (y2 - y1)}
            if "masks" in t:
                ann["segmentation"] = mask_to_rle(t["masks"][k])
            annotations.append(ann)
    data = {"images": images, "annotations": annotations,
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)]}
    path = out / "annotations.json"
    atomic_write_text(path, json.dumps(data))
    return path


def export_voc(dataset, out: str | os.PathLike, categories=None) -> Path:
    """Write ``dataset`` in the VOC layout; returns the root folder."""
    out = Path(out)
    (out / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    names = categories or getattr(dataset, "classes", None)
    if names is None:
        raise ValueError("categories must be given when the dataset has no 'classes' attribute")
    for i in range(len(dataset)):
        image, t = dataset[i]
        stem = f"{i:06d}"
        _save_png(image, out / "JPEGImages" / f"{stem}.png")
        root = ET.Element("annotation")
        ET.SubElement(root, "filename").text = f"{stem}.png"
        size = ET.SubElement(root, "size")
        for tag, v in zip(("depth", "height", "width"), image.shape):
            ET.SubElement(size, tag).text = str(int(v))
        for (x1, y1, x2, y2), label in zip(t["boxes"].tolist(), t["labels"].tolist()):
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = names[label - 1]
            ET.SubElement(obj, "difficult").text = "0"
            box = ET.SubElement(obj, "bndbox")
            # pixel edges → VOC's 1-based inclusive corners (integral for shapes' boxes)
            for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), (x1 + 1, y1 + 1, x2, y2)):
                ET.SubElement(box, tag).text = f"{v:g}"
        atomic_write_text(out / "Annotations" / f"{stem}.xml", ET.tostring(root, encoding="unicode"))
    return out
