"""Sequence models for the trainer: ``rnn``, ``lstm``, ``gru``, ``tcn``, ``text_cnn`` and ``*_seq``.

Each is registered in ``MODELS`` with the factory signature ``f(in_shape, num_classes, **kw)``,
``in_shape = (T, F)``, and maps a batch Tensor[N, T, F] to Tensor[N, num_classes] read from the
last time step (a regression output when the dataset's task is regression). With
``out_steps = S > 0`` the recurrent and TCN models instead return Tensor[N, num_classes, S] from the
last ``S`` steps — the layout ``cross_entropy`` expects for per-step targets Tensor[N, S].
``rnn_seq``, ``lstm_seq``, ``gru_seq`` and ``tcn_seq`` are the same models with ``out_steps = T``:
one prediction per step, for the ``copy`` task.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_probability, check_tensor, check_type
from deepnotes.core.registry import MODELS
from deepnotes.sequence.conv import TCN, TextCNN
from deepnotes.sequence.dropout import VariationalDropout
from deepnotes.sequence.recurrent import GRU, LSTM, RNN


def _seq_shape(in_shape) -> tuple[int, int]:
    check_type("in_shape", in_shape, (tuple, list))
    if len(in_shape) != 2:
        raise ValueError(f"in_shape must be (T, F) for a sequence model, got {tuple(in_shape)}")
    return check_int("in_shape[0]", in_shape[0], min=1), check_int("in_shape[1]", in_shape[1], min=1)


class _Head(nn.Module):
    """Linear read-out of the last step (or the last ``out_steps`` steps) of Tensor[N, T, D]."""

    def __init__(self, width: int, num_classes: int, seq_len: int, out_steps: int):
        super().__init__()
        self.out_steps = check_int("out_steps", out_steps, min=0, max=seq_len)
        self.fc = nn.Linear(width, check_int("num_classes", num_classes, min=1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.out_steps == 0:
            return self.fc(y[:, -1])
        return self.fc(y[:, -self.out_steps :]).transpose(1, 2)  # (N, C, S) for cross_entropy


class RecurrentClassifier(nn.Module):
    """``RNN`` / ``LSTM`` / ``GRU`` (ours, batch-first) followed by a linear head on its output.

    Parameters
    ----------
    in_shape : (T, F);  num_classes : output size
    cell : ``"rnn"``, ``"lstm"`` or ``"gru"``
    hidden_size, num_layers, dropout, bidirectional : as ``torch.nn.LSTM``
    out_steps : 0 reads the last step; S > 0 returns Tensor[N, num_classes, S]
    variational_dropout : probability of the variational (one mask per sequence) dropout applied
        to the feed-forward connections only — the input and the recurrent output before the head
    """

    def __init__(self, in_shape, num_classes: int, cell: str = "lstm", hidden_size: int = 64,
                 num_layers: int = 1, dropout: float = 0.0, bidirectional: bool = False, out_steps: int = 0,
                 variational_dropout: float = 0.0):
        super().__init__()
        t, f = _seq_shape(in_shape)
        self.drop = VariationalDropout(variational_dropout, batch_first=True)
        cls = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
        if cell not in cls:
            raise ValueError(f"cell must be one of 'rnn', 'lstm', 'gru'; got {cell!r}")
        self.rnn = cls[cell](f, hidden_size, num_layers=num_layers, batch_first=True, dropout=dropout,
                             bidirectional=bidirectional)
        self.head = _Head(hidden_size * (2 if bidirectional else 1), num_classes, t, out_steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=3, floating=True)
        return self.head(self.drop(self.rnn(self.drop(x))[0]))


@MODELS.register("rnn", description="vanilla tanh RNN (ours), linear head on the last step")
def rnn_model(in_shape, num_classes: int, **kw) -> RecurrentClassifier:
    return RecurrentClassifier(in_shape, num_classes, cell="rnn", **kw)


@MODELS.register("lstm", description="LSTM (ours), linear head on the last step")
def lstm_model(in_shape, num_classes: int, **kw) -> RecurrentClassifier:
    return RecurrentClassifier(in_shape, num_classes, cell="lstm", **kw)


@MODELS.register("gru", description="GRU (ours), linear head on the last step")
def gru_model(in_shape, num_classes: int, **kw) -> RecurrentClassifier:
    return RecurrentClassifier(in_shape, num_classes, cell="gru", **kw)


@MODELS.register("tcn", description="temporal convolutional network (causal, dilated), head on the last step")
class TCNClassifier(nn.Module):
    """:class:`TCN` over Tensor[N, T, F] with a linear head on its last (or last ``out_steps``) steps.

    ``levels`` blocks of width ``channels`` with kernel ``kernel_size``; the receptive field
    ``1 + 2(k − 1)(2^levels − 1)`` should cover ``T`` for the last step to see the whole input.
    """

    def __init__(self, in_shape, num_classes: int, channels: int = 32, levels: int = 6, kernel_size: int = 3,
                 dropout: float = 0.0, out_steps: int = 0):
        super().__init__()
        t, f = _seq_shape(in_shape)
        levels = check_int("levels", levels, min=1)
        self.tcn = TCN(f, [check_int("channels", channels, min=1)] * levels, kernel_size,
                       check_probability("dropout", dropout))
        self.head = _Head(channels, num_classes, t, out_steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=3, floating=True)
        return self.head(self.tcn(x.transpose(1, 2)).transpose(1, 2))


@MODELS.register("text_cnn", description="2-D convolution over (time x features), max over time (Kim 2014)")
def text_cnn_model(in_shape, num_classes: int, kernel_heights=(2, 3, 4), num_filters: int = 32,
                   dropout: float = 0.5) -> TextCNN:
    t, f = _seq_shape(in_shape)
    heights = tuple(h for h in kernel_heights if h <= t) or (t,)  # a filter taller than T sees nothing
    return TextCNN(f, num_classes, heights, num_filters, dropout)


def _per_step(factory):
    def make(in_shape, num_classes: int, **kw):
        if "out_steps" in kw:
            raise ValueError("out_steps is fixed to T for the *_seq models; use the plain model to choose it")
        return factory(in_shape, num_classes, out_steps=_seq_shape(in_shape)[0], **kw)

    make.__name__ = make.__qualname__ = f"{factory.__name__}_per_step"
    make.__doc__ = f"{factory.__name__} with one prediction per step: Tensor[N, T, F] → Tensor[N, num_classes, T]."
    return make


for _name, _factory in (("rnn", rnn_model), ("lstm", lstm_model), ("gru", gru_model), ("tcn", TCNClassifier)):
    MODELS.add(f"{_name}_seq", _per_step(_factory), description=f"{_name} with one prediction per time step")
