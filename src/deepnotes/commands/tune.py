"""``deepnotes tune``: hyperparameter search with Optuna over the trainer.

The study lives in ``--storage`` (default: ``sqlite:///OUT/study.db``); rerunning the command adds
``--trials`` more trials to the same study. Several processes (``--processes N``) or machines can
work on one study by pointing at the same storage. ``--refine K`` runs the fine stage of a
coarse-to-fine search: a study named ``STUDY-fine`` in the region of the K best trials of ``STUDY``.
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

from deepnotes.commands._common import add_threads_option, apply_threads, console, say

TRAINER_PARAMS = ("lr", "weight_decay", "batch_size", "optimizer", "l1", "l2", "max_norm", "momentum")


def register(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="hyperparameter search (Optuna: grid, random, TPE; SQLite by default; resumable)",
        description="Search hyperparameters of MODEL on DATA with Optuna. Give the space with --param "
        "NAME=KIND:ARGS, KIND one of uniform, loguniform, int, logint, choice "
        "(e.g. --param lr=loguniform:1e-4:1e-1 --param hidden=int:16:128 --param optimizer=choice:sgd,adam). "
        "Names lr, weight_decay, batch_size, optimizer, l1, l2, max_norm, momentum go to the trainer, "
        "the others to the model. Rerun the command to add trials to the same study.",
    )
    p.add_argument("--model", default="mlp", help="model name (default: mlp)")
    p.add_argument("--data", default="digits", help="dataset name, or folder:PATH for your own images (default: digits)")
    p.add_argument("--optimizer", default="adam", help="optimizer when not searched (default: adam)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate when not searched")
    p.add_argument("--param", action="append", default=[], metavar="NAME=KIND:ARGS", help="a search dimension")
    p.add_argument("--sampler", default="tpe", help="tpe (default), random or grid")
    p.add_argument("--grid-points", type=int, default=4, help="values per numeric axis for --sampler grid")
    p.add_argument("--pruner", default="median", help="median (default) or none")
    p.add_argument("--trials", type=int, default=10, help="trials to add in this run (default: 10)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per trial (default: 3)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size when not searched (default: 64)")
    p.add_argument("--metric", default="val_loss", help="val_loss (minimized, default) or val_accuracy (maximized)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, the models and the sampler")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    p.add_argument("--out", default=None, help="run directory (default: runs/tune-MODEL-DATA)")
    p.add_argument("--storage", default=None, help="Optuna storage URL or journal file (default: sqlite in --out)")
    p.add_argument("--study", default="search", help="study name (default: search)")
    p.add_argument("--refine", type=int, default=0, metavar="K",
                   help="search STUDY-fine in the region of the K best trials of STUDY")
    p.add_argument("--processes", type=int, default=1, help="worker processes sharing the storage (default: 1)")
    add_threads_option(p)
    p.set_defaults(func=run)


def _objective(args, splits, model_factory):
    """``objective(trial, params) -> metric`` training one model per trial."""
    import optuna

    from deepnotes.core.registry import OPTIMIZERS
    from deepnotes.core.seeding import seed_everything
    from deepnotes.train import Callback, Trainer
    from deepnotes.train.guards import MaxNorm, WeightPenalty

    class Report(Callback):
        def __init__(self, trial):
            self.trial = trial

        def on_epoch_end(self, trainer, epoch, metrics):
            self.trial.report(metrics[args.metric], epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    def objective(trial, params):
        train_kw = {k: v for k, v in params.items() if k in TRAINER_PARAMS}
        model_kw = {k: v for k, v in params.items() if k not in TRAINER_PARAMS}
        seed_everything(args.seed)
        model = model_factory(splits.in_shape, splits.num_classes, **model_kw)
        opt_kw = {"lr": train_kw.get("lr", args.lr)}
        for k in ("weight_decay", "momentum"):
            if k in train_kw:
                opt_kw[k] = train_kw[k]
        opt = OPTIMIZERS.create(str(train_kw.get("optimizer", args.optimizer)), model.parameters(), **opt_kw)
        callbacks = [Report(trial)]
        if train_kw.get("l1") or train_kw.get("l2"):
            callbacks.append(WeightPenalty(train_kw.get("l1", 0.0), train_kw.get("l2", 0.0)))
        if "max_norm" in train_kw:
            callbacks.append(MaxNorm(train_kw["max_norm"]))
        trainer = Trainer(model, opt, splits.train, val_data=splits.val, task=splits.task, epochs=args.epochs,
                          batch_size=int(train_kw.get("batch_size", args.batch_size)), seed=args.seed,
                          device=args.device, callbacks=callbacks)
        history = trainer.fit()
        values = [h[args.metric] for h in history]
        return max(values) if args.metric == "val_accuracy" else min(values)

    return objective


def _setup(args):
    """Validate everything before the storage is touched; returns what a worker needs."""
    from deepnotes.core.checks import check_choice, check_float, check_int
    from deepnotes.core.registry import MODELS, OPTIMIZERS
    from deepnotes.data import resolve_dataset
    from deepnotes.plugins import load_all
    from deepnotes.train import tune

    load_all()
    tune.check_study_name(args.study)
    check_int("--trials", args.trials, min=1)
    check_int("--epochs", args.epochs, min=1)
    check_int("--batch-size", args.batch_size, min=1)
    check_int("--seed", args.seed, min=0)
    check_int("--processes", args.processes, min=1)
    check_int("--refine", args.refine, min=0)
    check_float("--lr", args.lr, min=0.0, min_inclusive=False)
    check_choice("--sampler", args.sampler, tune.SAMPLERS)
    check_choice("--pruner", args.pruner, tune.PRUNERS)
    check_choice("--metric", args.metric, ("val_loss", "val_accuracy"))
    space = tune.make_space(tune.parse_param(s) for s in args.param)
    model_factory = MODELS.get(args.model)
    data_factory = resolve_dataset(args.data)
    OPTIMIZERS.get(args.optimizer)
    if "optimizer" in space:
        for name in space["optimizer"].choices:
            OPTIMIZERS.get(str(name))
    accepted = inspect.signature(model_factory).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in accepted.values())
    for name in space:
        if name not in TRAINER_PARAMS and name not in accepted and not takes_any:
            valid = [k for k in accepted if k not in ("in_shape", "num_classes")]
            raise ValueError(f"--param {name!r} is neither a trainer setting {TRAINER_PARAMS} nor an argument "
                             f"of model {args.model!r} ({', '.join(valid) or 'none'})")
    out = Path(args.out or f"runs/tune-{args.model}-{args.data}")
    storage_url = args.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    return space, model_factory, data_factory, out, storage_url


def _work(ns: dict, space, study_name: str, n_trials: int, seed: int):
    """One worker: open the shared storage and add ``n_trials`` trials (runs in a subprocess too)."""
    from deepnotes.commands._common import console
    from deepnotes.core.registry import MODELS
    from deepnotes.data import resolve_dataset
    from deepnotes.plugins import load_all
    from deepnotes.train import tune

    load_all()
    args = argparse.Namespace(**ns)
    apply_threads(args)
    splits = resolve_dataset(args.data)(seed=args.seed)
    con = console()

    def report(trial):
        value = "" if trial.value is None else f" {args.metric} {trial.value:.4f}"
        reason = trial.user_attrs.get("fail_reason", "")
        say(con, f"trial {trial.number}: {trial.state.name.lower()}{value} {trial.params}" + (f" ({reason})" if reason else ""))

    objective = _objective(args, splits, MODELS.get(args.model))
    storage = tune.open_storage(ns["_storage_url"])
    direction = "maximize" if args.metric == "val_accuracy" else "minimize"
    tune.run_search(objective, space, storage=storage, study_name=study_name, n_trials=n_trials,
                    sampler=args.sampler, pruner=args.pruner, direction=direction, seed=seed,
                    grid_points=args.grid_points, on_trial=report)
    return n_trials


def run(args) -> int:
    from deepnotes.core.runlock import check_writable_folder
    from deepnotes.train import tune

    con = console()
    space, _, _, out, storage_url = _setup(args)
    apply_threads(args)
    check_writable_folder(out)  # before any trial: results go there
    direction = "maximize" if args.metric == "val_accuracy" else "minimize"
    if storage_url.startswith("sqlite:///") and not args.storage:
        out.mkdir(parents=True, exist_ok=True)
    storage = tune.open_storage(storage_url)  # fails here, clearly, before any trial runs
    study_name = args.study
    if args.refine:
        coarse = tune.load_study(storage, args.study, direction)
        if not coarse.trials:
            raise ValueError(f"--refine: study {args.study!r} has no trials yet; run the coarse search first")
        space = tune.refine_space(coarse, space, top_k=args.refine)
        study_name = f"{args.study}-fine"
        con.print("refined space: " + ", ".join(
            f"{p.name} in [{p.low:.4g}, {p.high:.4g}]" if p.kind != "choice" else f"{p.name} in {list(p.choices)}"
            for p in space.values()))
    ns = {**vars(args), "_storage_url": storage_url}
    ns.pop("func", None)
    shares = [args.trials // args.processes + (i < args.trials % args.processes) for i in range(args.processes)]
    shares = [s for s in shares if s]
    try:
        if len(shares) == 1:
            _work(ns, space, study_name, shares[0], args.seed)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(len(shares), mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(_work, ns, space, study_name, n, args.seed + 1000 * i)
                           for i, n in enumerate(shares)]
                for f in futures:
                    f.result()
    finally:  # whatever happened, the trials that ran are written out
        _write_results(con, args, storage, study_name, direction, space, out, storage_url)
    return 0


def _write_results(con, args, storage, study_name, direction, space, out, storage_url) -> None:
    import csv
    import io

    import matplotlib.pyplot as plt

    from deepnotes.core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
    from deepnotes.train import tune

    study = tune.load_study(storage, study_name, direction)
    out.mkdir(parents=True, exist_ok=True)
    rows = tune.trials_table(study)
    buf = io.StringIO()
    cols = ["number", "state", "value", *space]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / f"trials-{study_name}.csv", buf.getvalue())
    fig = tune.plot_trials(study, space)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(out / f"trials-{study_name}.png", png.getvalue())
    states = {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL")}
    try:
        best = study.best_trial
    except ValueError:
        best = None
    summary = {"study": study_name, "storage": storage_url, "trials": len(rows), **{k.lower(): v for k, v in states.items()},
               "metric": args.metric, "best_value": best.value if best else None,
               "best_params": best.params if best else None}
    atomic_write_json(out / f"best-{study_name}.json", summary)
    con.print(f"study {study_name!r}: {len(rows)} trials in {storage_url} "
              f"({states['COMPLETE']} complete, {states['PRUNED']} pruned, {states['FAIL']} failed)")
    if best:
        con.print(f"best {args.metric} {best.value:.4f} with {best.params}")
