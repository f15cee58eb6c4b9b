"""The four-part workflow of the notes, end to end on ``y = w·x + b``.

1. **data** — samples of a noisy line (:func:`deepnotes.data.make_linear`);
2. **model** — ``torch.nn.Linear(1, 1)``;
3. **training** — an optimizer minimizing the mean squared error (the cost);
4. **inference** — the trained model predicts ``y`` for new ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepnotes.core.checks import check_float, check_int
from deepnotes.data.builtin import make_linear


@dataclass
class WorkflowResult:
    w: float
    b: float
    costs: list[float]  # training cost after each epoch
    x_new: torch.Tensor
    y_pred: torch.Tensor


def linear_workflow(
    n: int = 100, w: float = 2.0, b: float = 1.0, noise: float = 0.5, lr: float = 0.05, epochs: int = 300,
    seed: int = 0, x_new=(4.0, 5.0),
) -> WorkflowResult:
    """Run data → model → training → inference and return the learned ``w``, ``b`` and predictions."""
    lr = check_float("lr", lr, min=0.0, min_inclusive=False)
    epochs = check_int("epochs", epochs, min=1)
    # 1. data
    x, y = make_linear(n=n, w=w, b=b, noise=noise, seed=seed)
    x, y = x.unsqueeze(1), y.unsqueeze(1)
    # 2. model
    torch.manual_seed(seed)
    model = nn.Linear(1, 1).double()
    # 3. training: full-batch gradient descent on the cost (mean of per-sample squared losses)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    costs = []
    for _ in range(epochs):
        opt.zero_grad()
        c = nn.functional.mse_loss(model(x), y)
        c.backward()
        opt.step()
        costs.append(c.item())
    # 4. inference
    with torch.no_grad():
        xq = torch.as_tensor(x_new, dtype=torch.float64).view(-1, 1)
        pred = model(xq).view(-1)
    return WorkflowResult(model.weight.item(), model.bias.item(), costs, xq.view(-1), pred)
