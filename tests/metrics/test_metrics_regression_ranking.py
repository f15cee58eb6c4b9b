"""MAE / RMSE / MAPE vs scikit-learn; precision@k / recall@k vs torchmetrics and by hand."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from torchmetrics.functional.retrieval import retrieval_precision, retrieval_recall

from deepnotes.metrics import mae, mape, precision_at_k, recall_at_k, rmse


def _reg(seed, shape=(50,)):
    rng = np.random.default_rng(seed)
    y = rng.normal(3, 2, shape)
    return y, y + rng.normal(0, 1, shape)


@pytest.mark.parametrize("shape", [(50,), (40, 3)])
def test_regression_matches_sklearn(shape):
    y, p = _reg(0, shape)
    assert mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-12)
    assert rmse(y, p) == pytest.approx(skm.root_mean_squared_error(y, p), rel=1e-12)
    assert mape(y, p) == pytest.approx(skm.mean_absolute_percentage_error(y, p), rel=1e-12)
    assert mae(torch.from_numpy(y), torch.from_numpy(p)) == pytest.approx(
        skm.mean_absolute_error(y, p), rel=1e-12
    )
    assert isinstance(rmse(y, p), float)


def test_mape_zero_target_policy():
    y, p = np.array([0.0, 2.0, 4.0]), np.array([0.5, 2.0, 3.0])
    with pytest.raises(ValueError, match="y_true"):
        mape(y, p)
    eps = np.finfo(np.float64).eps
    assert mape(y, p, epsilon=eps) == pytest.approx(
        skm.mean_absolute_percentage_error(y, p), rel=1e-12
    )
    assert mape(y, p, epsilon=1.0) == pytest.approx((0.5 / 1 + 0 + 1 / 4) / 3, abs=1e-15)
    with pytest.raises(ValueError, match="epsilon"):
        mape(y, p, epsilon=0.0)


def test_hand_values_outlier():
    y = np.zeros(4)
    p = np.array([1.0, 1.0, 1.0, 5.0])
    assert mae(y, p) == 2.0 and rmse(y, p) == pytest.approx(np.sqrt(7.0), abs=1e-15)


def test_regression_errors():
    y, p = _reg(1)
    with pytest.raises(ValueError, match="y_pred"):
        mae(y, p[:-1])
    with pytest.raises(ValueError, match="y_true"):
        rmse(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="y_pred"):
        rmse(y, np.where(np.arange(len(p)) == 3, np.nan, p))
    with pytest.raises(ValueError, match="y_true"):
        mae(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="y_true"):
        mae(None, p)


@pytest.mark.parametrize("k", [1, 3, 10, 25])
def test_top_k_matches_torchmetrics(k):
    rng = np.random.default_rng(k)
    s = rng.permutation(25).astype(np.float64) / 7  # distinct scores: torch.topk's order is defined
    y = rng.integers(0, 2, 25)
    y[0] = 1
    ts, ty = torch.from_numpy(s), torch.from_numpy(y).bool()
    assert precision_at_k(y, s, k) == pytest.approx(
        retrieval_precision(ts, ty, top_k=k).item(), rel=1e-6
    )
    assert recall_at_k(y, s, k) == pytest.approx(retrieval_recall(ts, ty, top_k=k).item(), rel=1e-6)


def test_top_k_ties_by_position():
    y, s = [0, 1, 1], [0.5, 0.5, 0.1]
    assert precision_at_k(y, s, 1) == 0.0  # the earlier of the tied items ranks first
    assert precision_at_k([1, 0, 1], s, 1) == 1.0
    assert recall_at_k([1, 0, 1], s, 2) == 0.5


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.floats(-10, 10, allow_nan=False)), min_size=1, max_size=20
    ).filter(lambda v: any(b for b, _ in v))
)
def test_top_k_bounds(pairs):
    y = np.array([b for b, _ in pairs])
    s = np.array([v for _, v in pairs])
    n = len(y)
    assert 0.0 <= precision_at_k(y, s, 1) <= 1.0
    assert recall_at_k(y, s, n) == 1.0  # everything retrieved
    assert precision_at_k(y, s, n) == pytest.approx(y.mean(), abs=1e-15)


def test_top_k_errors():
    with pytest.raises(ValueError, match="k"):
        precision_at_k([1, 0], [0.1, 0.2], 3)
    with pytest.raises(ValueError, match="k"):
        precision_at_k([1, 0], [0.1, 0.2], 0)
    with pytest.raises(ValueError, match="y_true"):
        recall_at_k([0, 0], [0.1, 0.2], 1)
    with pytest.raises(ValueError, match="y_score"):
        precision_at_k([1, 0], [0.1, float("nan")], 1)
    with pytest.raises(ValueError, match="y_true"):
        precision_at_k([2, 0], [0.1, 0.2], 1)
