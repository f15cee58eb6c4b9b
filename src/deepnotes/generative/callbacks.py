"""A trainer callback writing a grid of samples of a generative model after every epoch."""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_int
from deepnotes.train.callbacks import Callback


class SampleGrid(Callback):
    """Write ``samples/epoch_NNNN.png`` (``n`` samples) into the run directory after every ``every`` epochs.

    The latent draws come from a private generator seeded with ``seed`` at every call, so the grids
    of successive epochs show the same latent codes and the training's random streams are untouched
    (exact resume is unaffected). The model must have ``sample(n, generator)``.
    """

    def __init__(self, n: int = 64, every: int = 1, seed: int = 0):
        self.n = check_int("n", n, min=1)
        self.every = check_int("every", every, min=1)
        self.seed = check_int("seed", seed, min=0)
        self.written: list[str] = []

    def on_epoch_end(self, trainer, epoch, metrics):
        if trainer.out_dir is None or not getattr(trainer, "is_main", True) or epoch % self.every:
            return
        from deepnotes.generative.grid import save_grid

        model = trainer.module
        if not hasattr(model, "sample"):
            raise TypeError(f"SampleGrid needs a model with sample(n, generator); got {type(model).__name__}")
        was_training = model.training
        model.eval()
        try:
            g = torch.Generator().manual_seed(self.seed)
            images = model.sample(self.n, g)
        finally:
            model.train(was_training)
        path = save_grid(images, trainer.out_dir / "samples" / f"epoch_{epoch:04d}.png", nrow=8)
        self.written.append(str(path))
