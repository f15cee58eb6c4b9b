"""Training: the Trainer, its callbacks and checkpoints."""

from deepnotes.train import torch_optimizers  # noqa: F401  (registers torch_*)
from deepnotes.train.callbacks import Callback, EarlyStopping
from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from deepnotes.train.trainer import NonFiniteLossError, Trainer, default_loss

__all__ = [
    "Callback",
    "EarlyStopping",
    "NonFiniteLossError",
    "Trainer",
    "default_loss",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]
