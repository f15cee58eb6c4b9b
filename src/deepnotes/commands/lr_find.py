"""``deepnotes lr-find``: the learning-rate range test on a registered model and dataset."""

from __future__ import annotations

from deepnotes.commands._common import add_threads_option, apply_threads, console


def register(sub) -> None:
    p = sub.add_parser(
        "lr-find",
        help="learning-rate range test: loss vs exponentially growing LR, plot and suggested LR",
        description="Train MODEL on DATA for --iters steps while the learning rate grows from --start-lr to "
        "--end-lr; writes lr_find.png and lr_find.json to --out and prints the suggested rate "
        "(the steepest descent of the smoothed loss).",
    )
    p.add_argument("--model", default="mlp", help="model name (default: mlp)")
    p.add_argument("--data", default="digits", help="dataset name, or folder:PATH for your own images (default: digits)")
    p.add_argument("--optimizer", default="adam", help="optimizer name (default: adam)")
    p.add_argument("--start-lr", type=float, default=1e-7, help="first learning rate (default: 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, help="last learning rate (default: 10)")
    p.add_argument("--iters", type=int, default=100, help="training steps over the range (default: 100)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, the model and the order (default: 0)")
    p.add_argument("--out", default=None, help="output folder (default: runs/lr-find-MODEL-DATA)")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import io

    import matplotlib.pyplot as plt

    from deepnotes.core.checks import check_int
    from deepnotes.core.io import atomic_write_bytes, atomic_write_json
    from deepnotes.core.registry import MODELS, OPTIMIZERS
    from deepnotes.core.runlock import check_writable_folder
    from deepnotes.core.seeding import seed_everything
    from deepnotes.data import resolve_dataset
    from deepnotes.plugins import load_all
    from deepnotes.train.lr_find import lr_range_test
    from deepnotes.train.trainer import default_loss

    load_all()
    check_int("--seed", args.seed, min=0)
    model_factory, opt_factory = MODELS.get(args.model), OPTIMIZERS.get(args.optimizer)
    data_factory = resolve_dataset(args.data)
    apply_threads(args)
    out = check_writable_folder(args.out or f"runs/lr-find-{args.model}-{args.data}")  # before any work
    seed_everything(args.seed)
    splits = data_factory(seed=args.seed)
    model = model_factory(splits.in_shape, splits.num_classes)
    optimizer = opt_factory(model.parameters(), lr=args.start_lr)
    result = lr_range_test(model, optimizer, splits.train, loss_fn=default_loss(splits.task),
                           start_lr=args.start_lr, end_lr=args.end_lr, num_iter=args.iters,
                           batch_size=args.batch_size, seed=args.seed)
    fig = result.plot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(out / "lr_find.png", buf.getvalue())
    atomic_write_json(out / "lr_find.json", {
        "suggested_lr": result.suggested_lr, "diverged_at": result.diverged_at,
        "lrs": result.lrs, "losses": result.losses, "raw_losses": result.raw_losses,
    })
    con = console()
    if result.suggested_lr is None:
        con.print("no suggestion: the loss did not fall over the range (widen --start-lr/--end-lr or add --iters)")
    else:
        con.print(f"suggested lr {result.suggested_lr:.3g}"
                  + (f" (loss diverged at lr {result.diverged_at:.3g})" if result.diverged_at else ""))
    con.print(f"plot: {(out / 'lr_find.png').resolve()}")
    return 0
