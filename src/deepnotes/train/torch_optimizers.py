"""torch's own optimizers in the registry, as ``torch_<name>``, to compare with ours from the CLI."""

from __future__ import annotations

import torch

from deepnotes.core.registry import OPTIMIZERS

for _name, _cls in {
    "torch_sgd": torch.optim.SGD,
    "torch_adam": torch.optim.Adam,
    "torch_adamw": torch.optim.AdamW,
    "torch_rmsprop": torch.optim.RMSprop,
    "torch_adagrad": torch.optim.Adagrad,
}.items():
    OPTIMIZERS.add(_name, _cls, reference=True)
