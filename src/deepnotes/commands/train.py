"""``deepnotes train``: train a registered model on a registered dataset.

Under ``torchrun --standalone --nproc_per_node=N -m deepnotes train ...`` the same command trains
with DDP (``--backend gloo`` on CPU, ``nccl`` on GPUs); ``--batch-size`` is the global batch.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from deepnotes.commands._common import add_threads_option, apply_threads, console, say


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a registered model on a registered dataset",
        description="Train MODEL on DATA with OPTIMIZER; writes config.json, metrics.csv, checkpoints, "
        "TensorBoard events (if installed), curves.png and summary.json to --out. Use --list to see the names. "
        "Run it under torchrun for distributed data parallel training.",
    )
    p.add_argument("--task", default=None,
                   help="task: classification, regression, … (default: the dataset's own task); --list shows them")
    p.add_argument("--model", default="mlp", help="model name (default: mlp)")
    p.add_argument("--data", default="digits", help="dataset name, or folder:PATH for your own class-per-folder images (default: digits)")
    p.add_argument("--optimizer", default="adam", help="optimizer name (default: adam)")
    p.add_argument("--loss", default=None, help="loss name (default: cross-entropy / MSE by task)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 1e-3)")
    p.add_argument("--weight-decay", type=float, default=None, help="weight decay passed to the optimizer")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default: 0)")
    p.add_argument("--out", default=None, help="run directory (default: runs/MODEL-DATA-SEED)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in --out; the other settings must equal the run's, "
                   "except --epochs: a larger value extends the run and rebuilds the --schedule for the new horizon")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true",
                   help="list the tasks with their models and datasets, then optimizers and losses, and exit")
    p.add_argument("--schedule", default="constant", choices=("constant", "cosine", "step"),
                   help="learning-rate schedule over the epochs: constant (default), cosine annealing to 0, "
                   "or step (×0.1 at 50%% and 75%% of the epochs)")
    p.add_argument("--model-kw", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model argument, repeatable (e.g. --model-kw hidden=256 --model-kw dropout=0.2)")
    p.add_argument("--l1", type=float, default=0.0, help="L1 penalty on the weights (default: 0)")
    p.add_argument("--l2", type=float, default=0.0, help="L2 penalty l2/2·Σw² on the weights (default: 0)")
    p.add_argument("--max-norm", type=float, default=None, help="max-norm constraint on each unit's weights")
    p.add_argument("--divergence-factor", type=float, default=3.0,
                   help="abort when a batch loss exceeds this many times the initial loss (default: 3; 0 = off)")
    p.add_argument("--sanity", action="store_true",
                   help="first check the initial loss against ln C and overfit a tiny subset; report pass/fail")
    p.add_argument("--grad-norms", type=int, default=0, metavar="EVERY",
                   help="record per-layer gradient norms every EVERY steps into grad_norms.csv")
    p.add_argument("--backend", default="auto", help="under torchrun: auto (default), gloo or nccl")
    add_threads_option(p)
    p.set_defaults(func=run)


CONFIG_KEYS = (
    "task", "model", "data", "optimizer", "loss", "lr", "weight_decay", "batch_size", "seed", "l1", "l2", "max_norm",
    "schedule", "model_kw",
)


def run(args) -> int:
    from deepnotes.core.checks import check_float, check_int
    from deepnotes.core.io import CheckpointError, atomic_write_json
    from deepnotes.core.registry import LOSSES, MODELS, OPTIMIZERS
    from deepnotes.core.runlock import check_writable_folder
    from deepnotes.core.seeding import seed_everything
    from deepnotes.data import resolve_dataset
    from deepnotes.plugins import load_all
    from deepnotes.train import NonFiniteLossError, Trainer
    from deepnotes.train import distributed as ddp
    from deepnotes.train.guards import DivergenceError, DivergenceGuard, MaxNorm, WeightPenalty
    from deepnotes.train.plots import CurvePlotter
    from deepnotes.train.probes import GradientNormProbe
    from deepnotes.train.reporting import EpochReporter, RebuildSchedule
    from deepnotes.train.sanity import SanityCheckError, SanityChecks

    load_all()
    con = console()
    if args.list:
        _print_list(con)
        return 0
    check_float("--lr", args.lr, min=0.0, min_inclusive=False)
    check_int("--epochs", args.epochs, min=1)
    check_int("--batch-size", args.batch_size, min=1)
    check_int("--seed", args.seed, min=0)
    check_float("--l1", args.l1, min=0.0)
    check_float("--l2", args.l2, min=0.0)
    if args.max_norm is not None:
        check_float("--max-norm", args.max_norm, min=0.0, min_inclusive=False)
    check_float("--divergence-factor", args.divergence_factor, min=0.0)
    if 0 < args.divergence_factor <= 1:
        raise ValueError(f"--divergence-factor must be 0 (off) or > 1, got {args.divergence_factor}")
    check_int("--grad-norms", args.grad_norms, min=0)
    distributed = ddp.launched_by_torchrun()
    if distributed:  # validate before joining the process group, which would otherwise wait forever
        ddp.resolve_backend(args.backend)
        _, world, _ = ddp.env_world()
    # resolve every name before doing any work, so a typo fails fast with the valid names
    opt_factory = OPTIMIZERS.get(args.optimizer)
    MODELS.get(args.model)
    data_factory = resolve_dataset(args.data)
    task = _resolve_task(args.task, args.model, args.data)
    parse_model_kw(args.model_kw)  # a malformed KEY=VALUE fails before any work
    loss_fn = LOSSES.create(args.loss) if args.loss else None
    out = Path(args.out or f"runs/{args.model}-{args.data}-{args.seed}")
    config = {k: getattr(args, k) for k in CONFIG_KEYS}
    config["epochs"] = args.epochs
    config["task"] = task.name
    _check_run_dir(out, config, args.resume)
    sanity_kind = _sanity_kind(args.loss, task.name) if args.sanity else None
    apply_threads(args)
    if not distributed or int(os.environ.get("RANK", "0")) == 0:
        check_writable_folder(out)  # before any work: a bad --out is found now, not after training

    seed_everything(args.seed)
    splits = data_factory(seed=args.seed)
    _check_splits(args.data, splits)
    device = args.device
    if distributed:
        ddp.check_world_size(world, len(splits.train))
        if args.batch_size % world:
            raise ValueError(f"--batch-size (the global batch) {args.batch_size} must be divisible by the world size {world}")
        rank, world, device = ddp.init_from_env(args.backend)
        if rank != 0:
            con.quiet = True  # one process reports
    model = task.build_model(args.model, splits, **parse_model_kw(args.model_kw))
    _check_loss_fits(args.loss, loss_fn or task.default_loss(), model, splits.train, task)
    opt_kwargs = {"lr": args.lr}
    if args.weight_decay is not None:
        opt_kwargs["weight_decay"] = args.weight_decay
    # one optimizer (and schedule) per network the task names: one for most tasks, two for a GAN
    optimizer = {n: opt_factory(p, **opt_kwargs) for n, p in task.optimizer_parameters(model).items()}
    scheduler = {n: make_schedule(args.schedule, o, args.epochs) for n, o in optimizer.items()}
    scheduler = {n: s for n, s in scheduler.items() if s is not None} or None
    if len(optimizer) == 1:
        optimizer = next(iter(optimizer.values()))
        scheduler = next(iter(scheduler.values())) if scheduler else None
    callbacks = []
    if args.sanity:
        callbacks.append(SanityChecks(kind=sanity_kind, raise_on_fail=True))
    callbacks.append(EpochReporter(lambda line: say(con, line)))
    if args.resume and scheduler is not None:
        callbacks.append(RebuildSchedule(lambda opt: make_schedule(args.schedule, opt, args.epochs)))
    if args.l1 or args.l2:
        callbacks.append(WeightPenalty(args.l1, args.l2))
    if args.max_norm is not None:
        callbacks.append(MaxNorm(args.max_norm))
    if args.divergence_factor:
        callbacks.append(DivergenceGuard(args.divergence_factor))
    if args.grad_norms:
        callbacks.append(GradientNormProbe(args.grad_norms))
    callbacks.append(CurvePlotter())
    callbacks += task.callbacks()  # the task's own (a generator's sample grids)
    trainer = Trainer(
        model,
        optimizer,
        splits.train,
        val_data=splits.val,
        loss_fn=loss_fn,
        task=task,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        device=device,
        out_dir=out,
        scheduler=scheduler,
        progress=not args.no_progress,
        num_workers=args.workers,
        config=config,
        callbacks=callbacks,
    )
    t0 = time.perf_counter()
    try:
        trainer.fit(resume=args.resume)
    except (NonFiniteLossError, DivergenceError, SanityCheckError) as exc:
        con.print(f"[red]stopped:[/] {exc}")
        ddp.cleanup()
        return 1
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        con.print(f"[red]training failed:[/] {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        ddp.cleanup()
        return 1
    seconds = time.perf_counter() - t0
    test = trainer.evaluate(splits.test)
    ddp.cleanup()
    if not trainer.is_main:
        return 0
    summary = json.loads((out / "summary.json").read_text())
    summary.update({f"test_{k}": v for k, v in test.items()})
    summary["device"] = str(trainer.device)
    summary["wall_seconds"] = round(seconds, 3)
    atomic_write_json(out / "summary.json", summary)
    shown = ", ".join(f"test {k} {v:.4f}" for k, v in test.items())
    say(con, f"{summary['status']}: {shown} ({seconds:.1f} s on {trainer.device}); run directory: {out.resolve()}")
    return 0


def _check_splits(data: str, splits) -> None:
    sizes = {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}
    empty = [k for k, v in sizes.items() if v == 0]
    if empty:
        shown = ", ".join(f"{k} {v}" for k, v in sizes.items())
        raise ValueError(f"--data {data!r}: the {' and '.join(empty)} split is empty ({shown} samples); add more data")


def _check_loss_fits(name: str | None, loss_fn, model, data, task) -> None:
    """Run the loss on two training samples before training, so a loss that does not fit the task's
    outputs and targets (``--loss mse`` on class labels) is a usage error, not a crash mid-run."""
    import warnings

    import torch

    if loss_fn is None:
        return
    batch = task.collate([data[i] for i in range(min(2, len(data)))])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # torch warns on broadcasting mismatched targets
            loss = loss_fn(model(batch[0]), batch[1])
        if loss.dim() != 0:
            raise ValueError(f"returns shape {tuple(loss.shape)}, not a scalar")
    except (RuntimeError, ValueError, TypeError, UserWarning) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"--loss {name or 'default'} does not fit the {task.name} data and model: {msg}") from None
    finally:
        model.train(was_training)


def _print_list(con) -> None:
    """Models and datasets grouped by task, then optimizers and losses."""
    from deepnotes.core.registry import DATASETS, LOSSES, MODELS, OPTIMIZERS, TASKS
    from deepnotes.data import dataset_task
    from deepnotes.train.tasks import model_fits

    con.print("[bold]tasks[/] (models and datasets of each):")
    for name in TASKS.names():
        task = TASKS.create(name)
        models = [m for m in MODELS.names() if model_fits(MODELS.meta(m), task)]
        datasets = [d for d in DATASETS.names() if dataset_task(d) in (name, *task.data_tasks)]
        con.print(f"  [bold]{name}[/]")
        con.print(f"    models: {', '.join(models) or '(none)'}")
        con.print(f"    datasets: {', '.join(datasets) or '(none)'}")
    con.print(f"[bold]optimizers[/]: {', '.join(OPTIMIZERS.names())}")
    con.print(f"[bold]losses[/]: {', '.join(LOSSES.names())}")


def _resolve_task(task_name: str | None, model: str, data: str):
    """The task to train: ``--task`` or the dataset's own; the model and dataset must fit it."""
    from deepnotes.core.checks import check_choice
    from deepnotes.core.registry import DATASETS, MODELS, TASKS
    from deepnotes.data import dataset_task
    from deepnotes.train.tasks import model_fits

    data_task = dataset_task(data)
    if task_name is not None:
        check_choice("--task", task_name, TASKS.names())
    task = TASKS.create(task_name or data_task)
    if data_task not in (task.name, *task.data_tasks):
        fitting = [d for d in DATASETS.names() if dataset_task(d) == task.name]
        raise ValueError(
            f"--data {data!r} is a {data_task} dataset, not for task {task.name!r}; "
            f"datasets for {task.name!r}: {', '.join(fitting) or '(none)'}"
        )
    if not model_fits(MODELS.meta(model), task):
        fitting = [m for m in MODELS.names() if model_fits(MODELS.meta(m), task)]
        raise ValueError(
            f"--model {model!r} is not a model for task {task.name!r}; "
            f"models for {task.name!r}: {', '.join(fitting) or '(none)'}"
        )
    return task


def _sanity_kind(loss: str | None, task: str) -> str:
    """The expected initial loss is known for softmax cross-entropy (ln C) and the multi-class SVM (C - 1)."""
    if task != "classification":
        raise ValueError("--sanity needs a classification dataset (the expected initial loss depends on C)")
    kinds = {None: "softmax", "cross_entropy": "softmax", "multiclass_svm": "svm"}
    if loss not in kinds:
        raise ValueError(f"--sanity knows the initial loss of cross_entropy and multiclass_svm only, not {loss!r}")
    return kinds[loss]


def _check_run_dir(out: Path, config: dict, resume: bool) -> None:
    """A fresh run needs a folder without checkpoints; a resumed run must keep the run's settings.

    Settings are read from ``config.json`` or, when it is gone, from the newest checkpoint (which
    records the configuration it ran with). Only ``--epochs`` may differ: a larger value extends
    the run. Changing anything else (``--lr`` included: the optimizer's saved state would silently
    override it) is refused with the differences listed, so ``config.json`` always records what ran.
    """
    from deepnotes.core.io import CheckpointError
    from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint

    found = list_checkpoints(out / "checkpoints")
    if resume:
        if not found:
            raise ValueError(f"--resume: no checkpoint in {str(out / 'checkpoints')!r}")
        if (out / "config.json").is_file():
            try:
                saved = json.loads((out / "config.json").read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"--resume: {str(out / 'config.json')!r} is not valid JSON ({exc})") from None
        else:
            state = load_checkpoint(found[-1])
            if "config_json" not in state:
                raise CheckpointError(
                    f"--resume: {str(out / 'config.json')!r} is missing and checkpoint {str(found[-1])!r} does not "
                    "record its settings, so the settings of this run cannot be checked"
                )
            saved = json.loads(state["config_json"])
        if not isinstance(saved, dict):
            raise ValueError(f"--resume: the saved settings of {str(out)!r} are not a JSON object")
        diff = [k for k in CONFIG_KEYS if k in saved and saved[k] != config[k]]
        if diff:
            detail = ", ".join(f"{k}: saved {saved[k]!r} vs now {config[k]!r}" for k in diff)
            raise ValueError(f"--resume with different settings than the run in {str(out)!r} ({detail})")
    elif found:
        raise ValueError(f"--out {str(out)!r} already holds checkpoints; pass --resume to continue or choose another --out")


def parse_model_kw(items: list[str]) -> dict:
    """``["hidden=256", "act='tanh'"]`` → ``{"hidden": 256, "act": "tanh"}`` (Python literals, else strings)."""
    import ast

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-kw must look like KEY=VALUE with KEY a Python name, got {item!r}")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def make_schedule(name: str, optimizer, epochs: int):
    """The learning-rate scheduler for ``--schedule`` (stepped once per epoch), or None."""
    import torch

    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    return None

