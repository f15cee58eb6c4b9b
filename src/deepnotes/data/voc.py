"""Detection data in the Pascal VOC layout: ``Annotations/*.xml`` and ``JPEGImages/``.

``voc:PATH`` names the VOC root (the folder holding ``Annotations``; ``JPEGImages`` beside it).
VOC stores 1-based, inclusive pixel corners; targets use pixel-edge ``xyxy`` (as ``shapes`` and
COCO do): ``[xmin - 1, ymin - 1, xmax, ymax]``. Each target has ``boxes`` (float32), ``labels``
(int64, ``1..C``), ``difficult`` (int64 0/1, VOC evaluation ignores those objects) and
``image_id`` (the index). Classes are the 20 VOC classes when every object name is one of them,
otherwise the sorted set of names found (``dataset.classes``; ``labels = index + 1``).

Every XML file is parsed when the dataset is built: a broken file, a missing field, a
non-numeric coordinate, ``xmax < xmin`` or a missing image is a ``ValueError`` naming the file.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import torch
from torch.utils.data import Dataset

from deepnotes.data.folder import read_image
from deepnotes.data.splits import DataSplits, split_dataset

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)


def _text(file: Path, node, tag: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise ValueError(f"VOC annotation {str(file)!r}: missing <{tag}>")
    return child.text.strip()


def _number(file: Path, node, tag: str) -> float:
    raw = _text(file, node, tag)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"VOC annotation {str(file)!r}: <{tag}> must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"VOC annotation {str(file)!r}: <{tag}> must be finite, got {raw!r}")
    return value


def parse_voc_xml(file: str | os.PathLike) -> tuple[str, list[tuple[str, list[float], int]]]:
    """``(image file name, [(class name, [x1, y1, x2, y2] pixel edges, difficult), ...])``."""
    file = Path(file)
    try:
        root = ET.parse(file).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ValueError(f"VOC annotation {str(file)!r} is not valid XML: {exc}") from exc
    filename = _text(file, root, "filename")
    objects = []
    for obj in root.findall("object"):
        name = _text(file, obj, "name")
        box = obj.find("bndbox")
        if box is None:
            raise ValueError(f"VOC annotation {str(file)!r}: an <object> has no <bndbox>")
        xmin, ymin, xmax, ymax = (_number(file, box, t) for t in ("xmin", "ymin", "xmax", "ymax"))
        if xmax < xmin or ymax < ymin:
            raise ValueError(f"VOC annotation {str(file)!r}: <bndbox> needs xmax >= xmin and ymax >= ymin")
        difficult = obj.find("difficult")
        flag = int(difficult.text.strip()) if difficult is not None and difficult.text else 0
        objects.append((name, [xmin - 1.0, ymin - 1.0, xmax, ymax], int(bool(flag))))
    return filename, objects


class VOCDetection(Dataset):
    """A VOC-layout detection set read lazily; items are ``(image Tensor[3, H, W], target)``.

    Parameters
    ----------
    root : the folder holding ``Annotations/`` and ``JPEGImages/``
    image_set : optional name of a list in ``ImageSets/Main/<image_set>.txt`` (ids, one a line)
    classes : class names (labels are their positions + 1); default: see the module docstring
    transform : callable(image, target) -> (image, target), optional
    """

    def __init__(self, root: str | os.PathLike, image_set: str | None = None, classes=None, transform=None):
        self.root = Path(root)
        ann = self.root / "Annotations"
        if not ann.is_dir():
            raise ValueError(f"VOC root {str(self.root)!r} has no Annotations/ folder")
        if image_set is None:
            files = sorted(ann.glob("*.xml"))
        else:
            listing = self.root / "ImageSets" / "Main" / f"{image_set}.txt"
            if not listing.is_file():
                raise ValueError(f"VOC image set {str(listing)!r} does not exist")
            files = [ann / f"{line.split()[0]}.xml" for line in listing.read_text().splitlines() if line.strip()]
        parsed = [(f, *parse_voc_xml(f)) for f in files]
        names = sorted({o[0] for _, _, objs in parsed for o in objs})
        if classes is None:
            classes = VOC_CLASSES if set(names) <= set(VOC_CLASSES) else tuple(names)
        self.classes = tuple(classes)
        unknown = sorted(set(names) - set(self.classes))
        if unknown:
            raise ValueError(f"VOC objects of classes not in classes: {', '.join(unknown)}")
        label = {c: i + 1 for i, c in enumerate(self.classes)}
        self.image_files, self._targets = [], []
        for index, (f, filename, objs) in enumerate(parsed):
            image = self.root / "JPEGImages" / filename
            if not image.is_file():
                raise ValueError(f"VOC annotation {str(f)!r} refers to a missing image {str(image)!r}")
            self.image_files.append(image)
            self._targets.append({
                "boxes": torch.tensor([o[1] for o in objs], dtype=torch.float32).view(-1, 4),
                "labels": torch.tensor([label[o[0]] for o in objs], dtype=torch.int64),
                "difficult": torch.tensor([o[2] for o in objs], dtype=torch.int64),
                "image_id": index,
            })
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.transform = transform
        self.num_classes = len(self.classes)

    def __len__(self) -> int:
        return len(self.image_files)

    def __getitem__(self, index: int):
        image = read_image(self.image_files[index])[:3]
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1).contiguous()
        target = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in self._targets[index].items()}
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target


def voc_splits(root: str | os.PathLike, seed: int = 0) -> DataSplits:
    """A VOC-layout set as seeded 70 / 15 / 15 train / val / test splits (``task="detect"``)."""
    ds = VOCDetection(root)
    if len(ds) == 0:
        raise ValueError(f"VOC root {str(ds.root)!r} has no annotations")
    train, val, test = split_dataset(ds, seed=seed)
    return DataSplits(train, val, test, in_shape=tuple(ds[0][0].shape), num_classes=ds.num_classes, task="detect")
