"""``deepnotes segment-table``: train each segmentation model on shapes-seg within a CPU-time budget
and tabulate test mIoU, pixel accuracy, boundary F, parameters, CPU training time and CPU speed.

Each model trains with its recorded settings (the ``zoo`` metadata of its ``MODELS`` entry: ``lr``,
``batch_size``, ``n_train``, ``minutes``, ``model_kw``, ``target_miou``); options given on the command
line override them for every selected model. The budget is the training process's CPU time
(``time.process_time()``, all its threads) — on a shared machine wall-clock time says nothing,
while CPU time approximates what a dedicated machine needs. With ``--threads 1`` one CPU minute is
about one minute of one core, so "10 CPU minutes" is at least as strict as "10 minutes on 2 cores".
The learning rate follows a cosine from ``lr`` to 0 over the budget (the fraction of the budget
used, read before every batch), so a model ends on small steps whatever its speed.

Every model writes ``OUT/rows/<model>.json``; ``OUT/table.md`` and ``OUT/table.json`` are rebuilt
from all rows there, so models can be run one at a time into one folder.
"""

from __future__ import annotations

import json
from pathlib import Path

# settings of a model that records none
DEFAULTS = {"lr": 2e-3, "batch_size": 16, "n_train": 2000, "minutes": 10.0, "model_kw": {}}


def register(sub) -> None:
    p = sub.add_parser(
        "segment-table",
        help="train each segmentation model on shapes-seg within a CPU-time budget; table of mIoU, accuracy, size, speed",
        description="For each model: train on shapes-seg (Adam, cosine learning rate over the budget) with its "
        "recorded settings until its CPU-time budget is spent (checked after each epoch: training stops "
        "when another epoch would overrun it), then evaluate the final weights on the test split. "
        "Writes OUT/rows/<model>.json and rebuilds OUT/table.md and OUT/table.json from every row in OUT.",
    )
    p.add_argument("--models", nargs="+", default=None, help="models (default: every task='segment' model)")
    p.add_argument("--minutes", type=float, default=None,
                   help="CPU minutes of training per model (default: the model's recorded budget, at most 10)")
    p.add_argument("--n-train", type=int, default=None, help="training images = images per epoch (default: recorded)")
    p.add_argument("--eval-images", type=int, default=200, help="validation and test images (default 200)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: recorded)")
    p.add_argument("--batch-size", type=int, default=None, help="default: recorded")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=run)


def model_settings(name: str, **overrides) -> dict:
    """The training settings of segmentation model ``name``: its recorded ``zoo`` metadata over
    :data:`DEFAULTS`, then every override that is not ``None``."""
    from deepnotes.core.registry import MODELS

    settings = {**DEFAULTS, **MODELS.meta(name).get("zoo", {})}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


def _cpu_budget(seconds: float):
    import math
    import time

    from deepnotes.train.callbacks import Callback

    class CpuBudget(Callback):
        """Cosine learning rate over the CPU-time budget; stop when another epoch would overrun it."""

        def on_fit_start(self, trainer) -> None:
            self.start = time.process_time()
            self.base = [g["lr"] for g in trainer.optimizer.param_groups]

        def on_batch_start(self, trainer, batch_index) -> None:
            done = min((time.process_time() - self.start) / seconds, 1.0)
            for g, lr in zip(trainer.optimizer.param_groups, self.base):
                g["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * done))

        def on_epoch_end(self, trainer, epoch, metrics) -> None:
            used = time.process_time() - self.start
            if used + used / epoch > seconds:
                trainer.should_stop = True

    return CpuBudget()


def _cpu_images_per_second(model, in_shape, batch: int = 16, repeats: int = 5) -> float:
    """Evaluation speed: images per second of the process's CPU time (median of ``repeats``)."""
    import time

    import numpy as np
    import torch

    x = torch.rand(batch, *in_shape)
    model.eval()
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t0 = time.process_time()
            model(x)
            times.append(time.process_time() - t0)
    return batch / max(float(np.median(times)), 1e-9)


def train_and_measure(name: str, settings: dict, out: Path, *, eval_images: int, seed: int) -> dict:
    """Train ``name`` on shapes-seg with ``settings`` under its CPU budget; the table row."""
    import time

    import torch

    from deepnotes.core.seeding import seed_everything
    from deepnotes.metrics import BoundaryFScore
    from deepnotes.segmentation.data import shapes_segmentation
    from deepnotes.train.tasks import get_task
    from deepnotes.train.trainer import Trainer

    seed_everything(seed)
    task = get_task("segment")
    splits = shapes_segmentation(seed=seed, n_train=settings["n_train"], n_val=eval_images, n_test=eval_images)
    model = task.build_model(name, splits, **settings["model_kw"])
    opt = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    budget = 60.0 * settings["minutes"]
    trainer = Trainer(model, opt, splits.train, val_data=splits.val, task=task, epochs=100_000,
                      batch_size=settings["batch_size"], seed=seed, out_dir=out / name, progress=False,
                      callbacks=[_cpu_budget(budget)], config={"model": name, "data": "shapes-seg", **settings})
    t0 = time.process_time()
    trainer.fit()
    cpu_seconds = time.process_time() - t0
    test = trainer.evaluate(splits.test)
    bf = BoundaryFScore(4, tolerance=1)
    model.eval()
    with torch.no_grad():
        for i in range(0, len(splits.test), 50):
            items = [splits.test[j] for j in range(i, min(i + 50, len(splits.test)))]
            x = torch.stack([a for a, _ in items])
            bf.update(torch.stack([b for _, b in items]), model(x).argmax(1))
    target = settings.get("target_miou")
    return {
        "model": name,
        "test_miou": test["miou"],
        "test_pixel_accuracy": test["pixel_accuracy"],
        "test_boundary_f1": bf.compute(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": trainer.epoch,
        "train_cpu_minutes": cpu_seconds / 60.0,
        "cpu_images_per_second": _cpu_images_per_second(model, splits.in_shape),
        "threads": torch.get_num_threads(),
        "settings": {k: settings[k] for k in ("lr", "batch_size", "n_train", "minutes", "model_kw")},
        "target_miou": target,
        "target": None if target is None else ("met" if test["miou"] >= target else "missed"),
        "seed": seed,
        "eval_images": eval_images,
    }


def table_markdown(rows: list[dict]) -> str:
    """The table of ``rows`` (one per model) as markdown."""
    lines = [
        "Shapes-seg (64x64 images, 1-4 objects, 4 pixel classes); each model trained (Adam, cosine learning "
        "rate over the budget) for at most its CPU-minute budget of the training process (CPU time, all "
        "threads; about wall minutes on a dedicated core), then the final weights measured on the test split. "
        "Speed: evaluation images per CPU second, batch 16.",
        "",
        "| model | test mIoU | pixel accuracy | boundary F (1 px) | parameters | CPU min (budget) | epochs "
        "| CPU img/s | lr | batch | train images | model_kw | target mIoU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["settings"]
        kw = ", ".join(f"{k}={v}" for k, v in s["model_kw"].items()) or "-"
        target = "-" if r["target_miou"] is None else f"≥ {r['target_miou']:.2f}: {r['target']}"
        lines.append(
            f"| {r['model']} | {r['test_miou']:.3f} | {r['test_pixel_accuracy']:.3f} | {r['test_boundary_f1']:.3f} "
            f"| {r['parameters']:,} | {r['train_cpu_minutes']:.2f} ({s['minutes']:g}) | {r['epochs']} | {r['cpu_images_per_second']:.0f} "
            f"| {s['lr']:g} | {s['batch_size']} | {s['n_train']} | {kw} | {target} |"
        )
    return "\n".join(lines) + "\n"


def rebuild_table(out: Path) -> list[dict]:
    """Rebuild ``out/table.md`` and ``out/table.json`` from every ``out/rows/*.json``."""
    from deepnotes.core.io import atomic_write_json, atomic_write_text

    rows = [json.loads(p.read_text()) for p in sorted((out / "rows").glob("*.json"))]
    atomic_write_json(out / "table.json", rows)
    atomic_write_text(out / "table.md", table_markdown(rows))
    return rows


def run(args) -> int:
    import torch

    from deepnotes.commands._common import console
    from deepnotes.core.checks import check_float, check_int
    from deepnotes.core.io import atomic_write_json
    from deepnotes.core.registry import MODELS
    from deepnotes.plugins import load_all
    from deepnotes.train.tasks import load_tasks

    load_all()
    load_tasks()
    if args.minutes is not None:
        check_float("--minutes", args.minutes, min=0.0, min_inclusive=False)
    if args.lr is not None:
        check_float("--lr", args.lr, min=0.0, min_inclusive=False)
    if args.batch_size is not None:
        check_int("--batch-size", args.batch_size, min=1)
    if args.n_train is not None:
        check_int("--n-train", args.n_train, min=1)
    threads = check_int("--threads", args.threads, min=1)
    eval_images = check_int("--eval-images", args.eval_images, min=1)
    models = args.models or [m for m in MODELS.names() if MODELS.meta(m).get("task") == "segment"]
    for m in models:
        if MODELS.meta(m).get("task") != "segment":
            raise ValueError(f"--models: {m!r} is not a segmentation model")
    out = Path(args.out)
    taken = [m for m in models if (out / m / "checkpoints").is_dir() and any((out / m / "checkpoints").iterdir())]
    if taken:  # found before any training, not after the first model's budget is spent
        raise ValueError(f"--out {str(out)!r} already holds runs of {', '.join(taken)}; move them or choose another --out")
    (out / "rows").mkdir(parents=True, exist_ok=True)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    con = console()
    try:
        for name in models:
            settings = model_settings(name, lr=args.lr, batch_size=args.batch_size, n_train=args.n_train,
                                      minutes=args.minutes)
            row = train_and_measure(name, settings, out, eval_images=eval_images, seed=args.seed)
            atomic_write_json(out / "rows" / f"{name}.json", row)
            con.print(f"{name}: test mIoU {row['test_miou']:.3f}, pixel accuracy {row['test_pixel_accuracy']:.3f}, "
                      f"{row['train_cpu_minutes']:.1f} CPU min, {row['epochs']} epochs")
            rebuild_table(out)
    finally:
        torch.set_num_threads(old_threads)
    con.print((out / "table.md").read_text())
    return 0
