"""Callbacks the CLI uses: a line per event as it happens, and a schedule rebuilt on extension."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from deepnotes.train.callbacks import Callback
from deepnotes.train.sanity import SanityChecks


class EpochReporter(Callback):
    """Emit one line per sanity result and per finished epoch through ``emit`` as they happen.

    The CLI passes a function that prints and flushes, so a run whose output goes to a log file
    shows its progress epoch by epoch instead of all at the end.
    """

    def __init__(self, emit: Callable[[str], Any]):
        self.emit = emit

    def on_fit_start(self, trainer):
        for cb in trainer.callbacks:
            if isinstance(cb, SanityChecks):
                for r in cb.results:
                    self.emit(("[green]" if r.passed else "[red]") + f"sanity {r.line()}[/]")

    def on_epoch_end(self, trainer, epoch, metrics):
        line = f"epoch {int(epoch):>3}"
        for k in trainer.csv_columns:
            if k.startswith(("train_", "val_")) and k in metrics:
                line += f"  {k} {metrics[k]:.4f}"
        self.emit(line)


class RebuildSchedule(Callback):
    """Extending a run: the LR schedule is rebuilt for the new horizon from the resumed epoch.

    A checkpoint's scheduler was planned for the run's old number of epochs (a 2-epoch cosine
    schedule reaches LR 0 at its end). After a resume with more epochs, each epoch gets the LR
    that a run planned with the new horizon from the start has at that epoch: the factory builds
    a new scheduler on each optimizer that has one, which is then stepped to the resumed epoch.
    """

    def __init__(self, factory: Callable[[Any], Any]):
        self.factory = factory

    def on_fit_start(self, trainer):
        if trainer.epoch == 0:
            return
        for name in list(trainer.schedulers):
            opt = trainer.optimizers[name]
            for group in opt.param_groups:  # back to the base LR, as a fresh scheduler expects
                group["lr"] = group.pop("initial_lr", group["lr"])
            sched = self.factory(opt)
            with warnings.catch_warnings():  # stepping to the resumed epoch before any optimizer step
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(trainer.epoch):
                    sched.step()
            trainer.schedulers[name] = sched
