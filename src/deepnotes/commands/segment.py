"""``deepnotes segment``: colour-coded masks from a trained segmentation run, over the images."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from deepnotes.commands._common import add_threads_option

    p = sub.add_parser(
        "segment",
        help="segment images with a trained segmentation run; writes colour-coded masks and overlays",
        description="Load the newest checkpoint of RUN_DIR (a 'deepnotes train --task segment' run), "
        "segment each IMAGE (PNG or JPEG; resized to the model's input size and the mask resized back), "
        "and write IMAGE_mask.png (one colour per class) and IMAGE_overlay.png (the mask blended over "
        "the image) to --out.",
    )
    p.add_argument("run_dir", help="run directory written by 'deepnotes train --task segment'")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out", required=True, help="output folder")
    add_threads_option(p)
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of the mask in the overlay (default 0.5)")
    p.set_defaults(func=run)


def palette(num_classes: int):
    """One RGB colour per class in [0, 1]: class 0 black, then PASCAL VOC's bit-interleaved colours."""
    import numpy as np

    out = np.zeros((num_classes, 3))
    for c in range(num_classes):
        v, r, g, b = c, 0, 0, 0
        for bit in range(8):
            r |= ((v >> 0) & 1) << (7 - bit)
            g |= ((v >> 1) & 1) << (7 - bit)
            b |= ((v >> 2) & 1) << (7 - bit)
            v >>= 3
        out[c] = (r / 255, g / 255, b / 255)
    return out


def load_segmenter(run_dir: Path):
    """The model of a segmentation run (newest checkpoint), in eval mode, and its input shape."""
    import json

    from deepnotes.commands.train import parse_model_kw
    from deepnotes.core.io import CheckpointError
    from deepnotes.data import resolve_dataset
    from deepnotes.plugins import load_all
    from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint
    from deepnotes.train.tasks import get_task, load_tasks

    load_all()
    load_tasks()
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run directory: no config.json")
    config = json.loads(config_path.read_text())
    if config.get("task") != "segment":
        raise ValueError(f"run {str(run_dir)!r} trained task {config.get('task')!r}, not 'segment'")
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    if not checkpoints:
        raise CheckpointError(f"run {str(run_dir)!r} has no checkpoint")
    splits = resolve_dataset(config["data"])(seed=config.get("seed", 0))
    model = get_task("segment").build_model(config["model"], splits, **parse_model_kw(config.get("model_kw", [])))
    model.load_state_dict(load_checkpoint(checkpoints[-1])["model"])
    return model.eval(), tuple(splits.in_shape), checkpoints[-1]


def run(args) -> int:
    from deepnotes.commands._common import apply_threads

    apply_threads(args)  # small tensor work collapses when the thread pool outnumbers free cores
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    import torch.nn.functional as F

    from deepnotes.commands._common import console
    from deepnotes.core.checks import check_float
    from deepnotes.data import read_image

    alpha = check_float("--alpha", args.alpha, min=0.0, max=1.0)
    model, in_shape, ckpt = load_segmenter(Path(args.run_dir))
    colours = palette(model.num_classes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    con = console()
    con.print(f"model from {ckpt}")
    for name in args.images:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"image {name!r} not found")
        img = read_image(path)[:3]
        if img.shape[0] == 1 and in_shape[0] == 3:
            img = img.expand(3, -1, -1)
        if img.shape[0] != in_shape[0]:
            raise ValueError(f"image {name!r} has {img.shape[0]} channels, the model expects {in_shape[0]}")
        h, w = img.shape[1:]
        x = F.interpolate(img[None], size=in_shape[1:], mode="bilinear", align_corners=False)
        with torch.no_grad():
            scores = model(x)
        mask = F.interpolate(scores, size=(h, w), mode="bilinear", align_corners=False).argmax(1)[0].numpy()
        rgb = colours[mask]
        base = img.permute(1, 2, 0).numpy().clip(0, 1)
        overlay = np.where(mask[..., None] > 0, (1 - alpha) * base + alpha * rgb, base)
        plt.imsave(out / f"{path.stem}_mask.png", rgb)
        plt.imsave(out / f"{path.stem}_overlay.png", overlay.clip(0, 1))
        shares = np.bincount(mask.ravel(), minlength=model.num_classes) / mask.size
        con.print(f"{path.name}: class shares " + ", ".join(f"{c}: {s:.1%}" for c, s in enumerate(shares)))
    con.print(f"wrote {2 * len(args.images)} files to {out.resolve()}")
    return 0
