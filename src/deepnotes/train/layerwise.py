"""Greedy layer-wise training: train a layer, freeze it, add the next, repeat (Bengio et al. 2007).

Stage ``k`` trains hidden layer ``k`` together with a fresh linear head on top of the frozen layers
``1 … k-1``; the head is thrown away when the next layer is added, and the final stage's head is
kept. Each layer is thus trained while it is close to the output, where a deep sigmoid net's
gradient is still large — the notes' early remedy for vanishing gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn
from torch.utils.data import Dataset

from deepnotes.core.checks import check_choice, check_int, check_type
from deepnotes.models.residual_mlp import ACTIVATIONS


@dataclass
class LayerwiseResult:
    model: nn.Sequential
    stage_metrics: list[dict[str, float]]  # the last epoch's metrics of each stage


def greedy_layerwise(
    in_features: int,
    hidden: Sequence[int],
    num_classes: int,
    train_data: Dataset,
    *,
    val_data: Dataset | None = None,
    activation: str = "sigmoid",
    epochs_per_stage: int = 5,
    optimizer: str = "adam",
    lr: float = 1e-2,
    batch_size: int = 32,
    seed: int = 0,
    fine_tune_epochs: int = 0,
) -> LayerwiseResult:
    """Build and train ``Flatten → [Linear → σ] × len(hidden) → Linear`` greedily.

    Parameters
    ----------
    in_features : int
        Size of the flattened input.
    hidden : sequence of int
        Widths of the hidden layers, input side first.
    optimizer : str
        A name in the optimizer registry (``"adam"``, ``"sgd"``, ``"torch_adam"`` …).
    fine_tune_epochs : int
        Optionally unfreeze everything and train end to end afterwards.

    Returns
    -------
    LayerwiseResult
        The trained ``nn.Sequential`` (all parameters trainable again) and per-stage metrics.
    """
    import torch

    from deepnotes.core.registry import OPTIMIZERS
    from deepnotes.train.trainer import Trainer

    in_features = check_int("in_features", in_features, min=1)
    check_type("hidden", hidden, (list, tuple))
    if not hidden:
        raise ValueError("hidden must list at least one layer width")
    widths = [check_int(f"hidden[{i}]", h, min=1) for i, h in enumerate(hidden)]
    num_classes = check_int("num_classes", num_classes, min=1)
    activation = check_choice("activation", activation, tuple(ACTIVATIONS))
    epochs_per_stage = check_int("epochs_per_stage", epochs_per_stage, min=1)
    fine_tune_epochs = check_int("fine_tune_epochs", fine_tune_epochs, min=0)
    make_opt = OPTIMIZERS.get(optimizer)

    # build the layers in the data's floating dtype
    sample = train_data[0][0]
    dtype = sample.dtype if torch.is_tensor(sample) and sample.is_floating_point() else torch.float32
    torch.manual_seed(seed)
    frozen: list[nn.Module] = [nn.Flatten()]
    width, metrics = in_features, []
    head: nn.Module | None = None
    for k, w in enumerate(widths):
        layer = nn.Sequential(nn.Linear(width, w, dtype=dtype), ACTIVATIONS[activation]())
        head = nn.Linear(w, num_classes, dtype=dtype)
        model = nn.Sequential(*frozen, layer, head)
        for m in frozen:
            m.requires_grad_(False)
        trainable = [p for p in model.parameters() if p.requires_grad]
        t = Trainer(model, make_opt(trainable, lr=lr), train_data, val_data=val_data,
                    epochs=epochs_per_stage, batch_size=batch_size, seed=seed + k)
        metrics.append(t.fit()[-1])
        frozen.append(layer)
        width = w
    model = nn.Sequential(*frozen, head)
    model.requires_grad_(True)
    if fine_tune_epochs:
        t = Trainer(model, make_opt(model.parameters(), lr=lr), train_data, val_data=val_data,
                    epochs=fine_tune_epochs, batch_size=batch_size, seed=seed + len(widths))
        metrics.append(t.fit()[-1])
    return LayerwiseResult(model, metrics)
