"""The callback protocol of :class:`~deepnotes.train.Trainer`.

A callback overrides any of the no-op hooks below. The trainer calls them in this order::

    on_fit_start
      for each epoch:
        on_epoch_start
          for each batch: on_batch_start → (forward, loss, backward) → on_after_backward
                          → (optimizer step) → on_batch_end
        on_validation_end        (only when validation data is given)
        on_epoch_end             (metrics of the epoch are final here)
        on_checkpoint            (only when a checkpoint is written)
    on_fit_end

A callback stops training early by setting ``trainer.should_stop = True``.
"""

from __future__ import annotations

from typing import Any


class Callback:
    """Base class: every hook is a no-op."""

    def on_fit_start(self, trainer) -> None:
        pass

    def on_epoch_start(self, trainer, epoch: int) -> None:
        pass

    def on_batch_start(self, trainer, batch_index: int) -> None:
        pass

    def on_after_backward(self, trainer) -> None:
        pass

    def on_batch_end(self, trainer, batch_index: int, loss: float) -> None:
        pass

    def on_validation_end(self, trainer, metrics: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def on_checkpoint(self, trainer, state: dict[str, Any]) -> None:
        pass

    def on_fit_end(self, trainer) -> None:
        pass


HOOKS = tuple(name for name in vars(Callback) if name.startswith("on_"))


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``mode="auto"`` (default) takes the direction from the trainer's task: ``"max"`` for a metric
    the task marks higher-is-better (``val_accuracy``, ``val_map``), ``"min"`` otherwise.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, mode: str = "auto", min_delta: float = 0.0):
        from deepnotes.core.checks import check_choice, check_float, check_int

        self.monitor = monitor
        self.patience = check_int("patience", patience, min=1)
        self.mode = check_choice("mode", mode, ("auto", "min", "max"))
        self.min_delta = check_float("min_delta", min_delta, min=0.0)
        self.best: float | None = None
        self.bad_epochs = 0

    def on_epoch_end(self, trainer, epoch, metrics):
        if self.monitor not in metrics:
            raise ValueError(f"EarlyStopping monitor {self.monitor!r} is not a metric; have {sorted(metrics)}")
        value = metrics[self.monitor]
        if self.mode == "auto":
            base = self.monitor.split("_", 1)[1] if self.monitor.startswith(("val_", "train_")) else self.monitor
            higher = getattr(getattr(trainer, "task", None), "metrics", {}).get(base, False)
            self.mode = "max" if higher else "min"
        better = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
        if better:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                trainer.should_stop = True
