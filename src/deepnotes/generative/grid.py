"""Sample grids: tile a batch of images into one picture and write it as a PNG."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from deepnotes.core.checks import check_float, check_int, check_tensor


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 0.0) -> torch.Tensor:
    """Tile ``images (Tensor[N, C, H, W])`` row by row, ``nrow`` per row: ``Tensor[C, H', W']``.

    Same layout as ``torchvision.utils.make_grid`` (padding around and between cells); a partial
    last row is filled with ``pad_value``. Unlike torchvision, a batch of one is padded too
    (torchvision returns a single image unchanged).
    """
    check_tensor("images", images, ndim=4, nonempty=True)
    nrow = check_int("nrow", nrow, min=1)
    padding = check_int("padding", padding, min=0)
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    cell_h, cell_w = h + padding, w + padding
    grid = images.new_full((c, rows * cell_h + padding, cols * cell_w + padding), check_float("pad_value", pad_value))
    # place every image at once: pad the batch to rows·cols cells, then fold the cells into the grid
    cells = images.new_full((rows * cols, c, cell_h, cell_w), pad_value)
    cells[:n, :, padding:, padding:] = images
    tiled = cells.view(rows, cols, c, cell_h, cell_w).permute(2, 0, 3, 1, 4).reshape(c, rows * cell_h, cols * cell_w)
    grid[:, : rows * cell_h, : cols * cell_w] = tiled
    return grid


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int = 8, scale: int = 8) -> Path:
    """Write ``images (Tensor[N, C, H, W])`` with pixels in ``[0, 1]`` as a PNG grid, each pixel ``scale``² pixels.

    Values outside ``[0, 1]`` are clipped. Returns the path. The file is written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepnotes.core.io import atomic_write_bytes

    check_tensor("images", images, ndim=4, nonempty=True, floating=True)
    scale = check_int("scale", scale, min=1)
    grid = image_grid(images.detach().float().cpu().clamp(0, 1), nrow, padding=1, pad_value=0.5)
    grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    picture = grid[0].numpy() if grid.shape[0] == 1 else grid.permute(1, 2, 0).numpy()
    import io

    buf = io.BytesIO()
    plt.imsave(buf, picture, cmap="gray" if grid.shape[0] == 1 else None, vmin=0, vmax=1, format="png")
    return atomic_write_bytes(path, buf.getvalue())
