"""Shared plumbing of the samplers: input conversion, ``sampling_strategy`` and ``fit_resample``.

The samplers follow imbalanced-learn's interface: ``fit_resample(X, y) -> (X_res, y_res)`` with
``X`` a numpy array, a list of rows, a pandas DataFrame or a torch tensor, returned in the same
kind and dtype (a DataFrame keeps its column names), and ``y`` 1-D labels (a pandas Series keeps
its name), a column ``(n, 1)`` or a one-vs-all indicator ``(n, n_classes)`` (returned in the same
encoding). Internally labels become codes ``0 .. n_classes - 1`` (sorted class order).

``sampling_strategy`` is resolved exactly as ``imblearn.utils.check_sampling_strategy`` does, so
the same settings give the same per-class target counts:

* over-sampling: the value is the number of samples to *add* to the class;
* under-sampling: the value is the number of samples to *keep* in the class.

Samplers that create new points (Gaussian noise, SMOTE, ADASYN, cluster centroids) turn integer
features into float64; the others keep any numeric dtype.

Degenerate inputs: one class only, NaN or infinite features, mismatched lengths, continuous or
multilabel targets and unknown strategies raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import InputTags, Tags, check_random_state
from sklearn.utils.multiclass import type_of_target

STRATEGIES = ("auto", "all", "majority", "minority", "not majority", "not minority")
_UNKNOWN_TARGETS = ("continuous", "continuous-multioutput", "multiclass-multioutput", "unknown")


# ---------------------------------------------------------------------------------------- inputs
def as_features(X: Any, *, floating: bool = False) -> tuple[torch.Tensor, Callable[[Any], Any]]:
    """``X`` as a 2-D tensor (sharing memory with numpy input) and a function restoring its kind.

    ``floating=True`` converts integer features to float64 (the samplers that create new points
    need real numbers). NaN or infinite values raise ``ValueError`` naming ``X``.
    """
    frame = None
    if _is_frame(X):  # a pandas DataFrame comes back as one, with its column names
        frame = (X.columns, X.dtypes)
        X = X.to_numpy()
    if isinstance(X, torch.Tensor):
        kind, t = "tensor", X
    else:
        if isinstance(X, (str, bytes, dict)) or X is None:
            raise TypeError(
                f"X must be an array, a list of rows or a tensor, got {type(X).__name__}"
            )
        kind = "list" if isinstance(X, (list, tuple)) else "numpy"
        arr = np.asarray(X)
        if arr.dtype == object or arr.dtype.kind in "USVb":
            raise TypeError(f"X must hold numbers, got an array of dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dim() != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError("X must not be empty")
    if floating and not t.is_floating_point():
        t = t.to(torch.float64)
    # a finite sum proves every entry finite (one cheap pass); only otherwise look element-wise,
    # since the sum of finite values may overflow
    if (
        t.is_floating_point()
        and not bool(torch.isfinite(_sum(t)))
        and not bool(torch.isfinite(t).all())
    ):
        raise ValueError("X must be finite (found NaN or inf)")

    def restore(out: torch.Tensor) -> Any:
        if kind == "tensor":
            return out
        arr = out.cpu().numpy()
        if frame is not None:
            import pandas as pd

            df = pd.DataFrame(arr, columns=frame[0])
            # each column back to its dtype (sparse ones too), except integer columns that now
            # hold interpolated points
            keep = {
                c: dt
                for c, dt in zip(frame[0], frame[1])
                if not floating or np.dtype(getattr(dt, "subtype", dt)).kind == "f"
            }
            return df.astype(keep)
        return arr.tolist() if kind == "list" else arr

    return t, restore


def _is_frame(X: Any) -> bool:
    return type(X).__module__.startswith("pandas") and hasattr(X, "columns")


def _is_series(y: Any) -> bool:
    return type(y).__module__.startswith("pandas") and getattr(y, "ndim", 0) == 1


def as_target(y: Any, n: int) -> tuple[torch.Tensor, np.ndarray, Callable[[torch.Tensor], Any]]:
    """Class codes ``(n,)`` int64, the sorted classes, and a function mapping codes back to ``y``'s form."""
    if isinstance(y, (str, bytes, dict)) or y is None:
        raise TypeError(f"y must be an array, a list or a tensor, got {type(y).__name__}")
    pandas_kind = None  # a Series stays a Series (its name kept), a DataFrame a DataFrame
    if _is_series(y):
        pandas_kind, y = ("series", y.name), y.to_numpy()
    elif _is_frame(y):
        pandas_kind, y = ("frame", y.columns), y.to_numpy()
    kind = (
        "tensor"
        if isinstance(y, torch.Tensor)
        else ("list" if isinstance(y, (list, tuple)) else "numpy")
    )
    arr = y.detach().cpu().numpy() if kind == "tensor" else np.asarray(y)
    if arr.ndim == 0 or arr.shape[0] != n:
        got = 1 if arr.ndim == 0 else arr.shape[0]
        raise ValueError(f"inconsistent lengths: X has {n} samples, y has {got}")
    column = arr.ndim == 2 and arr.shape[1] == 1
    if column:
        arr = arr.ravel()
    target = type_of_target(arr)
    ova = target == "multilabel-indicator"
    if ova:
        if bool((arr.sum(axis=1) != 1).any()):
            raise ValueError("y: multilabel and multioutput targets are not supported")
        codes_np = arr.argmax(axis=1)
        classes = np.arange(arr.shape[1])
    elif target in _UNKNOWN_TARGETS or arr.ndim != 1:
        raise ValueError(f"y: Unknown label type: {target!r}; expected class labels")
    else:
        classes, codes_np = _encode(arr)
    codes = torch.from_numpy(np.ascontiguousarray(codes_np, dtype=np.int64))
    dtype = arr.dtype

    def restore(out_codes: torch.Tensor) -> Any:
        c = out_codes.cpu().numpy()
        if ova:
            res = np.eye(arr.shape[1], dtype=dtype)[c]
        else:
            res = classes[c].astype(dtype, copy=False)
            if column:
                res = res.reshape(-1, 1)
        if kind == "tensor":
            return torch.from_numpy(np.ascontiguousarray(res)).to(y.device)
        if pandas_kind is not None:
            import pandas as pd

            if pandas_kind[0] == "series":
                return pd.Series(res, name=pandas_kind[1])
            return pd.DataFrame(res.reshape(len(res), -1), columns=pandas_kind[1])
        return res.tolist() if kind == "list" else res

    return codes, classes, restore


def _encode(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted classes and each label's index among them (``np.unique(..., return_inverse=True)``).

    Integer labels in a compact range are counted with ``bincount`` (linear time) instead of
    being sorted.
    """
    if arr.dtype.kind in "iu" and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if hi - lo <= 4 * arr.size + 1024:
            present = np.bincount(arr - lo, minlength=hi - lo + 1) > 0
            lut = np.cumsum(present) - 1
            return (np.flatnonzero(present) + lo).astype(arr.dtype), lut[arr - lo]
    return np.unique(arr, return_inverse=True)


# ---------------------------------------------------------------------------- sampling strategy
def resolve_sampling_strategy(
    sampling_strategy: Any, classes: np.ndarray, counts: np.ndarray, sampling_type: str
) -> OrderedDict:
    """Per-class target numbers, keyed by class label and sorted (imblearn's rules).

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable
        float (binary only): over-sampling — minority size after resampling as a fraction of the
        majority size; under-sampling — minority size over majority size after resampling.
        str: one of ``STRATEGIES``. dict: class -> wanted number of samples. callable: ``f(y)``
        returning such a dict (called with the labels in sorted order, which have the counts of
        the real ``y``).
    classes : ndarray (n_classes,)
    counts : ndarray (n_classes,)
    sampling_type : {"over-sampling", "under-sampling"}

    Returns
    -------
    OrderedDict class -> number of samples to add (over) or keep (under).
    """
    if len(classes) < 2:
        raise ValueError(f"y needs more than 1 class to resample, got {len(classes)} class")
    over = sampling_type == "over-sampling"
    stats = dict(zip(classes.tolist(), counts.tolist()))
    # imblearn takes the first class reaching the max / min in sorted order
    majority = max(stats, key=stats.get)
    minority = min(stats, key=stats.get)
    n_max, n_min = stats[majority], stats[minority]
    s = sampling_strategy
    if callable(s) and not isinstance(s, str):
        s = s(np.repeat(classes, counts))
        if not isinstance(s, dict):
            raise ValueError("sampling_strategy: a callable must return a dict class -> n_samples")
    if isinstance(s, str):
        if s not in STRATEGIES:
            raise ValueError(
                f"sampling_strategy must be one of {', '.join(map(repr, STRATEGIES))}; got {s!r}"
            )
        if s == "auto":
            s = "not majority" if over else "not minority"
        if over and s == "majority":
            raise ValueError("sampling_strategy='majority' cannot be used with an over-sampler")
        if not over and s == "minority":
            raise ValueError("sampling_strategy='minority' cannot be used with an under-sampler")
        keep = {
            "all": lambda c: True,
            "majority": lambda c: c == majority,
            "minority": lambda c: c == minority,
            "not majority": lambda c: c != majority,
            "not minority": lambda c: c != minority,
        }[s]
        out = {c: (n_max - v if over else n_min) for c, v in stats.items() if keep(c)}
    elif isinstance(s, dict):
        missing = set(s) - set(stats)
        if missing:
            raise ValueError(f"sampling_strategy: classes {sorted(missing)} are not present in y")
        out = {}
        for c, want in s.items():
            want = int(want)
            if want < 0:
                raise ValueError(f"sampling_strategy: negative number of samples for class {c!r}")
            if over and want < stats[c]:
                raise ValueError(
                    f"sampling_strategy: over-sampling asks {want} samples of class {c!r}, "
                    f"which has {stats[c]} already"
                )
            if not over and want > stats[c]:
                raise ValueError(
                    f"sampling_strategy: under-sampling asks {want} samples of class {c!r}, "
                    f"which has only {stats[c]}"
                )
            out[c] = want - stats[c] if over else want
    elif isinstance(s, (float, int, np.floating, np.integer)) and not isinstance(s, bool):
        s = float(s)
        if not 0.0 < s <= 1.0:
            raise ValueError(f"sampling_strategy as a float must be in (0, 1], got {s}")
        if len(classes) != 2:
            raise ValueError("sampling_strategy can be a float only for two classes; use a dict")
        if over:
            out = {c: int(n_max * s - v) for c, v in stats.items() if c != majority}
            if any(v <= 0 for v in out.values()):
                raise ValueError(
                    "sampling_strategy: the ratio would remove minority samples; increase it"
                )
        else:
            out = {c: int(n_min / s) for c in stats if c != minority}
            if any(v > stats[c] for c, v in out.items()):
                raise ValueError(
                    "sampling_strategy: the ratio would add majority samples; increase it"
                )
    else:
        raise ValueError(
            f"sampling_strategy must be a float, a str, a dict or a callable, got {type(s).__name__}"
        )
    return OrderedDict(sorted(out.items()))


# ------------------------------------------------------------------------------------- sampler
# The tags imbalanced-learn's checks read (its own Tags add these fields to scikit-learn's); it
# is a test dependency only, so the fields are declared here.
@dataclass(slots=True)
class SamplerInputTags(InputTags):
    dataframe: bool = True  # a DataFrame comes back as a DataFrame


@dataclass(slots=True)
class SamplerTags:
    sample_indices: bool = False  # whether fit_resample sets sample_indices_


@dataclass(slots=True)
class SamplerEstimatorTags(Tags):
    sampler_tags: SamplerTags | None = None


class BaseSampler(BaseEstimator):
    """``fit_resample`` plumbing; subclasses implement ``_resample(X, codes, targets, rng)``.

    ``targets`` maps class code -> number to add (over-samplers) or keep (under-samplers);
    ``_resample`` returns the resampled ``(X, codes)`` as tensors.
    """

    _sampling_type = "over-sampling"
    _floating = False
    _sample_indices = False

    def __sklearn_tags__(self) -> SamplerEstimatorTags:
        base = super().__sklearn_tags__()
        fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
        fields.update(
            estimator_type="sampler",
            input_tags=SamplerInputTags(),
            sampler_tags=SamplerTags(sample_indices=self._sample_indices),
        )
        return SamplerEstimatorTags(**fields)

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        """Resample ``X (n, d)`` and ``y (n,)``; returns them in the input's kind and dtype."""
        names = _feature_names(X)
        Xt, restore_X = as_features(X, floating=self._floating)
        codes, classes, restore_y = as_target(y, Xt.shape[0])
        self.n_features_in_ = Xt.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        else:
            self.__dict__.pop("feature_names_in_", None)
        counts = np.bincount(codes.numpy(), minlength=len(classes))
        self.sampling_strategy_ = resolve_sampling_strategy(
            self.sampling_strategy, classes, counts, self._sampling_type
        )
        lookup = {c: i for i, c in enumerate(classes.tolist())}
        targets = {lookup[c]: n for c, n in self.sampling_strategy_.items()}
        X_res, codes_res = self._resample(Xt, codes, counts, targets)
        return restore_X(X_res), restore_y(codes_res)

    def fit(self, X: Any, y: Any) -> BaseSampler:
        """Check the inputs and resolve ``sampling_strategy_`` (as imblearn's ``fit``)."""
        self.fit_resample(X, y)
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns: the input's (samplers keep the columns), as imblearn."""
        if not hasattr(self, "n_features_in_"):
            raise AttributeError("call fit_resample first: the number of features is not known")
        if input_features is None:
            if hasattr(self, "feature_names_in_"):
                return self.feature_names_in_.copy()
            return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        names = np.asarray(input_features, dtype=object)
        if len(names) != self.n_features_in_:
            raise ValueError(
                f"input_features should have length equal to the number of features "
                f"({self.n_features_in_}), got {len(names)}"
            )
        if hasattr(self, "feature_names_in_") and not np.array_equal(names, self.feature_names_in_):
            raise ValueError("input_features is not equal to feature_names_in_")
        return names

    def _resample(self, X, codes, counts, targets):  # pragma: no cover - abstract
        raise NotImplementedError


def _feature_names(X: Any) -> np.ndarray | None:
    """A DataFrame's column names when they are all strings (scikit-learn's rule), else None."""
    if not _is_frame(X):
        return None
    names = np.asarray(X.columns, dtype=object)
    return names if all(isinstance(c, str) for c in names) else None


def random_state_of(random_state: Any) -> np.random.RandomState:
    """A ``RandomState`` from ``None``, an int or an existing ``RandomState`` (as sklearn)."""
    try:
        return check_random_state(random_state)
    except ValueError as exc:
        raise ValueError(f"random_state must be None, an int or a RandomState: {exc}") from exc


# Row gathers and concatenations of CPU data go through numpy: its copies are single-threaded,
# while torch's parallel ones wait for each other on a machine whose cores other processes hold;
# on other devices torch does the work.
def _numpy_ok(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype != torch.bfloat16  # numpy has no bfloat16


def _sum(t: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(t.detach().numpy().sum()) if _numpy_ok(t) else t.sum()


def take_rows(X: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``X[idx]`` (rows)."""
    if _numpy_ok(X):
        return torch.from_numpy(X.detach().numpy()[idx.cpu().numpy()])
    return X[idx.to(X.device)]


def cat_rows(parts: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(parts)`` along the rows."""
    if all(_numpy_ok(p) for p in parts):
        return torch.from_numpy(np.concatenate([p.detach().numpy() for p in parts]))
    return torch.cat(parts)


def class_indices(codes: torch.Tensor, c: int) -> torch.Tensor:
    """Indices of the samples of class code ``c``, in order (``np.flatnonzero(y == c)``)."""
    # numpy's flatnonzero is a single-threaded pass: faster than torch.nonzero for one class
    return torch.from_numpy(np.flatnonzero(codes.numpy() == c))
