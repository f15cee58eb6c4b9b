"""Load a trained classification run (``deepnotes train --out RUN_DIR``) for inspection.

The model is rebuilt from ``config.json`` (model name, dataset, ``model_kw``) and its weights are
read from the newest checkpoint through the safe loader (``weights_only=True``); the dataset is
rebuilt with the run's seed, so ``splits.test[i]`` is the same image the run was tested on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepnotes.data.splits import DataSplits


@dataclass
class ClassifierRun:
    model: nn.Module  # in eval mode, on the CPU
    splits: DataSplits
    config: dict[str, Any]
    checkpoint: Path


def load_classifier_run(run_dir: str | os.PathLike) -> ClassifierRun:
    """The trained model (eval mode), the dataset splits and the config of a classification run.

    Raises ``ValueError`` naming ``run_dir`` when it is not a run directory, holds no checkpoint,
    or was trained on a task other than classification; a corrupt checkpoint raises
    :class:`deepnotes.core.io.CheckpointError` naming the file.
    """
    from deepnotes.commands.train import parse_model_kw
    from deepnotes.core.registry import MODELS
    from deepnotes.data import resolve_dataset
    from deepnotes.plugins import load_all
    from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint

    load_all()
    root = Path(run_dir)
    if not root.is_dir():
        raise ValueError(f"run_dir {str(root)!r} is not a directory")
    cfg_path = root / "config.json"
    if not cfg_path.is_file():
        raise ValueError(f"run_dir {str(root)!r} has no config.json: not a 'deepnotes train' run directory")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"run_dir {str(root)!r}: config.json is not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or not {"model", "data"} <= set(config):
        raise ValueError(f"run_dir {str(root)!r}: config.json lacks the 'model' and 'data' of a training run")
    ckpts = list_checkpoints(root / "checkpoints")
    if not ckpts:
        raise ValueError(f"run_dir {str(root)!r} holds no checkpoint (checkpoints/epoch_NNNN.pt)")
    splits = resolve_dataset(config["data"])(seed=int(config.get("seed", 0)))
    if splits.task != "classification":
        raise ValueError(
            f"run_dir {str(root)!r} is a {splits.task} run (data {config['data']!r}); explanations need a classification run"
        )
    model = MODELS.get(config["model"])(splits.in_shape, splits.num_classes, **parse_model_kw(config.get("model_kw") or []))
    state = load_checkpoint(ckpts[-1])
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise ValueError(f"checkpoint {str(ckpts[-1])!r} does not fit model {config['model']!r}: {exc}") from exc
    model.eval()
    return ClassifierRun(model.to(torch.device("cpu")), splits, config, ckpts[-1])


def stack_split(dataset, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All (or the first ``limit``) images and labels of a dataset as two tensors."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    xs, ys = zip(*(dataset[i] for i in range(n)))
    return torch.stack(xs), torch.as_tensor([int(y) for y in ys])


def resolve_image(splits: DataSplits, image: str | os.PathLike | None = None, index: int | None = None):
    """One image ``(1, C, H, W)`` and its label (``None`` for a file): a file, or ``splits.test[index]``.

    A file must have the run's size; it is not resized, so that the explanation is of the pixels
    the user gave. An alpha channel is dropped and grey ↔ RGB converted (RGB → grey by the channel
    mean) as for the folder datasets; any other channel count is an error.
    """
    from deepnotes.core.checks import check_int
    from deepnotes.data import read_image

    if image is not None and index is not None:
        raise ValueError("give either image or index, not both")
    c, h, w = splits.in_shape
    if image is not None:
        path = Path(image)
        if not path.is_file():
            raise ValueError(f"image {str(path)!r} does not exist")
        x = read_image(path)
        if x.shape[0] in (2, 4):  # drop an alpha channel
            x = x[:-1]
        # grey ↔ RGB as the folder datasets convert them for training
        if c == 1 and x.shape[0] == 3:
            x = x.mean(0, keepdim=True)
        elif c == 3 and x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        if x.shape[0] != c:
            raise ValueError(f"image {str(path)!r} has {x.shape[0]} channels but the run's model takes {c}")
        if tuple(x.shape[1:]) != (h, w):
            raise ValueError(
                f"image {str(path)!r} is {x.shape[1]}x{x.shape[2]} but the run's model was trained on {h}x{w} images; "
                "resize it first"
            )
        return x[None], None
    index = check_int("index", 0 if index is None else index, min=0, max=len(splits.test) - 1)
    x, y = splits.test[index]
    return x[None], int(y)
