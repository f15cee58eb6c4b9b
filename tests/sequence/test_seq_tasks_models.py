"""Sequence tasks (registered datasets) and sequence models (registered models): structure and contracts."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import deepnotes.sequence  # noqa: F401  (registers the datasets and models)
from deepnotes.core.registry import DATASETS, MODELS
from deepnotes.data import DataSplits
from deepnotes.sequence import make_adding, make_copy, make_seq_digits


def test_adding_problem_structure():
    x, y = make_adding(500, 20, seed=3)
    assert x.shape == (500, 20, 2) and y.shape == (500, 1)
    marks = x[:, :, 1]
    assert torch.equal(marks.sum(1), torch.full((500,), 2.0))
    assert torch.equal(marks[:, :10].sum(1), torch.ones(500))  # one marker per half
    # slow reference for the target
    for i in range(0, 500, 97):
        idx = np.flatnonzero(marks[i].numpy())
        assert float(y[i, 0]) == pytest.approx(float(x[i, idx[0], 0] + x[i, idx[1], 0]), abs=1e-6)
    assert float(x[:, :, 0].min()) >= 0 and float(x[:, :, 0].max()) < 1
    x2, _ = make_adding(500, 20, seed=3)
    assert torch.equal(x, x2)  # seeded
    with pytest.raises(ValueError, match="seq_len"):
        make_adding(10, 1)


def test_copy_task_structure():
    x, y = make_copy(50, num_symbols=4, delay=6, alphabet=5, seed=1)
    assert x.shape == (50, 14, 7) and y.shape == (50, 14)
    tokens = x.argmax(2)
    assert torch.equal(x.sum(2), torch.ones(50, 14))  # one-hot
    assert torch.equal(y[:, -4:], tokens[:, :4]) and bool((y[:, :-4] == 0).all())
    y = y[:, -4:]
    assert bool((tokens[:, 4:10] == 0).all()) and bool((tokens[:, 10] == 6).all())
    assert bool((tokens[:, 11:] == 0).all())
    assert int(y.min()) >= 1 and int(y.max()) <= 5
    with pytest.raises(ValueError, match="num_symbols"):
        make_copy(10, num_symbols=0)


def test_seq_digits_rows_are_time_steps():
    x, y = make_seq_digits()
    bunch = load_digits()
    assert x.shape == (1797, 8, 8)
    assert torch.equal(x[5, 3], torch.tensor(bunch.images[5, 3] / 16.0, dtype=torch.float32))
    assert torch.equal(y, torch.tensor(bunch.target))


@pytest.mark.parametrize("name,in_shape,num,task", [
    ("adding", (50, 2), 1, "regression"), ("copy", (40, 10), 10, "classification"),
    ("seq_digits", (8, 8), 10, "classification")])
def test_registered_datasets(name, in_shape, num, task):
    kw = {"n": 200} if name != "seq_digits" else {}
    splits = DATASETS.create(name, seed=0, **kw)
    assert isinstance(splits, DataSplits)
    assert (tuple(splits.in_shape), splits.num_classes, splits.task) == (in_shape, num, task)
    xb, _ = splits.train[0]
    assert tuple(xb.shape) == in_shape
    assert len(splits.train) + len(splits.val) + len(splits.test) == (200 if kw else 1797)


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru", "tcn", "text_cnn"])
@pytest.mark.parametrize("data", ["adding", "seq_digits"])
def test_model_contract(model, data):
    torch.manual_seed(0)
    splits = DATASETS.create(data, seed=0, **({"n": 64, "seq_len": 12} if data == "adding" else {}))
    m = MODELS.create(model, splits.in_shape, splits.num_classes)
    x = torch.stack([splits.train[i][0] for i in range(8)])
    y = torch.stack([splits.train[i][1] for i in range(8)])
    out = m(x)
    assert out.shape == (8, splits.num_classes)
    assert bool(torch.isfinite(out).all())
    loss = F.mse_loss(out, y) if splits.task == "regression" else F.cross_entropy(out, y)
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name


@pytest.mark.parametrize("model", ["rnn_seq", "lstm_seq", "gru_seq", "tcn_seq"])
def test_per_step_models_on_copy(model):
    splits = DATASETS.create("copy", seed=0, n=16, num_symbols=3, delay=2)
    m = MODELS.create(model, splits.in_shape, splits.num_classes)
    x = torch.stack([splits.train[i][0] for i in range(4)])
    y = torch.stack([splits.train[i][1] for i in range(4)])
    out = m(x)
    assert out.shape == (4, splits.num_classes, 8)
    F.cross_entropy(out, y).backward()
    with pytest.raises(ValueError, match="out_steps"):
        MODELS.create(model, splits.in_shape, splits.num_classes, out_steps=2)


def test_out_steps_reads_the_last_steps():
    torch.manual_seed(0)
    m = MODELS.create("lstm", (6, 3), 4, hidden_size=5, out_steps=2).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    assert torch.equal(m(x), m.head.fc(m.rnn(x)[0][:, -2:]).transpose(1, 2))


def test_last_step_readout_is_causal_recurrent_output():
    torch.manual_seed(0)
    m = MODELS.create("gru", (5, 3), 2, hidden_size=4).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    assert torch.equal(m(x), m.head.fc(m.rnn(x)[0][:, -1]))


def test_variational_dropout_option():
    torch.manual_seed(0)
    m = MODELS.create("lstm", (6, 3), 2, hidden_size=4, variational_dropout=0.5).double()
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    m.eval()
    assert torch.equal(m(x), m.head.fc(m.rnn(x)[0][:, -1]))  # eval: identity
    m.train()
    torch.manual_seed(1)
    dropped_in = m.drop(x)
    zero = dropped_in == 0
    assert bool(zero.any()) and torch.equal(zero, zero[:, :1].expand_as(zero))  # same mask at every step
    with pytest.raises(ValueError, match="p"):
        MODELS.create("gru", (6, 3), 2, variational_dropout=1.5)


def test_model_errors():
    with pytest.raises(ValueError, match="in_shape"):
        MODELS.create("lstm", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="out_steps"):
        MODELS.create("lstm", (8, 8), 10, out_steps=9)
    with pytest.raises(ValueError, match="x"):
        MODELS.create("gru", (8, 8), 10)(torch.zeros(2, 64))
    with pytest.raises(ValueError, match="levels"):
        MODELS.create("tcn", (8, 8), 10, levels=0)
