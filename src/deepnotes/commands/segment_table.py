"""``deepnotes segment-table``: train every segmentation model on shapes-seg under one time budget
and tabulate test mIoU, pixel accuracy, boundary F, parameters, training time and CPU speed."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "segment-table",
        help="train each segmentation model on shapes-seg for a fixed time; table of mIoU, accuracy, size, speed",
        description="For each model: train on shapes-seg (Adam, lr --lr, batch --batch-size) until --minutes "
        "of training have passed (checked after each epoch of --epoch-images images), then evaluate on the "
        "test split. Writes table.md and table.json to --out (one run directory per model below it).",
    )
    p.add_argument("--models", nargs="+", default=None, help="models (default: every task='segment' model)")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per model (default 10)")
    p.add_argument("--epoch-images", type=int, default=500, help="images per epoch (default 500)")
    p.add_argument("--eval-images", type=int, default=200, help="validation and test images (default 200)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=run)


def _stop_after(seconds: float):
    import time

    from deepnotes.train.callbacks import Callback

    class StopAfter(Callback):
        """Stop when another epoch as long as the last one would overrun the budget."""

        def on_fit_start(self, trainer) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, trainer, epoch, metrics) -> None:
            elapsed = time.perf_counter() - self.start
            if elapsed + elapsed / epoch > seconds:
                trainer.should_stop = True

    return StopAfter()


def _fps(model, in_shape, batch: int = 16, repeats: int = 5) -> float:
    import time

    import numpy as np
    import torch

    x = torch.rand(batch, *in_shape)
    model.eval()
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return batch / float(np.median(times))


def run(args) -> int:
    import time

    import torch

    from deepnotes.commands._common import console
    from deepnotes.core.checks import check_float, check_int
    from deepnotes.core.io import atomic_write_json, atomic_write_text
    from deepnotes.core.registry import MODELS
    from deepnotes.core.seeding import seed_everything
    from deepnotes.metrics import BoundaryFScore
    from deepnotes.plugins import load_all
    from deepnotes.segmentation.data import shapes_segmentation
    from deepnotes.train.tasks import get_task, load_tasks
    from deepnotes.train.trainer import Trainer

    load_all()
    load_tasks()
    minutes = check_float("--minutes", args.minutes, min=0.0, min_inclusive=False)
    threads = check_int("--threads", args.threads, min=1)
    epoch_images = check_int("--epoch-images", args.epoch_images, min=1)
    eval_images = check_int("--eval-images", args.eval_images, min=1)
    models = args.models or [m for m in MODELS.names() if MODELS.meta(m).get("task") == "segment"]
    for m in models:
        if MODELS.meta(m).get("task") != "segment":
            raise ValueError(f"--models: {m!r} is not a segmentation model")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    con = console()
    rows = []
    try:
        for name in models:
            seed_everything(args.seed)
            task = get_task("segment")
            splits = shapes_segmentation(seed=args.seed, n_train=epoch_images, n_val=eval_images, n_test=eval_images)
            model = task.build_model(name, splits)
            opt = torch.optim.Adam(model.parameters(), lr=args.lr)
            trainer = Trainer(model, opt, splits.train, val_data=splits.val, task=task, epochs=10_000,
                              batch_size=args.batch_size, seed=args.seed, out_dir=out / name,
                              callbacks=[_stop_after(60 * minutes)], config={"model": name, "data": "shapes-seg"})
            t0 = time.perf_counter()
            trainer.fit()
            train_seconds = time.perf_counter() - t0
            test = trainer.evaluate(splits.test)
            bf = BoundaryFScore(4, tolerance=1)
            model.eval()
            with torch.no_grad():
                for i in range(0, len(splits.test), 50):
                    items = [splits.test[j] for j in range(i, min(i + 50, len(splits.test)))]
                    x = torch.stack([a for a, _ in items])
                    bf.update(torch.stack([b for _, b in items]), model(x).argmax(1))
            row = {
                "model": name,
                "test_miou": test["miou"],
                "test_pixel_accuracy": test["pixel_accuracy"],
                "test_boundary_f1": bf.compute(),
                "parameters": sum(p.numel() for p in model.parameters()),
                "epochs": trainer.epoch,
                "train_seconds": train_seconds,
                "cpu_images_per_second": _fps(model, splits.in_shape),
            }
            rows.append(row)
            con.print("  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
            atomic_write_json(out / "table.json", rows)
    finally:
        torch.set_num_threads(old_threads)
    lines = [
        f"Shapes-seg (64x64, 4 classes), {minutes:g} min of training per model on {threads} CPU thread(s), "
        f"Adam lr {args.lr:g}, batch {args.batch_size}; test split of {eval_images} images.",
        "",
        "| model | test mIoU | pixel accuracy | boundary F (1 px) | parameters | epochs | train s | CPU img/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['test_miou']:.3f} | {r['test_pixel_accuracy']:.3f} | {r['test_boundary_f1']:.3f} "
            f"| {r['parameters']:,} | {r['epochs']} | {r['train_seconds']:.0f} | {r['cpu_images_per_second']:.0f} |"
        )
    atomic_write_text(out / "table.md", "\n".join(lines) + "\n")
    con.print("\n".join(lines))
    return 0 if rows else 1
