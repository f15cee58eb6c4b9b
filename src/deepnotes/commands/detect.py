"""``deepnotes detect``: run a trained detection run on image files and draw its boxes."""

from __future__ import annotations

import json
from pathlib import Path

from deepnotes.commands._common import console


def register(sub) -> None:
    from deepnotes.commands._common import add_threads_option

    p = sub.add_parser(
        "detect",
        help="draw a trained detector's boxes on images (and write them as COCO results JSON)",
        description="Run the last checkpoint of a detection run ('deepnotes train --task detect') on image files. "
        "Each image is converted to RGB and resized to the run's input size; boxes are mapped back to the "
        "original pixels. Writes DIR/<name>.png with boxes, labels and scores drawn (and, for a mask model, "
        "its masks thresholded at 0.5), and DIR/detections.json in COCO result format (image_id = position of "
        "the image on the command line, from 1; masks as uncompressed RLE 'segmentation'; the ids, file names "
        "and sizes are in DIR/images.json).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by 'deepnotes train --task detect --out'")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, …)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN_DIR/detect)")
    add_threads_option(p)
    p.add_argument("--score-thresh", type=float, default=0.3, help="draw and write boxes scoring above this (default 0.3)")
    p.set_defaults(func=run)


def load_detection_run(run_dir):
    """The trained detector (eval mode, CPU), its splits and config; weights loaded safely.

    ``ValueError`` naming ``run_dir`` when it is not a run directory, holds no checkpoint, or is
    not a detection run; a corrupt checkpoint raises :class:`~deepnotes.core.io.CheckpointError`.
    """
    import torch

    from deepnotes.commands.train import parse_model_kw
    from deepnotes.data import resolve_dataset
    from deepnotes.plugins import load_all
    from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint
    from deepnotes.train.tasks import get_task

    load_all()
    root = Path(run_dir)
    if not root.is_dir():
        raise ValueError(f"RUN_DIR {str(root)!r} is not a directory")
    try:
        config = json.loads((root / "config.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"RUN_DIR {str(root)!r} has no config.json: not a 'deepnotes train' run directory") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"RUN_DIR {str(root)!r}: config.json is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or not {"model", "data"} <= set(config):
        raise ValueError(f"RUN_DIR {str(root)!r}: config.json lacks the 'model' and 'data' of a training run")
    if config.get("task") != "detect":
        raise ValueError(f"RUN_DIR {str(root)!r} is a {config.get('task') or 'classification'} run, not a detection run "
                         "(train one with 'deepnotes train --task detect')")
    ckpts = list_checkpoints(root / "checkpoints")
    if not ckpts:
        raise ValueError(f"RUN_DIR {str(root)!r} holds no checkpoint (checkpoints/epoch_NNNN.pt)")
    splits = resolve_dataset(config["data"])(seed=int(config.get("seed", 0)))
    model = get_task("detect").build_model(config["model"], splits, **parse_model_kw(config.get("model_kw") or []))
    state = load_checkpoint(ckpts[-1])
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise ValueError(f"checkpoint {str(ckpts[-1])!r} does not fit model {config['model']!r}: {exc}") from None
    return model.eval().to(torch.device("cpu")), splits, config


def read_image(path: str, in_shape):
    """``(tensor (1, C, H, W) in [0, 1] resized to in_shape, (height, width) of the file)``."""
    import torch
    import torch.nn.functional as F
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB" if in_shape[0] == 3 else "L")
            size = (im.height, im.width)
            x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    except (FileNotFoundError, IsADirectoryError, UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"IMAGE {path!r} cannot be read as an image ({type(exc).__name__})") from None
    x = x.view(size[0], size[1], -1).permute(2, 0, 1).float().div(255).unsqueeze(0)
    x = F.interpolate(x, size=tuple(in_shape[1:]), mode="bilinear", align_corners=False, antialias=True)
    return x, size


def run(args) -> int:
    from deepnotes.commands._common import apply_threads

    apply_threads(args)  # small tensor work collapses when the thread pool outnumbers free cores
    import torch
    from PIL import Image
    from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

    from deepnotes.core.checks import check_float
    from deepnotes.core.io import atomic_write_json
    from deepnotes.data.export import mask_to_rle

    thresh = check_float("--score-thresh", args.score_thresh, min=0.0, max=1.0)
    model, splits, _ = load_detection_run(args.run_dir)
    in_shape = tuple(splits.in_shape)
    loaded = [read_image(p, in_shape) for p in args.images]  # every file checked before any output
    names = list(getattr(splits.train, "classes", ())) or [str(c) for c in range(1, splits.num_classes + 1)]
    out = Path(args.out) if args.out else Path(args.run_dir) / "detect"
    out.mkdir(parents=True, exist_ok=True)
    results, images, con = [], [], console()
    for image_id, (path, (x, (h, w))) in enumerate(zip(args.images, loaded), start=1):
        with torch.no_grad():
            det = model(x)[0]
        keep = det["scores"] > thresh
        scale = torch.tensor([w / in_shape[2], h / in_shape[1]] * 2)
        boxes, scores, labels = det["boxes"][keep] * scale, det["scores"][keep], det["labels"][keep]
        with Image.open(path) as im:
            pixels = torch.frombuffer(bytearray(im.convert("RGB").tobytes()), dtype=torch.uint8).view(h, w, 3)
        text = [f"{names[int(c) - 1]} {float(s):.2f}" for c, s in zip(labels, scores)]
        drawn = pixels.permute(2, 0, 1).contiguous()
        masks = _masks_at(det, keep, (h, w))
        if masks is not None and len(masks):
            from matplotlib import colormaps
            from matplotlib.colors import to_hex

            tab10 = colormaps["tab10"]  # one colour per instance
            colors = [to_hex(tab10(j % tab10.N)) for j in range(len(masks))]
            drawn = draw_segmentation_masks(drawn, masks, alpha=0.5, colors=colors)
        drawn = draw_bounding_boxes(drawn, boxes, text, colors="red", width=2)
        target = out / f"{Path(path).stem}.png"
        Image.fromarray(drawn.permute(1, 2, 0).numpy()).save(target)
        images.append({"id": image_id, "file_name": str(path), "height": h, "width": w})
        mask_scores = det["mask_scores"][keep].tolist() if "mask_scores" in det else None
        for j, (b, s, c) in enumerate(zip(boxes.tolist(), scores.tolist(), labels.tolist())):
            result = {"image_id": image_id, "category_id": int(c), "score": round(s, 5),
                      "bbox": [round(b[0], 2), round(b[1], 2), round(b[2] - b[0], 2), round(b[3] - b[1], 2)]}
            if masks is not None:
                result["segmentation"] = mask_to_rle(masks[j])
            if mask_scores is not None:
                result["mask_score"] = round(mask_scores[j], 5)
            results.append(result)
        con.print(f"{path}: {int(keep.sum())} {'masks' if masks is not None else 'boxes'} → {target}")
    atomic_write_json(out / "detections.json", results)
    atomic_write_json(out / "images.json", {"images": images, "categories": [
        {"id": i, "name": n} for i, n in enumerate(names, start=1)]})
    con.print(f"wrote {out / 'detections.json'}")
    return 0


def _masks_at(det: dict, keep, size: tuple[int, int]):
    """Binary masks ``Tensor[D, h, w]`` (bool) of the kept detections at the file's size, or ``None``.

    A mask model returns ``masks`` ``Tensor[D, 1, H, W]`` probabilities at the input size; they are
    resized bilinearly to the original pixels and thresholded at 0.5, as torchvision does.
    """
    import torch
    import torch.nn.functional as F

    if "masks" not in det:
        return None
    probs = det["masks"][keep]
    if not len(probs):
        return torch.zeros((0, *size), dtype=torch.bool)
    return F.interpolate(probs.float(), size=size, mode="bilinear", align_corners=False)[:, 0] > 0.5
