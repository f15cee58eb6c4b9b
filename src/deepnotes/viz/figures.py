"""Headless matplotlib figures with one consistent look."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: the lab and CI have no display

import matplotlib.pyplot as plt  # noqa: E402


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6):
    """A figure and its axes (an array when more than one), sized per panel."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=True)
    fig.set_layout_engine("constrained")
    return fig, axes
