"""The :class:`Trainer`: fit / evaluate / predict with callbacks, metrics files and exact resume.

The trainer runs the loop and knows no particular problem: what a batch is, what one training
step does and how a model is measured come from its :class:`~deepnotes.train.tasks.Task`
(the default task unless one is named; see ``deepnotes.train.tasks``). ``metrics.csv`` has the columns
``epoch, step, train_<m>… (the task's train metrics), val_<m>… (its evaluation metrics), lr,
seconds``; a task with several optimizers gets one ``lr_<name>`` column per optimizer.

Resuming is bit-exact on the CPU: a checkpoint (written atomically at the end of every epoch when
``out_dir`` is set, the newest ``keep_checkpoints`` kept) holds the model, optimizer and scheduler
state, the epoch and step counters, the global RNG states (python, numpy, torch) and the state of
the training loader's own ``torch.Generator`` — the last is what decides the next epoch's shuffle
order, and without it a resumed run diverges.

Distributed data parallel (DDP): when ``torch.distributed`` is initialized (e.g. under
``torchrun``), the trainer wraps the model in ``DistributedDataParallel``, splits every global batch
of ``batch_size`` over the ranks with a ``DistributedSampler`` (``set_epoch`` each epoch, so the
order changes per epoch and is the same after a resume), evaluates each sample exactly once (no
padding duplicates; sums are all-reduced), and lets only rank 0 write the run directory, the
checkpoints and the progress bar. Checkpoints hold the unwrapped model, so a distributed run's
checkpoint resumes in a single process and back.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from deepnotes.core.checks import check_int, check_type
from deepnotes.core.device import select_device
from deepnotes.core.io import CheckpointError, atomic_write_json, atomic_write_text
from deepnotes.core.runlock import RunLock
from deepnotes.core.seeding import rng_state, set_rng_state
from deepnotes.data.loading import make_loader
from deepnotes.train.callbacks import Callback
from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from deepnotes.train.guards import DivergenceError
from deepnotes.train.tasks import StepContext, Task, get_task


class NonFiniteLossError(RuntimeError):
    """Training met a NaN or infinite loss; the message names the epoch and step."""


def default_loss(task: str | Task | None) -> Callable[..., torch.Tensor] | None:
    """The loss a task trains with when none is named (its :meth:`Task.default_loss`)."""
    return get_task(task).default_loss()


class Trainer:
    """Train a model on a dataset.

    Parameters
    ----------
    model : nn.Module
    optimizer : torch.optim.Optimizer or dict[str, Optimizer]
        Built on ``model``'s parameters. A task with several optimizers (a GAN's generator and
        discriminator) takes a dict keyed by the task's ``optimizer_names``.
    train_data : Dataset
        Map-style dataset; its items are batched by the task's ``collate``.
    val_data : Dataset, optional
        Evaluated at the end of every epoch.
    loss_fn : callable, optional
        Defaults to the task's ``default_loss()``.
    task : str or Task, optional
        A registered task name or a :class:`~deepnotes.train.tasks.Task`; default
        ``deepnotes.train.tasks.DEFAULT_TASK``.
    epochs, batch_size, seed : int
        ``seed`` seeds the training loader's shuffling generator.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    out_dir : path, optional
        Run directory for ``config.json``, ``metrics.csv``, checkpoints, TensorBoard events and
        ``summary.json``. Without it nothing is written.
    scheduler : LRScheduler or dict[str, LRScheduler], optional
        Stepped once per epoch; a dict maps optimizer names to their schedulers.
    callbacks : sequence of Callback
    progress : bool
        Show a progress bar (only when stderr is a terminal).
    config : dict, optional
        Written to ``config.json`` as given (the CLI passes its arguments).
    distributed : bool, optional
        Train with DDP over the initialized process group; ``None`` (default) means "when
        ``torch.distributed`` is initialized". ``batch_size`` is then the *global* batch and must be
        divisible by the world size.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | dict[str, torch.optim.Optimizer],
        train_data: Dataset,
        *,
        val_data: Dataset | None = None,
        loss_fn: Callable[..., torch.Tensor] | None = None,
        task: str | Task | None = None,
        epochs: int = 10,
        batch_size: int = 32,
        seed: int = 0,
        device: str | torch.device = "cpu",
        out_dir: str | Path | None = None,
        scheduler: Any = None,
        callbacks: Sequence[Callback] = (),
        progress: bool = False,
        keep_checkpoints: int = 2,
        num_workers: int = 0,
        config: dict[str, Any] | None = None,
        distributed: bool | None = None,
    ):
        check_type("model", model, nn.Module)
        self.task = get_task(task)
        self.optimizers = _named_optimizers(optimizer, self.task)
        self.schedulers = _named_schedulers(scheduler, self.optimizers)
        self.epochs = check_int("epochs", epochs, min=1)
        self.batch_size = check_int("batch_size", batch_size, min=1)
        self.seed = check_int("seed", seed, min=0)
        self.keep_checkpoints = check_int("keep_checkpoints", keep_checkpoints, min=1)
        for i, cb in enumerate(callbacks):
            check_type(f"callbacks[{i}]", cb, Callback)
        self.device = select_device(device)
        self.model = model.to(self.device)
        self.loss_fn = loss_fn or self.task.default_loss()
        self.callbacks = list(callbacks)
        self.progress = progress
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.config = dict(config or {})
        from deepnotes.train import distributed as dist_mod

        self.rank, self.world_size = dist_mod.rank_and_world(distributed)
        self._dist = self.world_size > 1 or (distributed is not False and dist_mod.is_initialized())
        self.is_main = self.rank == 0
        self.module = self.model  # the unwrapped model (what checkpoints hold)
        if self._dist:
            self.train_loader = dist_mod.distributed_loader(
                train_data, self.batch_size, self.rank, self.world_size, seed=self.seed,
                num_workers=num_workers, collate_fn=self.task.collate,
            )
            self.model = dist_mod.wrap_ddp(self.model, self.device)
        else:
            self.train_loader = make_loader(
                train_data, self.batch_size, shuffle=True, seed=self.seed, num_workers=num_workers,
                collate_fn=self.task.collate,
            )
        if val_data is not None and len(val_data) == 0:
            raise ValueError("val_data is empty: pass None for no validation, or at least one sample")
        self.val_data = val_data
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.history: list[dict[str, float]] = []
        self.should_stop = False
        self._tb = None
        self._ctx = StepContext(self)
        self._batch_index = 0

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The first (for most tasks the only) optimizer."""
        return next(iter(self.optimizers.values()))

    @property
    def scheduler(self) -> Any:
        """The first optimizer's scheduler, or None."""
        return self.schedulers.get(next(iter(self.optimizers)))

    @property
    def csv_columns(self) -> tuple[str, ...]:
        """The columns of ``metrics.csv``, from the task's metric names."""
        lrs = ("lr",) if len(self.optimizers) == 1 else tuple(f"lr_{n}" for n in self.optimizers)
        return (
            "epoch", "step",
            *(f"train_{m}" for m in self.task.train_metrics),
            *(f"val_{m}" for m in self.task.metrics),
            *lrs, "seconds",
        )

    # -- public API -------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> list[dict[str, float]]:
        """Train until ``epochs`` epochs are complete; returns the per-epoch metrics.

        With ``resume=True`` the newest checkpoint in ``out_dir/checkpoints`` is restored first
        (``ValueError`` when there is none; :class:`~deepnotes.core.io.CheckpointError` naming
        the file when it does not fit this model, optimizer or task).

        With ``out_dir``, the run directory has one writer: an exclusive lock on ``out_dir/.lock``
        is held during ``fit`` (released on exit, on an exception and, by the operating system,
        when the process is killed), and a second trainer on the same folder is refused. A fresh
        ``fit`` refuses a folder that already holds another run's checkpoints. ``summary.json``
        records how the run ended: ``completed``, ``stopped early``, ``non-finite loss``,
        ``diverged``, ``interrupted`` (Ctrl-C) or ``failed`` (any other exception, with its
        message).
        """
        if resume and self.out_dir is None:
            raise ValueError("resume=True needs out_dir (where the checkpoints are)")
        lock = RunLock(self.out_dir) if self.out_dir is not None and self.is_main else None
        if lock is not None:
            lock.acquire()
        try:
            return self._fit_locked(resume)
        finally:
            if lock is not None:
                lock.release()

    def _fit_locked(self, resume: bool) -> list[dict[str, float]]:
        if resume:
            found = list_checkpoints(self.checkpoint_dir)
            if not found:
                raise ValueError(f"resume=True but no checkpoint in {str(self.checkpoint_dir)!r}")
            self._resume_from(found[-1])
        elif self.out_dir is not None and list_checkpoints(self.checkpoint_dir):
            raise ValueError(
                f"out_dir {str(self.out_dir)!r} already holds the checkpoints of a run; "
                "fit(resume=True) continues it, or choose another out_dir"
            )
        self._start_run(resume)
        status, message = "completed", ""
        t_fit = time.perf_counter()
        try:
            self._call("on_fit_start")
            while self.epoch < self.epochs and not self.should_stop:
                self._run_epoch()
            if self.should_stop and self.epoch < self.epochs:
                status = "stopped early"
        except NonFiniteLossError as exc:
            status, message = "non-finite loss", str(exc)
            raise
        except DivergenceError as exc:
            status, message = "diverged", str(exc)
            raise
        except KeyboardInterrupt:
            status, message = "interrupted", "interrupted by the user"
            raise
        except Exception as exc:
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._finish_run(status, message, time.perf_counter() - t_fit)
        self._call("on_fit_end")
        return self.history

    def _resume_from(self, path: Path) -> None:
        """Load checkpoint ``path``; anything that does not fit this run is a CheckpointError naming it."""
        state = load_checkpoint(path)
        try:
            self.load_state(state)
        except CheckpointError:
            raise
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
            raise CheckpointError(f"checkpoint {str(path)!r} does not fit this run: {detail}") from exc

    @torch.no_grad()
    def evaluate(self, data: Dataset, batch_size: int | None = None) -> dict[str, float]:
        """The task's metrics over ``data`` (e.g. the mean loss and the accuracy), in eval mode.

        Distributed: rank ``r`` evaluates samples ``r, r + W, r + 2W, …`` (every sample exactly
        once) and the task combines the ranks' sums (or gathered predictions), so every rank
        returns the single-process value.
        """
        was_training = self.model.training
        self.model.eval()
        if self._dist:
            from deepnotes.train.distributed import broadcast_buffers, shard

            # each rank's batch-norm statistics drifted apart during training (DDP copies rank 0's
            # only at the next training forward); evaluate every shard with rank 0's, as saved
            broadcast_buffers(self.module)
            data = shard(data, self.rank, self.world_size)
        try:
            loader = self.task.loader(data, batch_size or self.batch_size) if len(data) else ()
            batches = (self.task.to_device(b, self.device) for b in loader)
            return self.task.evaluate(self._ctx, batches)
        finally:
            self.model.train(was_training)

    @torch.no_grad()
    def predict(self, data: Dataset | torch.Tensor, batch_size: int | None = None) -> Any:
        """Model outputs for every item of ``data`` (a dataset or an input tensor), in eval mode.

        Tensor outputs are concatenated along the first dimension; other outputs (a detector's
        lists of dicts) are returned as one list.
        """
        was_training = self.model.training
        self.model.eval()
        try:
            if isinstance(data, torch.Tensor):
                batches = data.split(batch_size or self.batch_size)
            else:
                batches = self.task.loader(data, batch_size or self.batch_size)
            outs = [_to_cpu(self.task.predict_step(self.module, self.task.to_device(b, self.device)))
                    for b in batches]
            if outs and all(isinstance(o, torch.Tensor) for o in outs):
                return torch.cat(outs)
            return [item for o in outs for item in o]
        finally:
            self.model.train(was_training)

    # -- state --------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        if self.out_dir is None:
            raise ValueError("this trainer has no out_dir")
        return self.out_dir / "checkpoints"

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: plain tensors, ints, floats and dicts."""
        state: dict[str, Any] = {
            "model": self.module.state_dict(),
            "config_json": json.dumps(self.config, sort_keys=True, default=str),  # what ran, as plain text
        }
        if len(self.optimizers) == 1:
            state["optimizer"] = self.optimizer.state_dict()
            state["scheduler"] = self.scheduler.state_dict() if self.scheduler is not None else None
        else:
            state["optimizers"] = {n: o.state_dict() for n, o in self.optimizers.items()}
            state["schedulers"] = {n: s.state_dict() for n, s in self.schedulers.items()}
        task_state = self.task.state_dict()
        if task_state:
            state["task"] = task_state
        state.update({
            "epoch": self.epoch,
            "step": self.step,
            "rng": rng_state(),
            "loader_generator": self.train_loader.generator.get_state(),
            "history": self.history,
        })
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        if "optimizers" in state:
            saved = sorted(state["optimizers"])
            if saved != sorted(self.optimizers):
                raise ValueError(f"the checkpoint holds optimizers {saved}, this run has {sorted(self.optimizers)}")
            for n, o in self.optimizers.items():
                _check_same_optimizer(o, state["optimizers"][n], n)
                o.load_state_dict(state["optimizers"][n])
            for n, s in self.schedulers.items():
                if n in state.get("schedulers", {}):
                    s.load_state_dict(state["schedulers"][n])
        else:
            if len(self.optimizers) != 1:
                raise ValueError(f"the checkpoint holds one optimizer, this run has {sorted(self.optimizers)}")
            _check_same_optimizer(self.optimizer, state["optimizer"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
        self.task.load_state_dict(state.get("task", {}))
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = [dict(h) for h in state["history"]]
        set_rng_state(state["rng"])
        _restore_loader_state(self.train_loader, state["loader_generator"])

    # -- internals ------------------------------------------------------------------------------
    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _optimize(self, loss: torch.Tensor, name: str | None) -> float:
        """Finite check, zero_grad, backward, ``on_after_backward``, step (see StepContext.optimize)."""
        if name is None:
            if len(self.optimizers) != 1:
                raise ValueError(f"task {self.task.name!r} has optimizers {list(self.optimizers)}: name the one to step")
            name = next(iter(self.optimizers))
        elif name not in self.optimizers:
            raise ValueError(f"no optimizer named {name!r}; this run has {list(self.optimizers)}")
        optimizer = self.optimizers[name]
        if self._dist:  # the global batch's loss, identical on every rank
            from deepnotes.train.distributed import all_reduce_mean

            value = all_reduce_mean(loss.detach())
        else:
            value = loss.item()
        if not math.isfinite(value):
            which = f" ({name} update)" if len(self.optimizers) > 1 else ""
            raise NonFiniteLossError(
                f"loss is {value} at epoch {self.epoch + 1}, step {self.step + 1} (batch {self._batch_index}){which}; "
                "training stopped, the last good checkpoint is kept"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._call("on_after_backward")
        optimizer.step()
        return value

    def _all_reduce_sums(self, sums: dict[str, float]) -> dict[str, float]:
        if not self._dist:
            return dict(sums)
        from deepnotes.train.distributed import all_gather_object, all_reduce_sums

        # a rank whose shard had no batch has no keys: agree on the union first
        keys = sorted({k for ks in all_gather_object(sorted(sums)) for k in ks})
        values = all_reduce_sums([sums.get(k, 0.0) for k in keys], self.device)
        return dict(zip(keys, values))

    def _all_gather_object(self, obj: Any) -> list[Any]:
        if not self._dist:
            return [obj]
        from deepnotes.train.distributed import all_gather_object

        return all_gather_object(obj)

    def _start_run(self, resume: bool = False) -> None:
        if self.out_dir is None or not self.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # temporaries of a writer killed mid-write (we hold the lock: nobody else is writing)
        for folder in (self.out_dir, self.checkpoint_dir):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
        if self.config or not (resume and (self.out_dir / "config.json").is_file()):
            atomic_write_json(self.out_dir / "config.json", self.config)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            self._tb = None
        else:
            self._tb = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"), purge_step=self.epoch + 1)

    def _finish_run(self, status: str, message: str, seconds: float) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self.out_dir is None or not self.is_main:
            return
        summary = {
            "status": status,
            "message": message,
            "epochs_completed": self.epoch,
            "steps": self.step,
            "final": self.history[-1] if self.history else {},
            "fit_seconds": round(seconds, 3),
        }
        monitor = f"val_{self.task.monitor}"
        if self.history and monitor in self.history[-1]:
            pick = max if self.task.metrics.get(self.task.monitor, False) else min
            best = pick(self.history, key=lambda h: h[monitor])
            summary[f"best_epoch_by_{monitor}"] = int(best["epoch"])
        self.summary = summary
        try:
            atomic_write_json(self.out_dir / "summary.json", summary)
        except OSError:
            if status == "completed":
                raise
            # a failed run (a full disk, say) keeps its own exception; the summary is best effort

    def _progress(self):
        if not (self.progress and self.is_main and sys.stderr.isatty()):
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        return Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeRemainingColumn(),
            transient=True,
        )

    def _run_epoch(self) -> None:
        epoch = self.epoch + 1
        t0 = time.perf_counter()
        self._call("on_epoch_start", epoch)
        if self._dist:
            self.train_loader.sampler.set_epoch(self.epoch)  # a new order per epoch, same on resume
        self.model.train()
        sums: dict[str, float] = {}
        bar = self._progress()
        bar_id = None
        if bar is not None:
            bar.start()
            bar_id = bar.add_task("train", total=len(self.train_loader), epoch=epoch, loss=float("nan"))
        try:
            for i, batch in enumerate(self.train_loader):
                self._batch_index = i
                self._call("on_batch_start", i)
                batch = self.task.to_device(batch, self.device)
                self._ctx.last_loss = None
                for k, v in self.task.training_step(self._ctx, batch).items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                self.step += 1
                value = self._ctx.last_loss if self._ctx.last_loss is not None else float("nan")
                self._call("on_batch_end", i, value)
                if bar is not None:
                    bar.update(bar_id, advance=1, loss=value)
        finally:
            if bar is not None:
                bar.stop()
        sums = self._all_reduce_sums(sums)
        metrics: dict[str, float] = {"epoch": epoch, "step": self.step}
        metrics.update({f"train_{k}": v for k, v in self.task.summarize(sums).items()})
        if self.val_data is not None:
            val = {f"val_{k}": v for k, v in self.evaluate(self.val_data).items()}
            metrics.update(val)
            self._call("on_validation_end", val)
        if len(self.optimizers) == 1:
            metrics["lr"] = float(self.optimizer.param_groups[0]["lr"])
        else:
            metrics.update({f"lr_{n}": float(o.param_groups[0]["lr"]) for n, o in self.optimizers.items()})
        for s in self.schedulers.values():
            s.step()
        metrics["seconds"] = time.perf_counter() - t0
        self.history.append(metrics)
        self.epoch = epoch
        self._call("on_epoch_end", epoch, metrics)
        self._write_metrics(metrics)
        if self.out_dir is not None:
            state = self.state_dict()
            if self.is_main:  # one writer; the others wait so that a resume sees a complete file
                save_checkpoint(state, self.checkpoint_dir, epoch, keep=self.keep_checkpoints)
            if self._dist:
                from deepnotes.train.distributed import barrier

                barrier()
            self._call("on_checkpoint", state)

    def _write_metrics(self, metrics: dict[str, float]) -> None:
        if self.out_dir is None or not self.is_main:
            return
        columns = self.csv_columns
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: row.get(k, "") for k in columns})
        atomic_write_text(self.out_dir / "metrics.csv", buf.getvalue())
        if self._tb is not None:
            for k, v in metrics.items():
                if k not in ("epoch", "step"):
                    self._tb.add_scalar(k, v, int(metrics["epoch"]))


def _check_same_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any], name: str = "") -> None:
    """The saved optimizer state must come from the same kind of optimizer (same hyperparameter names)."""
    ours = [sorted(k for k in g if k != "params") for g in optimizer.param_groups]
    theirs = [sorted(k for k in g if k != "params") for g in saved.get("param_groups", [])]
    if ours != theirs:
        which = f"optimizer {name!r}" if name else "optimizer"
        raise ValueError(
            f"the saved {which} is a different kind ({type(optimizer).__name__} here); "
            f"saved settings {theirs[0] if theirs else []}, this run's {ours[0] if ours else []}"
        )


def _named_optimizers(optimizer: Any, task: Task) -> dict[str, torch.optim.Optimizer]:
    names = task.optimizer_names
    if isinstance(optimizer, dict):
        if sorted(optimizer) != sorted(names):
            raise ValueError(f"optimizer: task {task.name!r} needs optimizers named {list(names)}, got {sorted(optimizer)}")
        for n in names:
            check_type(f"optimizer[{n!r}]", optimizer[n], torch.optim.Optimizer)
        return {n: optimizer[n] for n in names}
    check_type("optimizer", optimizer, torch.optim.Optimizer)
    if len(names) != 1:
        raise ValueError(f"optimizer: task {task.name!r} needs a dict of optimizers named {list(names)}")
    return {names[0]: optimizer}


def _named_schedulers(scheduler: Any, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Any]:
    if scheduler is None:
        return {}
    if isinstance(scheduler, dict):
        unknown = sorted(set(scheduler) - set(optimizers))
        if unknown:
            raise ValueError(f"scheduler: no optimizer named {unknown}; optimizers are {list(optimizers)}")
        return {n: s for n, s in scheduler.items() if s is not None}
    if len(optimizers) != 1:
        raise ValueError(f"scheduler: with optimizers {list(optimizers)}, pass a dict keyed by their names")
    return {next(iter(optimizers)): scheduler}


def _to_cpu(out: Any) -> Any:
    from deepnotes.train.tasks import move_to

    return move_to(out, torch.device("cpu"))


def _restore_loader_state(loader: DataLoader, generator_state: torch.Tensor) -> None:
    """Put the training loader's shuffling generator back where the checkpoint left it."""
    loader.generator.set_state(generator_state)
