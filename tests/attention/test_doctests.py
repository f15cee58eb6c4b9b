"""The examples in the docstrings of deepnotes.attention run and print what they say."""

import doctest
import importlib

import pytest

MODULES = [
    "deepnotes.attention.functional",
    "deepnotes.attention.multihead",
    "deepnotes.attention.positional",
    "deepnotes.attention.encoder",
    "deepnotes.attention.vit",
    "deepnotes.attention.swin",
    "deepnotes.attention.pvt",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, extraglobs={"torch": importlib.import_module("torch")})
    assert result.attempted > 0 and result.failed == 0
