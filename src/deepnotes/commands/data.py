"""``deepnotes data export``: write a registered detection dataset as COCO or Pascal VOC files."""

from __future__ import annotations

from deepnotes.commands._common import console


def register(sub) -> None:
    p = sub.add_parser("data", help="dataset utilities (export a detection set as COCO / VOC)")
    actions = p.add_subparsers(dest="action", required=True)
    e = actions.add_parser("export", help="write a detection dataset (e.g. shapes) as COCO or VOC files")
    e.add_argument("name", help="registered detection dataset, e.g. shapes")
    e.add_argument("--format", choices=("coco", "voc"), required=True)
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--split", choices=("train", "val", "test"), default="train")
    e.add_argument("--limit", type=int, default=None, help="export only the first N images of the split")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=run)


def run(args) -> int:
    from torch.utils.data import Subset

    from deepnotes.core.registry import DATASETS
    from deepnotes.data.export import export_coco, export_voc

    if DATASETS.meta(args.name).get("task") != "detect":
        raise ValueError(f"dataset {args.name!r} is not a detection dataset (task='detect')")
    splits = DATASETS.create(args.name, seed=args.seed)
    ds = getattr(splits, args.split)
    if args.limit is not None:
        if args.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {args.limit}")
        ds = Subset(ds, range(min(args.limit, len(ds))))
        ds.classes = getattr(ds.dataset, "classes", None)
    writer = export_coco if args.format == "coco" else export_voc
    path = writer(ds, args.out)
    console().print(f"wrote {len(ds)} images of {args.name}/{args.split} as {args.format.upper()}: {path}")
    return 0
