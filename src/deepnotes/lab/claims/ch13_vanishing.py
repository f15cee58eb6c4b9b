"""Chapter 13 claims: vanishing gradients in deep sigmoid nets, and two remedies."""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F

from deepnotes.core.threads import single_threaded as one_thread
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.lab.claims.ch09_regularization import accuracy, digits_tensors
from deepnotes.models.residual_mlp import ResidualMLP
from deepnotes.train.probes import layer_gradient_norms
from deepnotes.viz import new_figure


def _block_norms(model, x, y) -> list[float]:
    """Gradient norm of each block's weight, input side first (stem and head excluded)."""
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    norms = layer_gradient_norms(model)
    return [v for k, v in norms.items() if k.startswith("blocks.")]


@claim("13a", title="In a deep sigmoid MLP the first layer's gradient is orders of magnitude below the last's; "
       "with residual connections it is not", topics=("13.1", "13.2"),
    source='notes 431, 439',
    statement='Backpropagation multiplies the gradients of later layers into earlier ones; saturating activations such as sigmoid have derivatives near 0, so the gradient reaching the first layers almost vanishes. Residual connections are a remedy.')
@one_thread
def gradient_norm_by_layer(quick: bool, seed: int) -> ClaimResult:
    xt, yt, _, _ = digits_tensors(seed)
    x, y = xt[:256], yt[:256]
    depth = 10
    seeds = range(seed, seed + (3 if quick else 10))
    nets = {"sigmoid": ("sigmoid", False), "ReLU": ("relu", False), "sigmoid + residual": ("sigmoid", True)}
    profiles, ratios = {}, {}
    for name, (act, res) in nets.items():
        runs = []
        for s in seeds:
            torch.manual_seed(s)
            runs.append(_block_norms(ResidualMLP((64,), 10, hidden=64, depth=depth, activation=act, residual=res),
                                     x, y))
        profiles[name] = [statistics.geometric_mean(r[i] for r in runs) for i in range(depth)]
        ratios[name] = profiles[name][0] / profiles[name][-1]
    holds = ratios["sigmoid"] < 1e-2 and ratios["sigmoid + residual"] > 0.1
    fig, ax = new_figure()
    for name, prof in profiles.items():
        ax.plot(range(1, depth + 1), prof, "o-", ms=3, label=f"{name} (first/last {ratios[name]:.1e})")
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer (input side = 1)")
    ax.set_ylabel("‖∂L/∂W‖ (geometric mean over seeds)")
    ax.legend(fontsize=7)
    return ClaimResult(
        measured={"first_over_last": ratios, "norm_by_layer": profiles, "depth": depth, "seeds": len(seeds)},
        test=f"{depth} hidden layers of width 64 at PyTorch's default initialization, one batch of 256 digits; "
             "ratio of the gradient norm of the first hidden layer's weight to the last's (geometric mean over "
             "seeds). Holds when the plain sigmoid net's ratio is < 1e-2 (two orders of magnitude) and the residual "
             "sigmoid net's is > 0.1.",
        holds=bool(holds), figures=[fig],
        details="The plain ReLU net also loses two to three orders of magnitude over 10 layers here: PyTorch's "
                "default Linear initialization (uniform with bound 1/sqrt(fan_in), variance 1/(3 fan_in)) is "
                "smaller than He's 2/fan_in, so ReLU alone does not fix vanishing gradients without a matching "
                "initialization (chapter 2).")


@claim("13b", title="Greedy layer-wise training beats end-to-end training of the same deep sigmoid net",
       topics=("13.2",),
    source='notes 435-437',
    statement='Vanishing gradients can be fought by training layer by layer: train a shallow model, freeze it, add a layer, train again.')
@one_thread
def layerwise_beats_end_to_end(quick: bool, seed: int) -> ClaimResult:
    from torch import nn

    from deepnotes.data import TensorDataset
    from deepnotes.train import Trainer
    from deepnotes.train.layerwise import greedy_layerwise

    xt, yt, xv, yv = digits_tensors(seed)
    train = TensorDataset(xt, yt)
    depth, width = 6, 32
    per_stage = 2 if quick else 4
    seeds = [seed] if quick else [seed, seed + 1, seed + 2]
    lrs = (0.3, 1.0, 3.0)

    def layerwise(s, lr):
        res = greedy_layerwise(64, [width] * depth, 10, train, activation="sigmoid", epochs_per_stage=per_stage,
                               optimizer="torch_sgd", lr=lr, batch_size=32, seed=s)
        return accuracy(res.model, xv, yv)

    def end_to_end(s, lr):
        # the same architecture, trained end to end for the same number of epochs in total
        torch.manual_seed(s)
        layers, w_in = [nn.Flatten()], 64
        for _ in range(depth):
            layers += [nn.Linear(w_in, width), nn.Sigmoid()]
            w_in = width
        e2e = nn.Sequential(*layers, nn.Linear(width, 10))
        Trainer(e2e, torch.optim.SGD(e2e.parameters(), lr=lr), train, epochs=per_stage * depth, batch_size=32,
                seed=s).fit()
        return accuracy(e2e, xv, yv)

    # each method gets the same small learning-rate sweep and keeps its best rate
    by_lr = {name: {lr: statistics.mean(fn(s, lr) for s in seeds) for lr in lrs}
             for name, fn in (("layerwise", layerwise), ("end_to_end", end_to_end))}
    lw, ee = max(by_lr["layerwise"].values()), max(by_lr["end_to_end"].values())
    holds = lw > ee + 0.1
    fig, ax = new_figure()
    for name, style in (("layerwise", "o-"), ("end_to_end", "s--")):
        ax.plot(lrs, [by_lr[name][lr] for lr in lrs], style, label=name.replace("_", "-"))
    ax.set_xscale("log")
    ax.set_xlabel("SGD learning rate")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title(f"{depth} sigmoid layers of {width}, {per_stage * depth} epochs in all")
    return ClaimResult(
        measured={"val_accuracy_by_lr": {k: {str(lr): v for lr, v in d.items()} for k, d in by_lr.items()},
                  "best_layerwise": lw, "best_end_to_end": ee, "depth": depth, "epochs_total": per_stage * depth,
                  "seeds": len(seeds)},
        test=f"a {depth}-layer sigmoid MLP (width {width}) on digits with plain SGD (batch 32): greedy layer-wise "
             f"({per_stage} epochs per layer) vs end-to-end for the same {per_stage * depth} epochs in all, each at "
             f"its best learning rate of {lrs} (validation accuracy, mean over seeds). Holds when layer-wise is "
             "> 10 points higher.",
        holds=bool(holds), figures=[fig],
        details="End-to-end SGD stays at chance for every rate in the sweep; layer-wise training is best at the "
                "largest rate tried. This compares plain SGD, the setting of the notes; adaptive optimizers "
                "rescale small gradients and are not part of this claim.")
