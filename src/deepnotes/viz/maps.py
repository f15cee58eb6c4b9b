"""Drawing explanation maps: an image, a heat map over it with a colour bar, tiles, 2-D embeddings.

These take tensors produced by :mod:`deepnotes.explain` and an axes; they never compute a map.
"""

from __future__ import annotations

import numpy as np
import torch


def _hwc(image: torch.Tensor) -> tuple[np.ndarray, str | None]:
    """``(C, H, W)`` or ``(H, W)`` → an array matplotlib shows (grey for one channel, RGB for three)."""
    img = image.detach().double().cpu()
    if img.dim() == 3 and img.shape[0] == 1:
        img = img[0]
    if img.dim() == 2:
        return img.numpy(), "gray"
    if img.dim() == 3 and img.shape[0] == 3:
        lo, hi = float(img.min()), float(img.max())
        scaled = (img - lo) / (hi - lo) if hi > lo else torch.zeros_like(img)
        return scaled.permute(1, 2, 0).numpy(), None
    raise ValueError(f"image must be (H, W), (1, H, W) or (3, H, W), got {tuple(image.shape)}")


def show_image(ax, image: torch.Tensor, title: str = "") -> None:
    """The image without ticks."""
    arr, cmap = _hwc(image)
    ax.imshow(arr, cmap=cmap, interpolation="nearest")
    ax.set(title=title, xticks=[], yticks=[])


def show_map(ax, image: torch.Tensor | None, heat: torch.Tensor, title: str = "", label: str = "", cmap: str = "jet",
             alpha: float = 0.5, symmetric: bool = False) -> None:
    """``heat`` ``(H, W)`` drawn over ``image`` (if given) with a colour bar labelled ``label``.

    With ``symmetric`` the colour scale is centred on 0 (for signed maps such as occlusion).
    """
    h = heat.detach().double().cpu().numpy()
    if image is not None:
        arr, cmap_img = _hwc(image)
        ax.imshow(arr, cmap=cmap_img, interpolation="nearest")
    kw = {}
    if symmetric:
        m = float(np.abs(h).max()) or 1.0
        kw = {"vmin": -m, "vmax": m}
        cmap = "coolwarm"
    im = ax.imshow(h, cmap=cmap, alpha=alpha if image is not None else 1.0, interpolation="nearest", **kw)
    ax.set(title=title, xticks=[], yticks=[])
    bar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if label:
        bar.set_label(label)


def show_tiles(axes, images: torch.Tensor, titles: list[str] | None = None) -> None:
    """One image per axes (extra axes are hidden)."""
    flat = list(np.ravel(axes))
    for i, ax in enumerate(flat):
        if i < len(images):
            show_image(ax, images[i], titles[i] if titles else "")
        else:
            ax.axis("off")


def scatter_by_class(ax, xy: np.ndarray, labels, title: str = "", xlabel: str = "component 1",
                     ylabel: str = "component 2") -> None:
    """A 2-D embedding coloured by class, with a legend."""
    labels = np.asarray(labels)
    for c in np.unique(labels):
        sel = labels == c
        ax.scatter(xy[sel, 0], xy[sel, 1], s=8, label=str(c))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(title="class", fontsize=7, markerscale=2, loc="best", ncol=2)
