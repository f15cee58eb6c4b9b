"""Detection data in the COCO format: an annotations JSON plus a folder of images.

``coco:PATH`` (``deepnotes train --data coco:PATH``) names either a folder holding
``annotations.json`` and ``images/``, or the JSON file itself (images are then looked up in an
``images/`` folder beside it, or beside the JSON). Targets follow torchvision's detection models:

- ``boxes`` Tensor[N, 4] float32 ``xyxy`` (COCO's ``[x, y, w, h]`` → ``[x, y, x + w, y + h]``);
- ``labels`` Tensor[N] int64 in ``1..C``: category ids mapped, in increasing id order, to
  contiguous labels (``dataset.categories`` lists the names; ``label_to_category`` the ids);
- ``area`` Tensor[N] float32 (the annotation's ``area``, else ``w · h``), ``iscrowd`` Tensor[N]
  int64 and ``image_id`` (the COCO image id).

The whole file is validated when the dataset is built, so a malformed file fails at once with a
``ValueError`` naming the file and the first offending entry — never mid-epoch.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from deepnotes.data.folder import read_image
from deepnotes.data.splits import DataSplits, split_dataset


def _resolve(path: str | os.PathLike, image_root) -> tuple[Path, Path]:
    path = Path(path)
    if path.is_dir():
        path, default_root = path / "annotations.json", path / "images"
    else:
        default_root = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    if not path.is_file():
        raise ValueError(f"COCO annotations file {str(path)!r} does not exist")
    return path, Path(image_root) if image_root is not None else default_root


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"COCO annotations file {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"COCO annotations file {str(path)!r} must hold a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"COCO annotations file {str(path)!r} needs a list under {key!r}")
    return data


def _require(path: Path, where: str, entry, fields: dict) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"{str(path)!r}: {where} must be an object, got {type(entry).__name__}")
    for name, types in fields.items():
        if not isinstance(entry.get(name), types) or isinstance(entry.get(name), bool):
            raise ValueError(f"{str(path)!r}: {where} needs {name!r} of type {types}, got {entry.get(name)!r}")


def _check_bbox(path: Path, where: str, bbox) -> list[float]:
    ok = isinstance(bbox, list) and len(bbox) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox
    )
    if not ok or bbox[2] < 0 or bbox[3] < 0:
        raise ValueError(f"{str(path)!r}: {where} needs 'bbox' = [x, y, w, h], finite with w, h >= 0; got {bbox!r}")
    return [float(v) for v in bbox]


class CocoDetection(Dataset):
    """A COCO-format detection set read lazily; items are ``(image Tensor[3, H, W], target)``.

    Parameters
    ----------
    path : a folder with ``annotations.json`` and ``images/``, or the JSON file
    image_root : folder the ``file_name`` entries are relative to (default: see module docstring)
    transform : callable(image, target) -> (image, target), optional
    masks : also return ``masks`` Tensor[N, H, W] uint8 decoded from each annotation's
        ``segmentation``, which must then be an uncompressed RLE (``{"counts": [...], "size": [H, W]}``,
        what :func:`deepnotes.data.export.export_coco` writes)
    """

    def __init__(self, path: str | os.PathLike, image_root=None, transform=None, masks: bool = False):
        self.file, self.image_root = _resolve(path, image_root)
        data = _load_json(self.file)
        f = self.file
        for i, c in enumerate(data["categories"]):
            _require(f, f"categories[{i}]", c, {"id": int, "name": str})
        ids = sorted({c["id"] for c in data["categories"]})
        if len(ids) != len(data["categories"]):
            raise ValueError(f"{str(f)!r}: category ids must be unique")
        names = {c["id"]: c["name"] for c in data["categories"]}
        self.categories = [names[i] for i in ids]
        self.label_to_category = {label: cid for label, cid in enumerate(ids, start=1)}
        label_of = {cid: label for label, cid in self.label_to_category.items()}
        self.images = []
        for i, im in enumerate(data["images"]):
            _require(f, f"images[{i}]", im, {"id": int, "file_name": str})
            self.images.append(im)
        index_of = {im["id"]: i for i, im in enumerate(self.images)}
        if len(index_of) != len(self.images):
            raise ValueError(f"{str(f)!r}: image ids must be unique")
        missing = [im["file_name"] for im in self.images if not (self.image_root / im["file_name"]).is_file()]
        if missing:
            raise ValueError(
                f"{str(f)!r} references {len(missing)} image(s) missing under {str(self.image_root)!r}, "
                f"e.g. {missing[0]!r}"
            )
        self.masks = bool(masks)
        self._segmentations: list[list] = [[] for _ in self.images]
        per_image: list[list] = [[] for _ in self.images]
        for i, a in enumerate(data["annotations"]):
            where = f"annotations[{i}]"
            _require(f, where, a, {"image_id": int, "category_id": int})
            if a["image_id"] not in index_of:
                raise ValueError(f"{str(f)!r}: {where} refers to unknown image_id {a['image_id']}")
            if a["category_id"] not in label_of:
                raise ValueError(f"{str(f)!r}: {where} refers to unknown category_id {a['category_id']}")
            x, y, w, h = _check_bbox(f, where, a.get("bbox"))
            area = a.get("area", w * h)
            if not isinstance(area, (int, float)) or not math.isfinite(area):
                raise ValueError(f"{str(f)!r}: {where} has a non-numeric or non-finite 'area' {area!r}")
            if self.masks:
                seg = a.get("segmentation")
                ok = isinstance(seg, dict) and isinstance(seg.get("counts"), list) and isinstance(seg.get("size"), list)
                if not ok:
                    raise ValueError(f"{str(f)!r}: {where} needs an uncompressed RLE 'segmentation' "
                                     "({'counts': [...], 'size': [H, W]}) when masks=True")
                self._segmentations[index_of[a["image_id"]]].append(seg)
            per_image[index_of[a["image_id"]]].append(
                (x, y, x + w, y + h, label_of[a["category_id"]], float(area), int(bool(a.get("iscrowd", 0))))
            )
        self._targets = [self._as_target(rows, im["id"]) for rows, im in zip(per_image, self.images)]
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.transform = transform
        self.num_classes = len(self.categories)

    @staticmethod
    def _as_target(rows, image_id: int) -> dict:
        t = torch.tensor([r[:4] for r in rows], dtype=torch.float32).view(-1, 4)
        return {
            "boxes": t,
            "labels": torch.tensor([r[4] for r in rows], dtype=torch.int64),
            "area": torch.tensor([r[5] for r in rows], dtype=torch.float32),
            "iscrowd": torch.tensor([r[6] for r in rows], dtype=torch.int64),
            "image_id": image_id,
        }

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = read_image(self.image_root / self.images[index]["file_name"])[:3]
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1).contiguous()
        target = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in self._targets[index].items()}
        if self.masks:
            from deepnotes.data.export import rle_to_mask

            h, w = image.shape[-2:]
            segs = [rle_to_mask(s) for s in self._segmentations[index]]
            target["masks"] = torch.stack(segs) if segs else torch.zeros(0, h, w, dtype=torch.uint8)
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target


def coco_splits(path: str | os.PathLike, seed: int = 0) -> DataSplits:
    """A COCO-format set as seeded 70 / 15 / 15 train / val / test splits (``task="detect"``)."""
    ds = CocoDetection(path)
    if len(ds) == 0:
        raise ValueError(f"COCO annotations file {str(ds.file)!r} lists no images")
    train, val, test = split_dataset(ds, seed=seed)
    first = ds[0][0]
    return DataSplits(train, val, test, in_shape=tuple(first.shape), num_classes=ds.num_classes, task="detect")
