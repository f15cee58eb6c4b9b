"""``deepnotes zoo detect``: train detectors with their recorded settings and tabulate them
(:mod:`deepnotes.detection.zoo`)."""

from __future__ import annotations

from deepnotes.commands._common import add_threads_option, apply_threads, console, say


def register(sub) -> None:
    p = sub.add_parser(
        "zoo",
        help="train every detector with its recorded settings on shapes; table of mAP, speed, size, time",
        description="deepnotes zoo detect: for each selected detector, train on shapes with the settings recorded "
        "in its registration (MODELS.meta(name)['zoo']) through the Trainer (run directory DIR/runs/NAME), "
        "measure test mAP@0.5, mAP@[.5:.95], mask mAP@0.5 (models predicting masks), CPU training minutes, "
        "CPU FPS and parameters, write DIR/rows/NAME.json and regenerate DIR/table.md, table.json and "
        "table.png from all rows in DIR.",
    )
    p.add_argument("family", choices=("detect",), help="the model family (detect)")
    p.add_argument("--models", nargs="+", default=None,
                   help="detectors to train (default: every detector with zoo settings)")
    p.add_argument("--out", required=True, help="the zoo folder (rows/, runs/, table.*)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a recorded setting (e.g. --set epochs=1 --set \"data_kw={'n_train': 8}\"); "
                   "such rows are marked in the table")
    p.add_argument("--replace", action="store_true", help="train again a model whose run is already in --out")
    p.add_argument("--table-only", action="store_true", help="only regenerate the table from DIR/rows")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from deepnotes.commands._common import split_names
    from deepnotes.commands.train import parse_model_kw
    from deepnotes.core.checks import check_int
    from deepnotes.detection.zoo import (
        table_markdown,
        train_and_measure,
        write_table,
        zoo_models,
        zoo_settings,
    )
    from deepnotes.plugins import load_all

    load_all()
    con = console()
    check_int("--seed", args.seed, min=0)
    overrides = parse_model_kw(args.overrides) if args.overrides else {}
    if args.table_only:
        rows = write_table(args.out)
        con.print(table_markdown(rows))
        return 0 if rows else 1
    models = split_names(args.models) or zoo_models()
    for m in models:  # every name and setting checked before any training
        zoo_settings(m, overrides)
    apply_threads(args)
    for m in models:
        say(con, f"zoo: training {m}")
        row = train_and_measure(m, args.out, seed=args.seed, overrides=overrides, replace=args.replace,
                                progress=lambda line, m=m: say(con, f"  {m}: {line}"))
        say(con, f"zoo: {m}: mAP@0.5 {row['map_50']:.3f}, mAP {row['map']:.3f}, {row['cpu_minutes']:.2f} CPU min, "
                 f"{row['fps']:.0f} FPS, {row['params']:,} params, target {row['target']}")
        write_table(args.out)
    con.print(table_markdown(write_table(args.out)))
    return 0
