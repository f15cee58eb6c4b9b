"""Recurrent networks written out (RNN, LSTM, GRU), BPTT and clipping, RNN dropout, TCN, sequence tasks."""

from deepnotes.sequence.bptt import clip_grad_norm_, clip_grad_value_, detach_state, truncated_bptt
from deepnotes.sequence.cells import GRUCell, LSTMCell, RNNCell, gru_cell, lstm_cell, rnn_cell
from deepnotes.sequence.conv import (
    TCN,
    CausalConv1d,
    TemporalBlock,
    TextCNN,
    causal_conv1d,
    tcn_receptive_field,
)
from deepnotes.sequence.dropout import VariationalDropout, ZoneoutRNN, variational_dropout, zoneout
from deepnotes.sequence.explicit_bptt import gru_layer, lstm_layer, rnn_layer
from deepnotes.sequence.models import RecurrentClassifier, TCNClassifier
from deepnotes.sequence.recurrent import GRU, LSTM, RNN
from deepnotes.sequence.skip import SkipRNN
from deepnotes.sequence.tasks import make_adding, make_copy, make_seq_digits

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "TCN",
    "CausalConv1d",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "RecurrentClassifier",
    "SkipRNN",
    "TCNClassifier",
    "TemporalBlock",
    "TextCNN",
    "VariationalDropout",
    "ZoneoutRNN",
    "causal_conv1d",
    "clip_grad_norm_",
    "clip_grad_value_",
    "detach_state",
    "gru_cell",
    "gru_layer",
    "lstm_cell",
    "lstm_layer",
    "make_adding",
    "make_copy",
    "make_seq_digits",
    "rnn_cell",
    "rnn_layer",
    "tcn_receptive_field",
    "truncated_bptt",
    "variational_dropout",
    "zoneout",
]
