import math

import numpy as np
import pytest
import torch

from deepnotes.core import checks


def test_check_int():
    assert checks.check_int("n", np.int64(3), min=1) == 3
    with pytest.raises(TypeError, match="n must be an int"):
        checks.check_int("n", True)
    with pytest.raises(TypeError, match="n must be an int"):
        checks.check_int("n", 2.0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        checks.check_int("n", 0, min=1)
    with pytest.raises(ValueError, match="n must be <= 5"):
        checks.check_int("n", 6, max=5)


def test_check_float_bounds_and_finiteness():
    assert checks.check_float("lr", 1) == 1.0
    with pytest.raises(ValueError, match="lr must be finite"):
        checks.check_float("lr", math.nan)
    with pytest.raises(ValueError, match="lr must be > 0"):
        checks.check_positive("lr", 0.0)
    with pytest.raises(ValueError, match="p must be <= 1"):
        checks.check_probability("p", 1.5)
    with pytest.raises(TypeError, match="lr must be a real number"):
        checks.check_float("lr", "0.1")


def test_check_choice_and_type():
    assert checks.check_choice("mode", "min", ("min", "max")) == "min"
    with pytest.raises(ValueError, match="mode must be one of 'min', 'max'"):
        checks.check_choice("mode", "avg", ("min", "max"))
    with pytest.raises(TypeError, match="x must be int"):
        checks.check_type("x", "1", int)


def test_as_tensor_and_check_tensor():
    t = checks.as_tensor("x", [[1, 2], [3, 4]], dtype=torch.float64)
    assert t.dtype == torch.float64 and t.shape == (2, 2)
    with pytest.raises(TypeError, match="x must hold numbers"):
        checks.as_tensor("x", ["a", "b"])
    with pytest.raises(TypeError, match="x must be a tensor or array-like"):
        checks.as_tensor("x", None)
    with pytest.raises(ValueError, match="x must have 1 dimensions"):
        checks.check_tensor("x", t, ndim=1)
    with pytest.raises(ValueError, match="x must not be empty"):
        checks.check_tensor("x", torch.empty(0), nonempty=True)
    with pytest.raises(ValueError, match="x must be finite"):
        checks.check_tensor("x", torch.tensor([1.0, float("nan")]), finite=True)
    with pytest.raises(TypeError, match="x must be a floating-point"):
        checks.check_tensor("x", torch.tensor([1]), floating=True)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        checks.check_tensor("x", [1.0])


def test_check_same_length():
    assert checks.check_same_length(a=[1, 2], b=[3, 4]) == 2
    with pytest.raises(ValueError, match="a has 2, b has 3"):
        checks.check_same_length(a=[1, 2], b=[1, 2, 3])


def test_as_tensor_keeps_scalars_zero_dimensional():
    assert checks.as_tensor("x", 3.5).shape == ()
    assert checks.as_tensor("x", np.float64(2.0)).shape == ()
