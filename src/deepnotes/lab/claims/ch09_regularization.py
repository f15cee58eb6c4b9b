"""Chapter 9 claims: what L1 and L2 do to the weights, regularization vs overfitting, and underfitting."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.threads import single_threaded as one_thread
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.nn.dropout import Dropout
from deepnotes.nn.regularizers import add_penalty_grad_
from deepnotes.viz import new_figure


def digits_tensors(seed: int, n_train: int | None = None):
    """Flattened digits: (x_train, y_train, x_val, y_val) from the library's 70/15/15 split."""
    from deepnotes.data import digits

    s = digits(seed=seed)

    def stack(ds):
        xs, ys = zip(*(ds[i] for i in range(len(ds))))
        return torch.stack(xs).flatten(1), torch.stack(ys)

    xt, yt = stack(s.train)
    xv, yv = stack(s.val)
    if n_train is not None:
        xt, yt = xt[:n_train], yt[:n_train]
    return xt, yt, xv, yv


def fit(model, x, y, *, epochs: int, lr: float, batch: int | None = None, l1: float = 0.0, l2: float = 0.0,
        opt: str = "sgd", seed: int = 0):
    """Mini-batch training with the penalties' gradients added after backward (as WeightPenalty does)."""
    g = torch.Generator().manual_seed(seed)
    optim = (torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if opt == "sgd"
             else torch.optim.Adam(model.parameters(), lr=lr))
    batch = batch or len(x)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for idx in perm.split(batch):
            optim.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            add_penalty_grad_(model.parameters(), l1, l2)
            optim.step()
    model.eval()
    return model


@torch.no_grad()
def accuracy(model, x, y) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).double().mean())


@claim("9a", title="L1 drives many weights to (near) zero; L2 keeps them small but dense", topics=("9.2",),
    source='notes 323-329',
    statement='L2 regularization prefers dense W with evenly spread weights; L1 prefers sparse W.')
@one_thread
def l1_sparse_l2_dense(quick: bool, seed: int) -> ClaimResult:
    xt, yt, _, _ = digits_tensors(seed)
    epochs = 60 if quick else 300
    lam = 3e-3
    weights = {}
    for name, l1, l2 in (("none", 0.0, 0.0), ("L1", lam, 0.0), ("L2", 0.0, 10 * lam)):
        torch.manual_seed(seed)
        model = nn.Linear(64, 10)
        fit(model, xt, yt, epochs=epochs, lr=0.05, batch=128, l1=l1, l2=l2, seed=seed)
        weights[name] = model.weight.detach().flatten()
    # "near zero": below 1% of the same model's largest weight — relative, so that a vector shrunk
    # uniformly (what L2 does) still counts as dense. Weights of pixels that are blank in every
    # training image get no data gradient, so any penalty decays them; they say nothing about L1 vs
    # L2 and are left out. The absolute count (1% of the unpenalized model's largest weight, all
    # pixels) is reported beside it.
    active = (xt.std(0) > 0).repeat(10)
    tol = 0.01 * float(weights["none"].abs().max())
    frac_all = {k: float((w.abs() < tol).double().mean()) for k, w in weights.items()}
    weights = {k: w[active] for k, w in weights.items()}
    frac = {k: float((w.abs() < 0.01 * w.abs().max()).double().mean()) for k, w in weights.items()}
    mean_abs = {k: float(w.abs().mean()) for k, w in weights.items()}
    holds = frac["L1"] > 2 * frac["L2"] and frac["L1"] > 0.2 and mean_abs["L2"] < mean_abs["none"] \
        and frac["L2"] < 0.2
    fig, ax = new_figure()
    bins = torch.linspace(-float(weights["none"].abs().max()), float(weights["none"].abs().max()), 61).numpy()
    for k, w in weights.items():
        ax.hist(w.numpy(), bins=bins, histtype="step", lw=1.4, label=f"{k}: {100 * frac[k]:.0f}% near 0")
    # (the histogram shows the weights of the pixels that vary)
    ax.set_yscale("log")
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    ax.set_title("linear softmax classifier on digits")
    ax.legend(fontsize=8)
    return ClaimResult(
        measured={"near_zero_fraction": frac, "near_zero_fraction_absolute_all_pixels": frac_all,
                  "mean_abs_weight": mean_abs, "near_zero_threshold": tol, "active_pixels": int(active.sum()) // 10,
                  "l1": lam, "l2": 10 * lam, "epochs": epochs},
        test="softmax linear classifier on digits trained with an L1, an L2 or no penalty; a weight is near zero "
             "when |w| < 1% of that model's largest |w|; weights of pixels blank in every training image "
             "are left out (no data gradient reaches them). Holds when the L1 model has > 20% near-zero "
             "weights and more than twice the L2 model's share, while the L2 model has < 20% near zero and a "
             "smaller mean |w| than the unpenalized model.",
        holds=bool(holds), figures=[fig],
        details="With an absolute threshold (1% of the unpenalized model's largest weight, all pixels) the "
                "strongly shrunk L2 model also has about a third of its weights near zero (see "
                "near_zero_fraction_absolute_all_pixels): L2 makes weights small, and 'dense' holds only "
                "relative to the model's own scale.")


def _mlp(width: int, p: float) -> nn.Module:
    layers = [nn.Linear(64, width), nn.ReLU()]
    if p:
        layers.append(Dropout(p))
    layers += [nn.Linear(width, width), nn.ReLU()]
    if p:
        layers.append(Dropout(p))
    return nn.Sequential(*layers, nn.Linear(width, 10))


def fit_ensemble(x, y, *, members: int, width: int, p: float = 0.0, l2: float = 0.0, epochs: int, lr: float = 0.05,
                 batch: int = 32, seed: int = 0):
    """Train ``members`` independent 2-hidden-layer ReLU MLPs at once (batched matrix products).

    Each member has its own initialization (torch's Linear default), its own mini-batch order and its
    own dropout masks; SGD with momentum 0.9; the L2 penalty adds ``l2 · W`` to each weight matrix's
    gradient (as :func:`~deepnotes.nn.regularizers.add_penalty_grad_`). Returns a function mapping
    inputs (N, 64) to logits (members, N, 10) in eval mode.
    """
    g = torch.Generator().manual_seed(seed)
    dims = [x.shape[1], width, width, 10]
    params = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        bound = 1 / math.sqrt(fan_in)  # torch.nn.Linear's default range
        params.append((torch.rand(members, fan_in, fan_out, generator=g) * 2 - 1) * bound)
        params.append((torch.rand(members, 1, fan_out, generator=g) * 2 - 1) * bound)
    for t in params:
        t.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)

    def forward(h, train: bool):
        for i in range(0, len(params), 2):
            h = torch.baddbmm(params[i + 1], h, params[i])
            if i < len(params) - 2:
                h = torch.relu(h)
                if train and p:
                    h = h * (torch.rand(h.shape, generator=g) >= p) / (1 - p)  # inverted dropout, own mask per member
        return h

    n = len(x)
    for _ in range(epochs):
        order = torch.argsort(torch.rand(members, n, generator=g), dim=1)
        for start in range(0, n, batch):
            idx = order[:, start:start + batch]
            logits = forward(x[idx], train=True)
            # the sum over members of each member's mean loss: members do not interact
            loss = F.cross_entropy(logits.reshape(-1, 10), y[idx].reshape(-1), reduction="none")
            loss = loss.view(members, -1).mean(1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if l2:
                with torch.no_grad():
                    for w in params[0::2]:
                        w.grad.add_(w, alpha=l2)
            opt.step()

    @torch.no_grad()
    def predict(inputs):
        return forward(inputs.unsqueeze(0).expand(members, -1, -1), train=False)

    return predict


@claim("9b", title="Dropout or L2 narrows the train-validation gap of an over-parameterized net on little data",
       topics=("9.2", "9.3"),
    source='notes 302-303, 333-337',
    statement='Against overfitting: add a penalty on the parameters to the loss (regularization), or use dropout, which switches off random units during training.')
@one_thread
def regularization_narrows_gap(quick: bool, seed: int) -> ClaimResult:
    n_train = 150
    xt, yt, xv, yv = digits_tensors(seed, n_train)
    width, epochs, members = (128, 100, 6) if quick else (256, 150, 16)
    setups = {"none": {}, "dropout 0.5": {"p": 0.5}, "L2 1e-2": {"l2": 1e-2}}
    gaps, val_acc = {}, {}
    for name, cfg in setups.items():
        # the same seed for every setup: member k starts from the same weights in each (paired comparison)
        predict = fit_ensemble(xt, yt, members=members, width=width, epochs=epochs, seed=seed, **cfg)
        lt, lv = predict(xt), predict(xv)
        train_loss = F.cross_entropy(lt.transpose(1, 2), yt.expand(members, -1), reduction="none").mean(1)
        val_loss = F.cross_entropy(lv.transpose(1, 2), yv.expand(members, -1), reduction="none").mean(1)
        gaps[name] = val_loss - train_loss
        val_acc[name] = (lv.argmax(2) == yv).double().mean(1)
    narrowing, z = {}, {}
    for name in ("dropout 0.5", "L2 1e-2"):
        diff = gaps["none"] - gaps[name]  # > 0: the regularized gap is narrower
        z[name] = float(diff.mean() / (diff.std() / math.sqrt(members)))
        narrowing[name] = float(diff.mean())
    narrows = {k: v > 2.0 for k, v in z.items()}
    fig, axes = new_figure(2)
    names = list(setups)
    for ax, data, label in ((axes[0], gaps, "validation loss − training loss"),
                            (axes[1], val_acc, "validation accuracy")):
        ax.boxplot([data[k].numpy() for k in names], tick_labels=names)
        ax.set_ylabel(label)
        ax.set_title(f"{members} nets each, width {width}, {n_train} digits", fontsize=9)
    return ClaimResult(
        measured={"mean_loss_gap": {k: float(v.mean()) for k, v in gaps.items()},
                  "mean_gap_narrowing": narrowing, "narrowing_in_standard_errors": z,
                  "mean_val_accuracy": {k: float(v.mean()) for k, v in val_acc.items()},
                  "nets_per_setup": members, "n_train": n_train, "width": width, "epochs": epochs},
        test=f"{members} independently initialized 2-hidden-layer ReLU MLPs (width {width}) per setup, SGD momentum 0.9, "
             f"lr 0.05, {epochs} epochs on {n_train} digits: none, dropout 0.5, L2 1e-2, net k starting from the same "
             "weights in every setup. The gap is validation loss − training loss. A regularizer narrows it when the "
             "mean paired reduction exceeds 2 standard errors. The notes offer the two as alternative remedies: "
             "holds if at least one narrows it (each is reported)",
        holds=any(narrows.values()),
        figures=[fig],
        observation="Narrowed by more than 2 standard errors: " + (", ".join(k for k, v in narrows.items() if v) or "none")
        + ". Dropout's effect on this small set is smaller than L2's and depends on which 150 digits are drawn: "
        "on some draws it does not narrow the loss gap at all, though it usually raises validation accuracy.",
        details="The accuracy gap is shown too; at ~93% validation accuracy on digits it moves by a few samples "
                "only, so the loss gap is the measure. Adam with L2 added to the gradient (not decoupled) "
                "regularizes much less, which is why SGD is used.")


def _circles(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    r = torch.cat([torch.rand(n // 2, generator=g) * 0.8, 1.2 + torch.rand(n - n // 2, generator=g) * 0.8])
    a = torch.rand(n, generator=g) * 2 * math.pi
    x = torch.stack([r * torch.cos(a), r * torch.sin(a)], 1)
    y = torch.cat([torch.zeros(n // 2), torch.ones(n - n // 2)]).long()
    return x, y


class _Squares(nn.Module):
    """A linear model on hand-made features (x, y, x², y²)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.cat([x, x**2], 1))


@claim("9c", title="Underfitting is cured by more capacity, more features or a smaller penalty", topics=("9.2", "9.4"),
    source='notes 305-309',
    statement='Underfitting is cured by more features, a more complex model or a smaller regularization coefficient.')
@one_thread
def underfitting_remedies(quick: bool, seed: int) -> ClaimResult:
    x, y = _circles(400, seed)
    epochs = 150 if quick else 600
    acc = {}
    models = {
        "linear": (lambda: nn.Linear(2, 2), 0.0),
        "linear + x² features": (_Squares, 0.0),
        "MLP 32": (lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2)), 0.0),
        "MLP 32, L2 = 1": (lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2)), 1.0),
        "MLP 32, L2 = 1e-4": (lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2)), 1e-4),
    }
    for name, (make, l2) in models.items():
        torch.manual_seed(seed)
        model = fit(make(), x, y, epochs=epochs, lr=0.05, batch=64, l2=l2, seed=seed)
        acc[name] = accuracy(model, x, y)
    holds = (acc["MLP 32"] > acc["linear"] + 0.2 and acc["linear + x² features"] > acc["linear"] + 0.2
             and acc["MLP 32, L2 = 1e-4"] > acc["MLP 32, L2 = 1"] + 0.2)
    fig, ax = new_figure(width=7)
    ax.barh(list(acc), list(acc.values()))
    ax.set_xlabel("training accuracy (two concentric rings)")
    ax.set_xlim(0, 1)
    return ClaimResult(
        measured={"train_accuracy": acc, "epochs": epochs},
        test="two concentric rings (not linearly separable), training accuracy of a linear model, the same model "
             "on (x, y, x², y²), a 32-unit MLP, and that MLP with L2 1 vs 1e-4. Holds when more capacity and more "
             "features each add > 20 points over the linear model and the smaller penalty > 20 points over the "
             "larger.",
        holds=bool(holds), figures=[fig])
