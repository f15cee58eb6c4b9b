"""The :class:`Trainer`: fit / evaluate / predict with callbacks, metrics files and exact resume.

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
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from deepnotes.core.checks import check_choice, check_int, check_type
from deepnotes.core.device import select_device
from deepnotes.core.io import atomic_write_json, atomic_write_text
from deepnotes.core.seeding import rng_state, set_rng_state
from deepnotes.data.loading import make_loader
from deepnotes.train.callbacks import Callback
from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from deepnotes.train.guards import DivergenceError

CSV_COLUMNS = ("epoch", "step", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


class NonFiniteLossError(RuntimeError):
    """Training met a NaN or infinite loss; the message names the epoch and step."""


def default_loss(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Softmax cross-entropy for classification, mean squared error for regression."""
    return F.cross_entropy if task == "classification" else F.mse_loss


class Trainer:
    """Train a model on a dataset.

    Parameters
    ----------
    model : nn.Module
    optimizer : torch.optim.Optimizer
        Built on ``model``'s parameters.
    train_data : Dataset
        Map-style dataset yielding ``(input, target)``.
    val_data : Dataset, optional
        Evaluated at the end of every epoch.
    loss_fn : callable(output, target) -> scalar Tensor, optional
        Defaults to cross-entropy (classification) or MSE (regression).
    task : {"classification", "regression"}
        Classification also reports accuracy.
    epochs, batch_size, seed : int
        ``seed`` seeds the training loader's shuffling generator.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    out_dir : path, optional
        Run directory for ``config.json``, ``metrics.csv``, checkpoints, TensorBoard events and
        ``summary.json``. Without it nothing is written.
    scheduler : torch.optim.lr_scheduler.LRScheduler, optional
        Stepped once per epoch.
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
        optimizer: torch.optim.Optimizer,
        train_data: Dataset,
        *,
        val_data: Dataset | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        task: str = "classification",
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
        check_type("optimizer", optimizer, torch.optim.Optimizer)
        self.task = check_choice("task", task, ("classification", "regression"))
        self.epochs = check_int("epochs", epochs, min=1)
        self.batch_size = check_int("batch_size", batch_size, min=1)
        self.seed = check_int("seed", seed, min=0)
        self.keep_checkpoints = check_int("keep_checkpoints", keep_checkpoints, min=1)
        for i, cb in enumerate(callbacks):
            check_type(f"callbacks[{i}]", cb, Callback)
        self.device = select_device(device)
        self.model = model.to(self.device)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loss_fn = loss_fn or default_loss(self.task)
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
                train_data, self.batch_size, self.rank, self.world_size, seed=self.seed, num_workers=num_workers
            )
            self.model = dist_mod.wrap_ddp(self.model, self.device)
        else:
            self.train_loader = make_loader(
                train_data, self.batch_size, shuffle=True, seed=self.seed, num_workers=num_workers
            )
        self.val_data = val_data
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.history: list[dict[str, float]] = []
        self.should_stop = False
        self._tb = None

    # -- public API -------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> list[dict[str, float]]:
        """Train until ``epochs`` epochs are complete; returns the per-epoch metrics.

        With ``resume=True`` the newest checkpoint in ``out_dir/checkpoints`` is restored first
        (``ValueError`` when there is none).
        """
        if resume:
            if self.out_dir is None:
                raise ValueError("resume=True needs out_dir (where the checkpoints are)")
            found = list_checkpoints(self.checkpoint_dir)
            if not found:
                raise ValueError(f"resume=True but no checkpoint in {str(self.checkpoint_dir)!r}")
            self.load_state(load_checkpoint(found[-1]))
        self._start_run()
        status, message = "completed", ""
        t_fit = time.perf_counter()
        self._call("on_fit_start")
        try:
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
        finally:
            self._finish_run(status, message, time.perf_counter() - t_fit)
        self._call("on_fit_end")
        return self.history

    @torch.no_grad()
    def evaluate(self, data: Dataset, batch_size: int | None = None) -> dict[str, float]:
        """Mean loss (and accuracy for classification) over ``data``, in eval mode.

        Distributed: rank ``r`` evaluates samples ``r, r + W, r + 2W, …`` (every sample exactly
        once) and the sums are all-reduced, so every rank returns the single-process value.
        """
        was_training = self.model.training
        self.model.eval()
        total, loss_sum, correct, targets = 0, 0.0, 0, 0
        if self._dist:
            from deepnotes.train.distributed import shard

            data = shard(data, self.rank, self.world_size)
        try:
            for x, y in (make_loader(data, batch_size or self.batch_size) if len(data) else ()):
                x, y = x.to(self.device), y.to(self.device)
                out = self.module(x)
                loss_sum += float(self.loss_fn(out, y)) * len(x)
                if self.task == "classification":
                    correct += int((out.argmax(1) == y).sum())
                    targets += y.numel()
                total += len(x)
        finally:
            self.model.train(was_training)
        if self._dist:
            from deepnotes.train.distributed import all_reduce_sums

            loss_sum, correct, total, targets = all_reduce_sums([loss_sum, correct, total, targets], self.device)
            total = int(total)
        metrics = {"loss": loss_sum / total}
        if self.task == "classification":
            # per target, not per sample: sequence tasks have one class per time step
            metrics["accuracy"] = correct / targets
        return metrics

    @torch.no_grad()
    def predict(self, data: Dataset | torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Model outputs for every item of ``data`` (a dataset or an input tensor), in eval mode."""
        was_training = self.model.training
        self.model.eval()
        try:
            if isinstance(data, torch.Tensor):
                chunks = data.split(batch_size or self.batch_size)
                return torch.cat([self.module(c.to(self.device)).cpu() for c in chunks])
            outs = [self.module(x.to(self.device)).cpu() for x, _ in make_loader(data, batch_size or self.batch_size)]
            return torch.cat(outs)
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
        return {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "step": self.step,
            "rng": rng_state(),
            "loader_generator": self.train_loader.generator.get_state(),
            "history": self.history,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = [dict(h) for h in state["history"]]
        set_rng_state(state["rng"])
        _restore_loader_state(self.train_loader, state["loader_generator"])

    # -- internals ------------------------------------------------------------------------------
    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _start_run(self) -> None:
        if self.out_dir is None or not self.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
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
        if self.history and "val_loss" in self.history[-1]:
            best = min(self.history, key=lambda h: h["val_loss"])
            summary["best_epoch_by_val_loss"] = int(best["epoch"])
        self.summary = summary
        atomic_write_json(self.out_dir / "summary.json", summary)

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
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        seen = targets = 0
        bar = self._progress()
        task_id = None
        if bar is not None:
            bar.start()
            task_id = bar.add_task("train", total=len(self.train_loader), epoch=epoch, loss=float("nan"))
        try:
            for i, (x, y) in enumerate(self.train_loader):
                self._call("on_batch_start", i)
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                out = self.model(x)
                loss = self.loss_fn(out, y)
                if self._dist:  # the global batch's loss, identical on every rank
                    from deepnotes.train.distributed import all_reduce_mean

                    value = all_reduce_mean(loss.detach())
                else:
                    value = loss.item()
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"loss is {value} at epoch {epoch}, step {self.step + 1} (batch {i}); "
                        "training stopped, the last good checkpoint is kept"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self._call("on_after_backward")
                self.optimizer.step()
                self.step += 1
                n = len(x)
                seen += n
                loss_sum += value * n
                if self.task == "classification":
                    correct += (out.detach().argmax(1) == y).sum().cpu()
                    targets += y.numel()
                self._call("on_batch_end", i, value)
                if bar is not None:
                    bar.update(task_id, advance=1, loss=value)
        finally:
            if bar is not None:
                bar.stop()
        if self._dist:
            from deepnotes.train.distributed import all_reduce_sums

            loss_sum, correct, seen, targets = all_reduce_sums(
                [float(loss_sum), int(correct), seen, targets], self.device
            )
        metrics: dict[str, float] = {"epoch": epoch, "step": self.step, "train_loss": float(loss_sum) / seen}
        if self.task == "classification":
            metrics["train_accuracy"] = int(correct) / targets
        if self.val_data is not None:
            val = self.evaluate(self.val_data)
            metrics.update({f"val_{k}": v for k, v in val.items()})
            self._call("on_validation_end", {f"val_{k}": v for k, v in val.items()})
        metrics["lr"] = float(self.optimizer.param_groups[0]["lr"])
        if self.scheduler is not None:
            self.scheduler.step()
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
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
        atomic_write_text(self.out_dir / "metrics.csv", buf.getvalue())
        if self._tb is not None:
            for k, v in metrics.items():
                if k not in ("epoch", "step"):
                    self._tb.add_scalar(k, v, int(metrics["epoch"]))


def _restore_loader_state(loader: DataLoader, generator_state: torch.Tensor) -> None:
    """Put the training loader's shuffling generator back where the checkpoint left it."""
    loader.generator.set_state(generator_state)
