"""Plotting helpers shared by the lab and the CLI (matplotlib, headless)."""

from deepnotes.viz.figures import new_figure

__all__ = ["new_figure"]
