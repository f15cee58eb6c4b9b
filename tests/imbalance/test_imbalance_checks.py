"""imbalanced-learn's own sampler checks on our samplers, and the bad-input contract."""

import numpy as np
import pytest
import torch
from imblearn.over_sampling.base import BaseOverSampler
from imblearn.under_sampling.base import BaseUnderSampler
from imblearn.utils import estimator_checks as ec

from deepnotes.imbalance import (
    ADASYN,
    SMOTE,
    ClusterCentroids,
    GaussianNoiseOverSampler,
    RandomOverSampler,
    RandomUnderSampler,
    resolve_sampling_strategy,
)

OVERS = (RandomOverSampler, GaussianNoiseOverSampler, SMOTE, ADASYN)
UNDERS = (RandomUnderSampler, ClusterCentroids)
CHECKS = [
    ec.check_target_type,
    ec.check_samplers_one_label,
    ec.check_samplers_fit,
    ec.check_samplers_fit_resample,
    ec.check_samplers_sampling_strategy_fit_resample,
    ec.check_samplers_list,
    ec.check_samplers_multiclass_ova,
    ec.check_samplers_preserve_dtype,
    ec.check_samplers_2d_target,
]


@pytest.fixture
def imblearn_sees_our_kinds(monkeypatch):
    # the count checks only run for imblearn's base classes: make ours count as over/under-samplers
    monkeypatch.setattr(ec, "BaseOverSampler", (BaseOverSampler, *OVERS))
    monkeypatch.setattr(ec, "BaseUnderSampler", (BaseUnderSampler, *UNDERS))


@pytest.mark.parametrize("cls", OVERS + UNDERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_imblearn_sampler_checks(cls, check, imblearn_sees_our_kinds):
    check(cls.__name__, cls(random_state=0))


# All of imbalanced-learn's checks that our tags select (pandas DataFrame / Series, pandas
# sparse columns, sample_indices_, get_feature_names_out, ...). Not selected, by our tags:
# sparse matrices, string features and NaN features, which the samplers reject.
@ec.parametrize_with_checks([cls(random_state=0) for cls in OVERS + UNDERS])
def test_imblearn_estimator_checks(estimator, check, imblearn_sees_our_kinds):
    check(estimator)


@pytest.mark.parametrize("cls", OVERS + UNDERS, ids=lambda c: c.__name__)
def test_dataframe_stays_a_dataframe_like_imblearn(cls):
    import importlib

    import pandas as pd

    X, y = xy(60)
    X_df = pd.DataFrame(X, columns=["a", "b", "c"]).astype({"c": np.float32})
    y_s = pd.Series(np.where(y == 1, "rare", "common"), name="label")
    X_res, y_res = cls(random_state=0).fit_resample(X_df, y_s)
    assert isinstance(X_res, pd.DataFrame) and isinstance(y_res, pd.Series)
    assert X_res.columns.tolist() == ["a", "b", "c"] and y_res.name == "label"
    assert X_res.dtypes.tolist() == X_df.dtypes.tolist()
    module = "over_sampling" if cls in OVERS else "under_sampling"
    ref_name = "RandomOverSampler" if cls is GaussianNoiseOverSampler else cls.__name__
    ref = getattr(importlib.import_module(f"imblearn.{module}"), ref_name)(random_state=0)
    Xr, yr = ref.fit_resample(X_df, y_s)
    assert type(Xr) is type(X_res) and type(yr) is type(y_res)
    assert Xr.columns.tolist() == X_res.columns.tolist() and yr.name == y_res.name
    assert y_res.value_counts().to_dict() == yr.value_counts().to_dict()
    np.testing.assert_array_equal(
        cls(random_state=0).fit_resample(X_df.to_numpy(), y_s.to_numpy())[1], y_res.to_numpy()
    )


SAMPLERS = [
    RandomUnderSampler,
    RandomOverSampler,
    GaussianNoiseOverSampler,
    SMOTE,
    ADASYN,
    ClusterCentroids,
]


def xy(n=40):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)), np.r_[np.zeros(n - 10, int), np.ones(10, int)]


@pytest.mark.parametrize("cls", SAMPLERS, ids=lambda c: c.__name__)
def test_bad_inputs(cls):
    X, y = xy()
    with pytest.raises(ValueError, match="class"):
        cls().fit_resample(X, np.zeros(40, int))
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X must be finite"):
        cls().fit_resample(bad, y)
    with pytest.raises(ValueError, match="inconsistent lengths"):
        cls().fit_resample(X, y[:-1])
    with pytest.raises(ValueError, match="sampling_strategy"):
        cls(sampling_strategy="most").fit_resample(X, y)
    with pytest.raises(ValueError, match="sampling_strategy"):
        cls(sampling_strategy={7: 3}).fit_resample(X, y)
    with pytest.raises(ValueError, match="y: Unknown label type"):
        cls().fit_resample(X, np.linspace(0, 1, 40))
    with pytest.raises(ValueError, match="multilabel"):
        cls().fit_resample(X, np.ones((40, 2), int))
    with pytest.raises(ValueError, match="X must be 2-D"):
        cls().fit_resample(X[:, 0], y)
    with pytest.raises(TypeError, match="X must hold numbers"):
        cls().fit_resample(np.array([["a"]] * 40), y)


def test_neighbour_count_must_fit_the_class():
    X, y = xy()
    with pytest.raises(ValueError, match="k_neighbors"):
        SMOTE(k_neighbors=10).fit_resample(X, y)  # minority has 10 samples: at most 9 neighbours
    SMOTE(k_neighbors=9, random_state=0).fit_resample(X, y)
    with pytest.raises(ValueError, match="n_neighbors"):
        ADASYN(n_neighbors=10).fit_resample(X, y)
    with pytest.raises(TypeError, match="k_neighbors"):
        SMOTE(k_neighbors=2.5).fit_resample(X, y)


def test_adasyn_without_other_class_neighbours_raises():
    X = np.r_[
        np.zeros((20, 2)) + np.arange(20)[:, None] * 1e-3,
        np.full((8, 2), 100.0) + np.arange(8)[:, None],
    ]
    y = np.r_[np.zeros(20, int), np.ones(8, int)]
    with pytest.raises(ValueError, match="SMOTE instead"):
        ADASYN(n_neighbors=3).fit_resample(X, y)


def test_strategy_errors_name_the_argument():
    classes, counts = np.array([0, 1, 2]), np.array([10, 5, 2])
    with pytest.raises(ValueError, match="sampling_strategy"):
        resolve_sampling_strategy(0.5, classes, counts, "over-sampling")  # float: binary only
    with pytest.raises(ValueError, match="sampling_strategy"):
        resolve_sampling_strategy({0: 3}, classes, counts, "over-sampling")  # fewer than present
    with pytest.raises(ValueError, match="sampling_strategy"):
        resolve_sampling_strategy({2: 5}, classes, counts, "under-sampling")  # more than present
    with pytest.raises(ValueError, match="sampling_strategy"):
        resolve_sampling_strategy({2: -1}, classes, counts, "under-sampling")
    with pytest.raises(ValueError, match="sampling_strategy"):
        resolve_sampling_strategy("majority", classes, counts, "over-sampling")
    with pytest.raises(ValueError, match="sampling_strategy"):
        resolve_sampling_strategy("minority", classes, counts, "under-sampling")
    with pytest.raises(ValueError, match="sampling_strategy"):
        resolve_sampling_strategy(1.5, classes[:2], counts[:2], "over-sampling")
    with pytest.raises(ValueError, match="sampling_strategy"):
        resolve_sampling_strategy(0.1, classes[:2], counts[:2], "over-sampling")  # would remove
    with pytest.raises(ValueError, match="sampling_strategy"):
        resolve_sampling_strategy([0, 1], classes, counts, "over-sampling")
    with pytest.raises(ValueError, match="sampling_strategy"):
        resolve_sampling_strategy(lambda y: [1], classes, counts, "over-sampling")


def test_sample_indices_point_at_the_rows():
    X, y = xy()
    for s in (RandomUnderSampler(random_state=1), RandomOverSampler(random_state=1)):
        Xr, yr = s.fit_resample(torch.from_numpy(X), torch.from_numpy(y))
        assert torch.equal(Xr, torch.from_numpy(X[s.sample_indices_]))
        assert torch.equal(yr, torch.from_numpy(y[s.sample_indices_]))
    for s in (SMOTE(), ClusterCentroids()):
        s.fit_resample(X, y)
        assert not hasattr(s, "sample_indices_")  # new points have no source row


def test_gaussian_noise_rejects_negative_shrinkage():
    X, y = xy()
    with pytest.raises(ValueError, match="shrinkage"):
        GaussianNoiseOverSampler(shrinkage=-1.0).fit_resample(X, y)


def test_bfloat16_tensor_features_keep_their_dtype():
    # numpy has no bfloat16: these rows go through torch's own indexing
    X, y = xy()
    Xb = torch.from_numpy(X).to(torch.bfloat16)
    for s in (RandomUnderSampler(random_state=0), RandomOverSampler(random_state=0)):
        Xr, _ = s.fit_resample(Xb, torch.from_numpy(y))
        assert Xr.dtype == torch.bfloat16
        assert torch.equal(Xr, Xb[torch.from_numpy(s.sample_indices_)])
