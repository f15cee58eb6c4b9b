"""Chapter 18: segmentation — pixel accuracy vs mIoU on imbalanced masks, skip connections and
decoders for boundaries, atrous convolution's receptive field."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.registry import MODELS
from deepnotes.data.shapes import ShapesDataset
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.metrics import SegmentationConfusion, boundary_f1_score, mean_iou
from deepnotes.viz import new_figure

CLASS_NAMES = ("background", "rectangle", "ellipse", "triangle")


@claim(
    "18a",
    title="On imbalanced masks pixel accuracy looks good while mIoU exposes the small classes",
    topics=("18.2",),
    source="notes 1597-1598",
    statement="Segmentation is scored per class: mean pixel accuracy averages each class's share of "
    "correctly labelled pixels, and mIoU averages each class's intersection over union.",
)
def accuracy_vs_miou(quick: bool, seed: int) -> ClaimResult:
    n = 40 if quick else 400
    ds = ShapesDataset(n, "val", seed=seed, image_size=64, min_size=8, max_size=32, max_objects=4)
    truth = torch.stack([ds[i][1]["semantic"] for i in range(n)]).numpy()
    freq = np.bincount(truth.ravel(), minlength=4) / truth.size
    fg = truth > 0
    common = int(np.bincount(truth[fg], minlength=4)[1:].argmax()) + 1
    rarest = int(freq[1:].argmin()) + 1
    predictors = {
        "all background": np.zeros_like(truth),
        "one class for every object": np.where(fg, common, 0),
        "rarest class missed": np.where(truth == rarest, 0, truth),
    }
    rows = {}
    for name, pred in predictors.items():
        acc = SegmentationConfusion(4).update(truth, pred)
        rows[name] = {
            "pixel_accuracy": acc.pixel_accuracy(),
            "mean_pixel_accuracy": acc.mean_pixel_accuracy(),
            "miou": acc.mean_iou(),
            "per_class_iou": acc.per_class_iou().tolist(),
        }
    # "looks good": PA >= 0.8; "exposes": mIoU loses at least 3x what PA loses (from a perfect 1)
    holds = all(
        r["pixel_accuracy"] >= 0.8 and (1 - r["miou"]) >= 3 * (1 - r["pixel_accuracy"]) for r in rows.values()
    )
    fig, (ax1, ax2) = new_figure(ncols=2, width=5.5)
    ax1.bar(CLASS_NAMES, freq, color=["0.6", "C0", "C1", "C2"])
    ax1.set(ylabel="fraction of pixels", title=f"Class frequencies ({n} shapes masks)")
    ax1.tick_params(axis="x", labelsize=8)
    x = np.arange(len(rows))
    for k, (metric, label) in enumerate(
        (("pixel_accuracy", "pixel accuracy"), ("mean_pixel_accuracy", "mean pixel accuracy"), ("miou", "mIoU"))
    ):
        ax2.bar(x + (k - 1) * 0.27, [r[metric] for r in rows.values()], 0.27, label=label)
    ax2.set_xticks(x, [name.replace(" ", "\n", 1) for name in rows], fontsize=8)
    ax2.set(ylabel="score", ylim=(0, 1.05), title="Degraded segmenters")
    ax2.legend(fontsize=8, loc="upper left")
    measured = {"images": n, "class_frequencies": freq.tolist(), "rarest_class": CLASS_NAMES[rarest], **rows}
    test = (
        "Three degraded segmenters on shapes masks (background ≈ 80 % of the pixels): all background; "
        "every object labelled with the most common object class; the rarest class labelled background. "
        "For each, pixel accuracy must be ≥ 0.8 while 1 − mIoU is at least 3 × (1 − pixel accuracy)."
    )
    return ClaimResult(measured, test, holds, [fig])


def _blobs(g: torch.Generator, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bright ellipses (1–2 per image) on a dark noisy background, and their binary masks."""
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    c = torch.rand(n, 2, 2, generator=g) * size
    r = (0.1 + 0.25 * torch.rand(n, 2, 2, generator=g)) * size
    inside = ((xx - c[..., 0, None, None]) / r[..., 0, None, None]) ** 2 + (
        (yy - c[..., 1, None, None]) / r[..., 1, None, None]
    ) ** 2 <= 1
    mask = inside.any(1)
    x = 0.2 + 0.6 * mask[:, None].float() + 0.08 * torch.randn(n, 3, size, size, generator=g)
    return x, mask.long()


@claim(
    "18b",
    title="Skip connections (FCN-8s) and decoders (SegNet, U-Net) recover boundaries that FCN-32s loses",
    topics=("18.1",),
    source="notes 1611-1617",
    statement="Pooling loses position information, so a decoder that only upsamples gives coarse "
    "masks; shortcut connections from encoder to decoder bring high-resolution information back.",
)
def decoders_sharpen_boundaries(quick: bool, seed: int) -> ClaimResult:
    size, steps, batch = (48, 40, 8) if quick else (64, 100, 8)
    g = torch.Generator().manual_seed(seed)
    x_train, y_train = _blobs(g, steps * batch, size)
    x_val, y_val = _blobs(g, 64, size)
    models = ("fcn32s", "fcn8s", "segnet", "unet")
    scores, masks = {}, {}
    for name in models:
        torch.manual_seed(seed)
        extra = {"depth": 3} if name in ("segnet", "unet") else {}
        model = MODELS.create(name, (3, size, size), 2, width=4, **extra)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        model.train()
        for s in range(steps):
            sl = slice(s * batch, (s + 1) * batch)
            loss = F.cross_entropy(model(x_train[sl]), y_train[sl])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(x_val).argmax(1)
        scores[name] = {
            "boundary_f1_tol1": boundary_f1_score(y_val, pred, 2, tolerance=1),
            "miou": mean_iou(y_val, pred, 2),
        }
        masks[name] = pred[0].numpy()
    base = scores["fcn32s"]["boundary_f1_tol1"]
    gains = {m: scores[m]["boundary_f1_tol1"] - base for m in models[1:]}
    holds = all(v >= 0.1 for v in gains.values())
    fig, axes = new_figure(ncols=len(models) + 2, width=2.3, height=2.6)
    axes[0].imshow(x_val[0].permute(1, 2, 0).clamp(0, 1).numpy())
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(y_val[0].numpy(), cmap="gray")
    axes[1].set_title("truth", fontsize=9)
    for ax, name in zip(axes[2:], models):
        ax.imshow(masks[name], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{name}\nboundary F {scores[name]['boundary_f1_tol1']:.2f}", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    measured = {"image_size": size, "steps": steps, "scores": scores, "gain_over_fcn32s": gains}
    test = (
        f"Each model (width 4) trained {steps} Adam steps (lr 0.01, batch {batch}) on {size}x{size} images "
        "of bright ellipses, from the same seed; boundary F-score (1 px tolerance) on 64 held-out "
        "images. FCN-8s, SegNet and U-Net must each beat FCN-32s by ≥ 0.1."
    )
    return ClaimResult(measured, test, holds, [fig])


def _erf(layers: nn.Module, size: int, repeats: int, g: torch.Generator) -> tuple[np.ndarray, tuple]:
    """Mean |∂ centre output / ∂ input| over random inputs; and the output's spatial size."""
    total = torch.zeros(size, size)
    out_shape = None
    for _ in range(repeats):
        x = torch.randn(1, 1, size, size, generator=g, requires_grad=True)
        y = layers(x)
        out_shape = tuple(y.shape[-2:])
        y[0, :, y.shape[2] // 2, y.shape[3] // 2].sum().backward()
        total += x.grad[0, 0].abs()
    return (total / repeats).numpy(), out_shape


def _side_95(grad: np.ndarray) -> int:
    """Side of the smallest centred square holding 95 % of the gradient mass."""
    c = grad.shape[0] // 2
    mass = grad.sum()
    for r in range(c + 1):
        if grad[c - r : c + r + 1, c - r : c + r + 1].sum() >= 0.95 * mass:
            return 2 * r + 1
    return grad.shape[0]


def _stack(dilations=None, pool=False, depth=5, channels=8):
    layers, cin = [], 1
    for i in range(depth):
        d = 1 if dilations is None else dilations[i]
        conv = nn.Conv2d(cin, channels, 3, padding=d, dilation=d)
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        nn.init.zeros_(conv.bias)
        layers += [conv, nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(2))
        cin = channels
    return nn.Sequential(*layers)


@claim(
    "18c",
    title="Atrous convolution enlarges the receptive field without losing resolution",
    topics=("18.1",),
    source="notes 689-693",
    statement="Dilated (atrous) convolution inserts holes into the kernel: it enlarges the receptive "
    "field without downsampling, so the feature map keeps its resolution.",
)
def atrous_receptive_field(quick: bool, seed: int) -> ClaimResult:
    size, repeats = 97, (8 if quick else 64)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    nets = {
        "3x3 convs": _stack(),
        "3x3 convs, rates 1,2,4,8,16": _stack(dilations=(1, 2, 4, 8, 16)),
        "3x3 convs + 2x2 max-pool": _stack(pool=True),
    }
    rows, maps = {}, {}
    for name, net in nets.items():
        grad, shape = _erf(net, size, repeats, g)
        maps[name] = grad
        rows[name] = {"erf_side_95": _side_95(grad), "output_size": list(shape)}
    plain, atrous, pooled = (rows[k] for k in nets)
    holds = (
        atrous["erf_side_95"] >= 3 * plain["erf_side_95"]
        and atrous["output_size"] == [size, size]
        and pooled["output_size"][0] <= size // 16
    )
    fig, axes = new_figure(ncols=3, width=3.4, height=3.4)
    for ax, (name, grad) in zip(axes, maps.items()):
        ax.imshow(np.log10(grad + 1e-12), cmap="magma", vmin=np.log10(grad.max()) - 4)
        r = rows[name]
        ax.set_title(f"{name}\nERF {r['erf_side_95']} px, output {r['output_size'][0]} px", fontsize=8)
        ax.set(xlabel="input x (px)", ylabel="input y (px)")
    measured = {"input_size": size, "random_inputs": repeats, **rows}
    test = (
        "Five 3x3 conv + ReLU layers (8 channels, Kaiming init) on a 97x97 input; effective receptive "
        "field = side of the centred square holding 95 % of |∂ centre output / ∂ input| (mean over "
        "random inputs). With rates 1, 2, 4, 8, 16 it must be ≥ 3× that of the plain stack while the "
        "output stays 97x97; the pooled stack's output must shrink to ≤ 97/16 px."
    )
    return ClaimResult(measured, test, holds, [fig])
