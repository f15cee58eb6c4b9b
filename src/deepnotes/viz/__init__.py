"""Plotting helpers shared by the lab and the CLI (matplotlib, headless)."""

from deepnotes.viz.figures import new_figure
from deepnotes.viz.maps import scatter_by_class, show_image, show_map, show_tiles

__all__ = ["new_figure", "scatter_by_class", "show_image", "show_map", "show_tiles"]
