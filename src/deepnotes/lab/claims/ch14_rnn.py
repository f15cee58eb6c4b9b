"""Chapter 14 claims: GRU vs LSTM size, the adding problem, vanishing and exploding gradients in time."""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from deepnotes.core.registry import MODELS
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.sequence import GRU, LSTM, RNN, SkipRNN, clip_grad_norm_, make_adding
from deepnotes.viz import new_figure

BASELINE_MSE = 1.0 / 6.0  # predicting the mean 1 on the adding problem: Var(U1 + U2) = 2/12


@contextmanager
def _fast_cpu():
    """One thread and flush-to-zero for the duration of an experiment.

    Step-by-step recurrences are too small to gain from threads, and on a shared 2-core machine
    oversubscription made the adding experiment 15x slower. Vanishing gradients through time
    underflow into denormal floats, which the CPU handles ~4x slower (measured on the RNN);
    flushing them to zero changes nothing above 1e-38. The thread count is restored afterwards;
    flush-to-zero is switched off again (torch has no getter for it; off is its default).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        torch.set_flush_denormal(False)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@claim("14a", title="A GRU has three quarters of the parameters of an LSTM of the same size", topics=("14.2",))
def gru_lstm_parameters(quick: bool, seed: int) -> ClaimResult:
    configs = [(1, 8, 1, False), (32, 128, 1, False), (300, 512, 2, False), (64, 64, 3, True)]
    rows = []
    for f, h, layers, bi in configs:
        kw = {"num_layers": layers, "bidirectional": bi}
        ours = (_count(LSTM(f, h, **kw)), _count(GRU(f, h, **kw)))
        ref = (_count(torch.nn.LSTM(f, h, **kw)), _count(torch.nn.GRU(f, h, **kw)))
        rows.append({"input": f, "hidden": h, "layers": layers, "bidirectional": bi, "lstm": ours[0],
                     "gru": ours[1], "ratio": ours[1] / ours[0], "same_as_torch": ours == ref})
    holds = all(r["ratio"] == 0.75 and r["same_as_torch"] for r in rows)
    fig, ax = new_figure()
    labels = [f"F={r['input']},H={r['hidden']},L={r['layers']}{',bi' if r['bidirectional'] else ''}" for r in rows]
    xs = np.arange(len(rows))
    ax.bar(xs - 0.2, [r["lstm"] for r in rows], 0.4, label="LSTM")
    ax.bar(xs + 0.2, [r["gru"] for r in rows], 0.4, label="GRU")
    ax.set_yscale("log")
    ax.set_xticks(xs, labels, rotation=15, fontsize=7)
    ax.set_ylabel("parameters")
    ax.legend()
    return ClaimResult(
        measured={"configs": rows},
        test="count the parameters of our LSTM and GRU (and torch's) for 4 sizes; holds if every GRU/LSTM "
             "ratio is exactly 0.75 and our counts equal torch's (3 gate blocks vs 4, each 4·H·(F+H+2)/4)",
        holds=holds, figures=[fig])


def _train_adding(name: str, seq_len: int, steps: int, seed: int) -> dict:
    torch.manual_seed(seed)
    kw = {"hidden_size": 32} if name != "tcn" else {"channels": 24, "kernel_size": 3,
                                                      "levels": max(2, math.ceil(math.log2(seq_len / 4 + 1)))}
    model = MODELS.create(name, (seq_len, 2), 1, **kw)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x_test, y_test = make_adding(1000, seq_len, seed=10_000 + seed)
    curve = []
    for step in range(steps):
        x, y = make_adding(64, seq_len, seed=seed * 100_003 + step)
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        curve.append(float(loss.detach()))
    with torch.no_grad():
        pred = model(x_test)
    return {"test_mse": float(F.mse_loss(pred, y_test)),
            "test_accuracy": float(((pred - y_test).abs() < 0.04).double().mean()),  # Le et al.'s criterion
            "curve": curve}


@claim("14b", title="On the adding problem with long sequences a vanilla RNN fails while LSTM and GRU learn it",
       topics=("14.1", "14.2", "14.3", "14.5"))
def adding_problem(quick: bool, seed: int) -> ClaimResult:
    lengths = (30,) if quick else (10, 30, 60)
    steps = 400 if quick else 800
    models = ("rnn", "lstm", "gru", "tcn")
    with _fast_cpu():
        results = {name: {T: _train_adding(name, T, steps, seed) for T in lengths} for name in models}
    longest = lengths[-1]
    mse = {m: {T: results[m][T]["test_mse"] for T in lengths} for m in models}
    acc = {m: {T: results[m][T]["test_accuracy"] for T in lengths} for m in models}
    rnn_fails = mse["rnn"][longest] > 0.5 * BASELINE_MSE
    gated_learn = all(mse[m][longest] < 0.1 * BASELINE_MSE for m in ("lstm", "gru"))
    fig, axes = new_figure(ncols=2)
    for m in models:
        axes[0].plot(lengths, [mse[m][T] for T in lengths], "o-", label=m)
        curve = np.convolve(results[m][longest]["curve"], np.ones(20) / 20, mode="valid")
        axes[1].plot(curve, label=m)
    for ax in axes:
        ax.axhline(BASELINE_MSE, color="grey", ls="--", lw=1, label="predict 1 (MSE 1/6)")
        ax.set_yscale("log")
    axes[0].set_xlabel("sequence length T")
    axes[0].set_ylabel("test MSE")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel(f"training MSE (T={longest}, 20-step mean)")
    axes[0].legend(fontsize=7)
    return ClaimResult(
        measured={"lengths": list(lengths), "steps": steps, "test_mse": mse, "test_accuracy_abs_err_lt_0.04": acc},
        test=f"train RNN, LSTM, GRU (hidden 32) and a TCN on the adding problem, Adam lr 1e-2, batch 64, "
             f"{steps} steps, clip norm 1; holds if at T={longest} the RNN's test MSE stays above half the "
             f"trivial baseline 1/6 while both LSTM and GRU reach below a tenth of it",
        holds=bool(rnn_fails and gated_learn), figures=[fig])


def _grad_per_step(model: torch.nn.Module, seq_len: int, batch: int, seed: int) -> np.ndarray:
    """Mean over the batch of ‖∂ sum(h_T) / ∂x_t‖ for every step t."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, seq_len, model.input_size, generator=g, dtype=torch.float64, requires_grad=True)
    out, _ = model(x)
    (grad,) = torch.autograd.grad(out[:, -1].sum(), x)
    return grad.norm(dim=2).mean(dim=0).numpy()


def _exploding_run(clip: float | None, steps: int, seed: int) -> dict:
    torch.manual_seed(seed)
    rnn = RNN(2, 32, nonlinearity="relu", batch_first=True)
    head = torch.nn.Linear(32, 1)
    with torch.no_grad():  # recurrent matrix with every singular value 2: gradients grow like 2^T
        q, _ = torch.linalg.qr(torch.randn(32, 32))
        rnn.weight_hh_l0.copy_(2.0 * q)
    params = [*rnn.parameters(), *head.parameters()]
    lr = 0.01
    opt = torch.optim.SGD(params, lr=lr)
    losses, norms, updates = [], [], []
    for step in range(steps):
        x, y = make_adding(64, 50, seed=seed * 7919 + step)
        loss = F.mse_loss(head(rnn(x)[0][:, -1]), y)
        opt.zero_grad()
        loss.backward()
        norms.append(float(clip_grad_norm_(params, math.inf if clip is None else clip)))
        before = torch.cat([p.detach().flatten() for p in params])
        opt.step()
        updates.append(float((torch.cat([p.detach().flatten() for p in params]) - before).norm()))
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]) or not math.isfinite(norms[-1]):
            break
    return {"losses": losses, "grad_norms": norms, "update_norms": updates, "lr": lr}


@claim("14c", title="For a vanilla RNN the gradient w.r.t. early steps decays with distance; clipping keeps "
       "exploding gradients bounded", topics=("14.1", "14.5"))
def gradients_through_time(quick: bool, seed: int) -> ClaimResult:
    seq_len, batch = (60, 16) if quick else (100, 64)
    torch.manual_seed(seed)
    rnn = RNN(8, 64, dtype=torch.float64, batch_first=True)
    lstm = LSTM(8, 64, dtype=torch.float64, batch_first=True)
    lstm_fb = LSTM(8, 64, dtype=torch.float64, batch_first=True)
    with torch.no_grad():  # forget-gate bias 1 (Jozefowicz et al. 2015): the usual LSTM cure, shown for contrast
        lstm_fb.bias_ih_l0[64:128].fill_(1.0)
        lstm_fb.bias_hh_l0[64:128].zero_()
    skip = SkipRNN(8, 64, skip=10, batch_first=True).double()  # skip connections through time, for contrast
    with _fast_cpu():
        curves = {name: _grad_per_step(m, seq_len, batch, seed) for name, m in
                  (("rnn", rnn), ("lstm", lstm), ("lstm_forget_bias_1", lstm_fb),
                                                        ("rnn_skip_10", skip))}
    dist = np.arange(seq_len)[::-1]  # distance from the last step
    far = seq_len // 2
    decay = {k: float(v[seq_len - 1 - far] / v[-1]) for k, v in curves.items()}  # gradient at distance `far` / at 0
    slope = {k: float(np.polyfit(dist, np.log(v + 1e-300), 1)[0]) for k, v in curves.items()}

    steps = 120 if quick else 200
    with _fast_cpu():
        plain, clipped = _exploding_run(None, steps, seed), _exploding_run(1.0, steps, seed)
    exploded = max(plain["grad_norms"]) > 1e3
    plain_diverged = not math.isfinite(plain["losses"][-1]) or not math.isfinite(plain["grad_norms"][-1])
    bounded = max(clipped["update_norms"]) <= clipped["lr"] * 1.0 * (1 + 1e-5)
    clipped_ok = all(math.isfinite(v) for v in clipped["losses"]) and clipped["losses"][-1] < 0.25
    rnn_decays = decay["rnn"] < 1e-3 and slope["rnn"] < 0

    fig, axes = new_figure(ncols=2)
    for k, v in curves.items():
        axes[0].semilogy(dist, v, label=k)
    axes[0].set_xlabel("distance from the last step, T − t")
    axes[0].set_ylabel("‖∂ Σh_T / ∂x_t‖ (batch mean)")
    axes[0].legend(fontsize=7)
    axes[1].semilogy(plain["losses"], "o-", label="no clipping (then NaN)")
    axes[1].semilogy(clipped["losses"], label="clip norm 1")
    axes[1].set_xlabel("SGD step")
    axes[1].set_ylabel("training MSE")
    axes[1].legend(fontsize=7)
    return ClaimResult(
        measured={
            "grad_ratio_distance_half_T": decay, "log_grad_slope_per_step": slope, "seq_len": seq_len,
            "unclipped_max_grad_norm": max(plain["grad_norms"]), "unclipped_steps_with_finite_loss": sum(math.isfinite(v) for v in plain["losses"]),
            "unclipped_final_loss": plain["losses"][-1], "clipped_max_update_norm": max(clipped["update_norms"]),
            "clipped_final_loss": clipped["losses"][-1], "clipped_initial_loss": clipped["losses"][0],
        },
        test=f"(1) tanh RNN, H=64, default init, T={seq_len}: mean ‖∂Σh_T/∂x_t‖ at distance T/2 divided by that at "
             "distance 0 must be < 1e-3 with a negative log-linear slope (LSTMs and an RNN with skip edges of "
             "length 10 through time shown for contrast, not judged); "
             "(2) ReLU RNN with recurrent singular values 2 on the adding problem (T=50), SGD lr 0.01: the gradient "
             "norm must exceed 1e3, the unclipped run must go non-finite, and with clip_grad_norm_(1) every update "
             "must be <= lr·1 and the final loss finite and < 0.25",
        holds=bool(rnn_decays and exploded and plain_diverged and bounded and clipped_ok), figures=[fig],
        details=f"At initialization the LSTM's gradient decays too (slope {slope['lstm']:.3f} vs {slope['rnn']:.3f} "
                f"per step for the RNN): with torch's default init its forget gate is about σ(0) = 0.5. A forget-gate "
                f"bias of 1 slows the decay to {slope['lstm_forget_bias_1']:.3f} per step; the LSTM's real advantage "
                "is that it can *learn* to keep f ≈ 1 (claim 14b), which the RNN's W_hh·diag(tanh') product cannot.")
