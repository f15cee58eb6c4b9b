"""The task protocol: what a batch is, how one training step goes, and how a model is measured.

The :class:`~deepnotes.train.Trainer` runs the loop — epochs, callbacks, checkpoints, exact
resume, the non-finite-loss stop, DDP, the progress bar and the run-directory files — and knows
nothing of any particular problem. Everything that differs between classification, detection,
segmentation, generation or graphs lives in a :class:`Task`:

==================  ==========================================================================
``collate``         a list of dataset items → one batch
``training_step``   one batch → sums to add up over the epoch (calls ``ctx.optimize(loss)``)
``summarize``       the epoch's sums → named metrics (``{"loss": ..., "accuracy": ...}``)
``evaluate``        a loader → named metrics (default: ``eval_step`` sums, then ``summarize``)
``predict_step``    one batch → the model's predictions
``default_loss``    the loss used when the user names none
``metrics``         each evaluation metric's name → ``True`` when higher is better
==================  ==========================================================================

Why sums: a ratio such as accuracy must be ``Σ correct / Σ targets`` over the whole epoch, also
over the ranks of a distributed run. Averaging per-batch or per-rank ratios is wrong whenever the
batches or shards differ in size, so a task returns numerators and denominators and divides once,
after the trainer has added them up (and all-reduced them under DDP).

A new task is one registered class in its own file of this package::

    @TASKS.register("classification")
    class ClassificationTask(Task): ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.dataloader import default_collate


def move_to(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor moved to ``device`` (through tuples, lists and dicts)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(move_to(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


class StepContext:
    """What a task sees of the trainer during a step: the model, the loss, the optimizers.

    Attributes
    ----------
    model : nn.Module
        The model to call for a training forward pass (wrapped in DDP when distributed).
    module : nn.Module
        The unwrapped model (for evaluation and for reaching sub-networks such as a GAN's).
    loss_fn : callable
    device : torch.device
    optimizers : dict[str, Optimizer]
    """

    def __init__(self, trainer: Any):
        self._trainer = trainer
        self.last_loss: float | None = None  # the first optimized loss of the current step

    # read-only views of the trainer's state
    model = property(lambda self: self._trainer.model)
    module = property(lambda self: self._trainer.module)
    loss_fn = property(lambda self: self._trainer.loss_fn)
    device = property(lambda self: self._trainer.device)
    optimizers = property(lambda self: self._trainer.optimizers)
    epoch = property(lambda self: self._trainer.epoch)
    step = property(lambda self: self._trainer.step)
    distributed = property(lambda self: self._trainer._dist)

    def optimize(self, loss: torch.Tensor, name: str | None = None) -> float:
        """One update of optimizer ``name`` (the only one when ``None``) on ``loss``.

        Checks that the loss is finite (the global mean over the ranks under DDP) — raising
        :class:`~deepnotes.train.NonFiniteLossError` before any parameter moves — then zeroes the
        gradients, back-propagates, runs the ``on_after_backward`` callbacks and steps. Returns the
        loss as a float (the mean over the ranks under DDP).
        """
        value = self._trainer._optimize(loss, name)
        if self.last_loss is None:
            self.last_loss = value
        return value

    def all_reduce_sums(self, sums: dict[str, float]) -> dict[str, float]:
        """``sums`` added up over the ranks (unchanged in a single process)."""
        return self._trainer._all_reduce_sums(sums)

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
        return self._trainer._all_gather_object(obj)


class Task:
    """Base class of a task; subclasses override what differs from this default.

    The defaults describe a supervised task on ``(input, target)`` pairs with one optimizer and
    the mean loss as its only metric. Class attributes:

    metrics : dict[str, bool]
        Evaluation metrics (``val_<name>`` in ``metrics.csv``, ``test_<name>`` in
        ``summary.json``) and whether higher is better for each.
    train_metrics : tuple[str, ...]
        The ``train_<name>`` columns of ``metrics.csv``.
    monitor : str
        The evaluation metric that picks the best epoch.
    optimizer_names : tuple[str, ...]
        With more than one, the trainer takes a dict of optimizers under these names.
    generic_models : bool
        Models registered without a ``task`` (tensor in, tensor out) fit this task.
    data_tasks : tuple[str, ...]
        Datasets of these other tasks fit too (a generator trains on labelled images and ignores
        the labels).
    """

    name: ClassVar[str] = ""
    metrics: ClassVar[dict[str, bool]] = {"loss": False}
    train_metrics: ClassVar[tuple[str, ...]] = ("loss",)
    monitor: ClassVar[str] = "loss"
    optimizer_names: ClassVar[tuple[str, ...]] = ("default",)
    generic_models: ClassVar[bool] = False
    data_tasks: ClassVar[tuple[str, ...]] = ()

    # -- data ------------------------------------------------------------------------------------
    def collate(self, samples: list[Any]) -> Any:
        """A list of dataset items → one batch (default: torch's ``default_collate``)."""
        return default_collate(samples)

    def to_device(self, batch: Any, device: torch.device) -> Any:
        return move_to(batch, device)

    def batch_size(self, batch: Any) -> int:
        """Number of samples in ``batch`` (default: the length of its first element)."""
        return len(batch[0])

    # -- training --------------------------------------------------------------------------------
    def default_loss(self) -> Callable[..., torch.Tensor] | None:
        return None

    def training_step(self, ctx: StepContext, batch: Any) -> dict[str, float]:
        """Forward, loss, one update; returns sums to add up over the epoch."""
        x, y = batch
        value = ctx.optimize(ctx.loss_fn(ctx.model(x), y))
        n = self.batch_size(batch)
        return {"loss": value * n, "count": n}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        """The epoch's (all-reduced) sums → metrics."""
        return {"loss": sums["loss"] / sums["count"]}

    # -- evaluation ------------------------------------------------------------------------------
    def eval_step(self, ctx: StepContext, batch: Any) -> dict[str, float]:
        """Sums for one batch, in eval mode without gradients (default: the summed loss)."""
        x, y = batch
        n = self.batch_size(batch)
        return {"loss": float(ctx.loss_fn(ctx.module(x), y)) * n, "count": n}

    def evaluate(self, ctx: StepContext, batches: Iterable[Any]) -> dict[str, float]:
        """Metrics over every batch of this rank's shard, combined over the ranks.

        Override when sums do not suffice (a detector's mAP needs every prediction: gather them
        with ``ctx.all_gather_object``).
        """
        sums: dict[str, float] = {}
        for batch in batches:
            for k, v in self.eval_step(ctx, batch).items():
                sums[k] = sums.get(k, 0.0) + float(v)
        sums = ctx.all_reduce_sums(sums)
        if not sums.get("count"):
            raise ValueError("evaluation data is empty: nothing to measure")
        return self.summarize(sums)

    # -- prediction ------------------------------------------------------------------------------
    def predict_step(self, module: nn.Module, batch: Any) -> Any:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return module(x)

    # -- model construction (used by the CLI) ----------------------------------------------------
    def build_model(self, name: str, splits: Any, **kwargs: Any) -> nn.Module:
        from deepnotes.core.registry import MODELS

        return MODELS.create(name, splits.in_shape, splits.num_classes, **kwargs)

    def optimizer_parameters(self, model: nn.Module) -> dict[str, Any]:
        """The parameters each named optimizer updates (the CLI builds one optimizer per name)."""
        return {self.optimizer_names[0]: model.parameters()}

    def callbacks(self) -> list[Any]:
        """Callbacks the CLI adds for this task (e.g. a generator's sample grid per epoch)."""
        return []

    # -- state saved in checkpoints --------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"task {self.name!r} keeps no state, but the checkpoint has {sorted(state)}")

    def loader(self, data: Any, batch_size: int, **kwargs: Any) -> DataLoader:
        """An evaluation loader of ``data`` with this task's collate (no shuffling)."""
        from deepnotes.data.loading import make_loader

        return make_loader(data, batch_size, collate_fn=self.collate, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
