"""Loss and accuracy curves of a run, for train and validation."""

from __future__ import annotations

from pathlib import Path

from deepnotes.train.callbacks import Callback


def plot_curves(history: list[dict[str, float]]):
    """A figure with the loss (left) and accuracy (right, classification only) per epoch."""
    from deepnotes.viz import new_figure

    has_acc = any("train_accuracy" in h for h in history)
    fig, axes = new_figure(2 if has_acc else 1)
    axes = list(axes) if has_acc else [axes]
    epochs = [h["epoch"] for h in history]
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for split, style in (("train", "o-"), ("val", "s--")):
            key = f"{split}_{metric}"
            if any(key in h for h in history):
                ax.plot(epochs, [h.get(key, float("nan")) for h in history], style, ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    return fig


def save_curves(history: list[dict[str, float]], path: str | Path) -> Path:
    """Write :func:`plot_curves` as a PNG (atomically)."""
    import io

    import matplotlib.pyplot as plt

    from deepnotes.core.io import atomic_write_bytes

    fig = plot_curves(history)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


class CurvePlotter(Callback):
    """Rewrite ``curves.png`` in the run directory at the end of every epoch (rank 0 only)."""

    def __init__(self, filename: str = "curves.png"):
        self.filename = filename

    def on_epoch_end(self, trainer, epoch, metrics):
        if trainer.out_dir is not None and getattr(trainer, "is_main", True):
            save_curves(trainer.history, trainer.out_dir / self.filename)
