"""Training: the Trainer, its callbacks and checkpoints, monitoring, search and distributed runs."""

from deepnotes.train import torch_optimizers  # noqa: F401  (registers torch_*)
from deepnotes.train.callbacks import Callback, EarlyStopping
from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from deepnotes.train.guards import DivergenceError, DivergenceGuard, MaxNorm, WeightPenalty
from deepnotes.train.layerwise import LayerwiseResult, greedy_layerwise
from deepnotes.train.lr_find import LRFindResult, lr_range_test, suggest_lr
from deepnotes.train.plots import CurvePlotter, plot_curves, save_curves
from deepnotes.train.probes import GradientNormProbe, layer_gradient_norms
from deepnotes.train.sanity import (
    SanityChecks,
    SanityResult,
    check_initial_loss,
    check_overfit_tiny,
    expected_initial_loss,
)
from deepnotes.train.trainer import NonFiniteLossError, Trainer, default_loss

__all__ = [
    "Callback",
    "CurvePlotter",
    "DivergenceError",
    "DivergenceGuard",
    "EarlyStopping",
    "GradientNormProbe",
    "LRFindResult",
    "LayerwiseResult",
    "MaxNorm",
    "NonFiniteLossError",
    "SanityChecks",
    "SanityResult",
    "Trainer",
    "WeightPenalty",
    "check_initial_loss",
    "check_overfit_tiny",
    "default_loss",
    "expected_initial_loss",
    "greedy_layerwise",
    "layer_gradient_norms",
    "list_checkpoints",
    "load_checkpoint",
    "lr_range_test",
    "plot_curves",
    "save_checkpoint",
    "save_curves",
    "suggest_lr",
]
