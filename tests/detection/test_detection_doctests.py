"""The examples in the docstrings of deepnotes.detection are correct."""

import doctest
import importlib

import pytest

MODULES = [
    "deepnotes.detection.boxes",
    "deepnotes.detection.iou",
    "deepnotes.detection.coder",
    "deepnotes.detection.nms",
    "deepnotes.detection.soft_nms",
    "deepnotes.detection.mask_iou",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
