"""Chapter 12 claims: a too-low learning rate, random vs grid search, train/eval modes and no_grad."""

from __future__ import annotations

import math
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.lab.api import ClaimResult, claim
from deepnotes.lab.claims.ch02_init import one_thread
from deepnotes.lab.claims.ch09_regularization import accuracy, digits_tensors
from deepnotes.nn.batchnorm import BatchNorm1d
from deepnotes.nn.dropout import Dropout
from deepnotes.viz import new_figure


@claim("12a", title="With a too-low learning rate the loss barely moves while accuracy can still jump",
       topics=("12.2", "12.5"))
@one_thread
def low_lr_flat_loss(quick: bool, seed: int) -> ClaimResult:
    xt, yt, xv, yv = digits_tensors(seed)
    torch.manual_seed(seed)
    # small initial weights: every class starts with almost the same score (loss ≈ ln 10)
    model = nn.Linear(64, 10)
    with torch.no_grad():
        model.weight.mul_(1e-3)
        model.bias.zero_()
    lr, epochs = 1e-4, (20 if quick else 60)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    losses, accs = [], []
    with torch.no_grad():
        losses.append(float(F.cross_entropy(model(xt), yt)))
    accs.append(accuracy(model, xv, yv))
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt), generator=g).split(32):
            opt.zero_grad()
            F.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        with torch.no_grad():
            losses.append(float(F.cross_entropy(model(xt), yt)))
        accs.append(accuracy(model, xv, yv))
    rel_drop = (losses[0] - losses[-1]) / losses[0]
    acc_gain = accs[-1] - accs[0]
    holds = rel_drop < 0.05 and acc_gain > 0.3
    fig, axes = new_figure(2)
    axes[0].plot(losses, "o-", ms=3)
    axes[0].axhline(math.log(10), ls="--", color="0.5", label="ln 10")
    axes[0].set_ylim(0, 2.6)
    axes[0].set_ylabel("training loss")
    axes[0].legend(fontsize=8)
    axes[1].plot(accs, "o-", ms=3, color="tab:orange")
    axes[1].set_ylabel("validation accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_title(f"linear classifier, SGD lr={lr:g}")
    return ClaimResult(
        measured={"loss_start": losses[0], "loss_end": losses[-1], "relative_loss_drop": rel_drop,
                  "val_accuracy_start": accs[0], "val_accuracy_end": accs[-1], "lr": lr, "epochs": epochs},
        test="softmax linear classifier on digits from near-zero weights, SGD with lr 1e-4: holds when the "
             "training loss falls by < 5% of its start while validation accuracy rises by > 30 points "
             "(the argmax only needs the scores' order to change, the loss needs their size).",
        holds=bool(holds), figures=[fig])


def _objective(x: float, y: float, x_star: float) -> float:
    """A 2-D 'validation loss' where x (e.g. log lr) matters and y hardly does.

    Minimum 0 at x = x_star whatever y; y adds at most 0.02.
    """
    return (x - x_star) ** 2 * 4 + 0.02 * math.sin(6 * y) ** 2


@claim("12b", title="At equal budget random search beats grid search when one hyperparameter dominates",
       topics=("12.4",))
def random_beats_grid(quick: bool, seed: int) -> ClaimResult:
    import optuna

    from deepnotes.train.tune import make_param, make_space, run_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = make_space([make_param("x", "uniform", 0.0, 1.0), make_param("y", "uniform", 0.0, 1.0)])
    budgets = [4, 9, 16, 25] if quick else [4, 9, 16, 25, 36, 49]
    repeats = 10 if quick else 40

    def search(sampler_name: str, budget: int, s: int, x_star: float) -> float:
        storage = optuna.storages.InMemoryStorage()
        study = run_search(lambda trial, p: _objective(p["x"], p["y"], x_star), space, storage=storage,
                           study_name="s", n_trials=budget, sampler=sampler_name, pruner="none", seed=s,
                           grid_points=int(math.isqrt(budget)))
        return study.best_value

    # where the optimum lies is unknown to the searcher: average over optimum positions
    g = torch.Generator().manual_seed(seed)
    stars = torch.rand(repeats, generator=g, dtype=torch.float64).tolist()
    grid = {b: statistics.mean(search("grid", b, seed + r, xs) for r, xs in enumerate(stars)) for b in budgets}
    rand = {b: statistics.mean(search("random", b, seed + r, xs) for r, xs in enumerate(stars)) for b in budgets}
    fixed = {b: {"grid": search("grid", b, seed, 0.37), "random": search("random", b, seed, 0.37)} for b in budgets}
    wins = sum(rand[b] < grid[b] for b in budgets)
    holds = wins == len(budgets)
    fig, ax = new_figure()
    ax.plot(budgets, [grid[b] for b in budgets], "s-", label="grid")
    ax.plot(budgets, [rand[b] for b in budgets], "o-", label="random")
    ax.set_xlabel("trials (budget)")
    ax.set_ylabel(f"best objective found, mean of {repeats} problems")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return ClaimResult(
        measured={"grid_best_mean": grid, "random_best_mean": rand, "budgets": budgets, "repeats": repeats,
                  "random_wins": wins, "single_problem_x_star_0.37": fixed},
        test="objective 4(x-x*)² + 0.02 sin²(6y) on [0,1]² with the optimum x* drawn uniformly per problem; best "
             "value found by Optuna's GridSampler (√B × √B grid) and RandomSampler at budgets B, mean over the "
             "problems. Holds when random search's mean best is lower at every budget (the grid tries only √B "
             "distinct values of the x that matters, random search B).",
        holds=bool(holds), figures=[fig],
        details="On one fixed problem the answer depends on luck: with x* = 0.37 a 4x4 grid has x = 1/3 close "
                "to it and beats random search (see single_problem_x_star_0.37); the claim is about the "
                "expected result when the optimum's position is unknown.")


def _saved_bytes(fn) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while ``fn`` runs."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


@claim("12c", title="In eval() a net with batch norm and dropout is deterministic, in train() not; no_grad "
       "keeps no activations", topics=("12.6",))
@one_thread
def eval_mode_and_no_grad(quick: bool, seed: int) -> ClaimResult:
    torch.manual_seed(seed)
    width = 256 if quick else 1024
    net = nn.Sequential(nn.Linear(64, width), BatchNorm1d(width), nn.ReLU(), Dropout(0.5),
                        nn.Linear(width, width), BatchNorm1d(width), nn.ReLU(), Dropout(0.5), nn.Linear(width, 10))
    x = torch.randn(128, 64, generator=torch.Generator().manual_seed(seed))
    net.train()
    with torch.no_grad():  # the difference, not its graph
        train_diff = float((net(x) - net(x)).abs().max())
    net.eval()
    with torch.no_grad():
        eval_diff = float((net(x) - net(x)).abs().max())
        # single-sample eval equals the batch's row: eval mode does not mix samples
        row_diff = float((net(x[:1]) - net(x)[:1]).abs().max())
    with_grad = _saved_bytes(lambda: net(x))
    with torch.no_grad():
        no_grad = _saved_bytes(lambda: net(x))
    holds = eval_diff == 0.0 and train_diff > 0.0 and no_grad == 0 and with_grad > 0
    fig, axes = new_figure(2)
    axes[0].bar(["train() twice", "eval() twice"], [train_diff, eval_diff])
    axes[0].set_ylabel("max |output difference|")
    axes[1].bar(["grad enabled", "no_grad"], [with_grad / 2**20, no_grad / 2**20], color="tab:green")
    axes[1].set_ylabel("MiB saved for backward")
    return ClaimResult(
        measured={"train_mode_max_diff": train_diff, "eval_mode_max_diff": eval_diff,
                  "eval_single_vs_batch_diff": row_diff, "saved_bytes_with_grad": with_grad,
                  "saved_bytes_no_grad": no_grad, "width": width},
        test="an MLP with our BatchNorm1d and Dropout run twice on the same batch: holds when the eval-mode outputs "
             "are identical (difference exactly 0), the train-mode outputs differ, and the forward pass under "
             "no_grad saves 0 bytes for backward while the normal pass saves > 0 (counted with autograd's "
             "saved-tensor hooks).",
        holds=bool(holds), figures=[fig])
