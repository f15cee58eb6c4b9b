"""Forward + backward of our LSTM and GRU (a Python loop over time) vs torch's fused native kernels."""

from __future__ import annotations

import torch

from deepnotes.bench.api import BenchItem, bench_case
from deepnotes.sequence import GRU, LSTM

# the size: batch 64, sequence 100, input 32, hidden 128 (CPU, float32)
BATCH, STEPS, FEATURES, HIDDEN = 64, 100, 32, 128


def _items(ours_cls, ref_cls, quick: bool) -> list[BenchItem]:
    torch.manual_seed(0)
    ref = ref_cls(FEATURES, HIDDEN, batch_first=True)
    ours = ours_cls(FEATURES, HIDDEN, batch_first=True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(BATCH, STEPS, FEATURES)

    def step(model):
        def run():
            model.zero_grad(set_to_none=True)
            out, _ = model(x)
            out.sum().backward()
        return run

    size = f"N={BATCH} T={STEPS} F={FEATURES} H={HIDDEN} fwd+bwd"
    return [BenchItem(size=size, ours=step(ours), reference=step(ref), repeats=5 if quick else 9)]


@bench_case("lstm_fwd_bwd", reference="torch.nn.LSTM", requires=("torch",), target=3.0)
def lstm_case(quick: bool) -> list[BenchItem]:
    """LSTM forward + backward through time, ours (loop over steps) vs torch.nn.LSTM."""
    return _items(LSTM, torch.nn.LSTM, quick)


@bench_case("gru_fwd_bwd", reference="torch.nn.GRU", requires=("torch",), target=3.0)
def gru_case(quick: bool) -> list[BenchItem]:
    """GRU forward + backward through time, ours (loop over steps) vs torch.nn.GRU."""
    return _items(GRU, torch.nn.GRU, quick)
