"""``deepnotes explain``: draw what a trained classifier looks at, for one image of a run."""

from __future__ import annotations

from pathlib import Path

from deepnotes.commands._common import console

IMAGE_METHODS = ("saliency", "guided_backprop", "grad_cam", "occlusion", "activations", "patches", "neighbors")
MODEL_METHODS = ("filters", "embedding", "class_model")
METHODS = IMAGE_METHODS + MODEL_METHODS + ("all",)


def register(sub) -> None:
    from deepnotes.commands._common import add_threads_option

    p = sub.add_parser(
        "explain",
        help="draw saliency, guided backprop, Grad-CAM, occlusion and more for a trained classification run",
        description="Explain a classification run trained with 'deepnotes train': for one image (a file, or an index "
        "into the run's test split) write the chosen map over the image with a colour bar as PNG to --out. "
        f"Methods: {', '.join(METHODS)} ('all' writes a one-page grid).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by 'deepnotes train --out'")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--image", default=None, metavar="PATH", help="an image file of the run's size and channels")
    src.add_argument("--index", type=int, default=None, metavar="N", help="image N of the run's test split (default 0)")
    p.add_argument("--method", default="all", help=f"one of {', '.join(METHODS)} (default: all)")
    p.add_argument("--target", type=int, default=None, metavar="CLASS", help="class to explain (default: the predicted one)")
    p.add_argument("--layer", default=None, help="layer for grad_cam, activations and patches (default: the last conv)")
    p.add_argument("--channel", type=int, default=0, help="channel of --layer for patches (default: 0)")
    p.add_argument("--window", type=int, default=None, help="occlusion window side (default: a quarter of the image side)")
    p.add_argument("--stride", type=int, default=1, help="occlusion stride (default: 1)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN_DIR/explain)")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from deepnotes.commands._common import apply_threads

    apply_threads(args)  # small tensor work collapses when the thread pool outnumbers free cores
    import matplotlib.pyplot as plt
    import torch

    from deepnotes.core.checks import check_choice, check_int
    from deepnotes.explain import last_conv_name, load_classifier_run, resolve_image

    check_choice("--method", args.method, METHODS)
    run_ = load_classifier_run(args.run_dir)
    model, splits = run_.model, run_.splits
    try:
        x, label = resolve_image(splits, image=args.image, index=args.index)
    except ValueError as exc:  # name the command-line option
        raise ValueError(f"--{'image' if args.image is not None else 'index'}: {exc}") from exc
    with torch.no_grad():
        probs = model(x).softmax(1)[0]
    pred = int(probs.argmax())
    target = pred if args.target is None else check_int("--target", args.target, min=0, max=splits.num_classes - 1)
    layer = args.layer
    if layer is not None:
        from deepnotes.explain._model import resolve_layer

        resolve_layer(model, layer, name="--layer")
    else:
        layer = last_conv_name(model)
    out = Path(args.out) if args.out else Path(args.run_dir) / "explain"
    out.mkdir(parents=True, exist_ok=True)
    ctx = _Context(model, splits, x, label, target, pred, probs, layer, args)
    methods = [args.method]
    written = []
    for method in methods:
        fig = _draw_all(ctx) if method == "all" else _DRAW[method](ctx)
        path = out / f"{method}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    con = console()
    who = f"label {label}, " if label is not None else ""
    con.print(f"image: {who}predicted {pred} (p = {float(probs[pred]):.3f}); explained class {target}")
    for path in written:
        con.print(f"wrote {path}")
    return 0


class _Context:
    def __init__(self, model, splits, x, label, target, pred, probs, layer, args):
        self.model, self.splits, self.x, self.label = model, splits, x, label
        self.target, self.pred, self.probs, self.layer, self.args = target, pred, probs, layer, args

    @property
    def title(self) -> str:
        lab = f"label {self.label}, " if self.label is not None else ""
        return f"{lab}predicted {self.pred}, explaining class {self.target}"

    def window(self) -> int:
        from deepnotes.core.checks import check_int

        side = min(self.x.shape[-2:])
        if self.args.window is None:
            return max(1, side // 4)
        return check_int("--window", self.args.window, min=1, max=side)


def _panel(ctx, ax, method: str) -> None:
    """One image-level map on ``ax``."""
    from deepnotes.explain import (
        cam_overlay,
        channel_max,
        grad_cam,
        guided_backprop,
        occlusion,
        saliency,
    )
    from deepnotes.viz import show_map

    x, t, img = ctx.x, ctx.target, ctx.x[0]
    if method == "saliency":
        show_map(ax, img, channel_max(saliency(ctx.model, x, t))[0], "saliency", "|∂score/∂pixel|")
    elif method == "guided_backprop":
        g = channel_max(guided_backprop(ctx.model, x, t).clamp(min=0))[0]
        show_map(ax, img, g, "guided backprop", "positive guided gradient")
    elif method == "grad_cam":
        cam = cam_overlay(grad_cam(ctx.model, ctx.layer, x, t), tuple(x.shape[-2:]))[0]
        show_map(ax, img, cam, f"Grad-CAM ({ctx.layer})", "relative importance")
    elif method == "occlusion":
        w = ctx.window()
        occ = occlusion(ctx.model, x, t, w, min(ctx.args.stride, w))[0, 0]
        show_map(ax, img, occ, f"occlusion ({w}×{w} window)", "score drop (logit)", symmetric=True)


def _single(ctx, method):
    from deepnotes.viz import new_figure

    fig, ax = new_figure(width=4.6, height=4.0)
    _panel(ctx, ax, method)
    fig.suptitle(ctx.title, fontsize=9)
    return fig


def _activations(ctx):
    import math

    from deepnotes.explain import activation_maps
    from deepnotes.viz import new_figure

    maps = activation_maps(ctx.model, ctx.layer, ctx.x)[0]
    k = min(len(maps), 32)
    cols = min(8, k)
    rows = math.ceil(k / cols)
    fig, axes = new_figure(ncols=cols, nrows=rows, width=1.6, height=1.6)
    lo, hi = float(maps[:k].min()), float(maps[:k].max())
    im = None
    for i, ax in enumerate(list(getattr(axes, "flat", [axes]))):
        if i < k:
            im = ax.imshow(maps[i].numpy(), cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set(title=f"ch {i}", xticks=[], yticks=[])
        else:
            ax.axis("off")
    fig.colorbar(im, ax=axes, label="activation", shrink=0.8)
    fig.suptitle(f"activation maps of {ctx.layer} ({k} of {len(maps)} channels); {ctx.title}", fontsize=9)
    return fig


def _patches(ctx):
    from deepnotes.explain import stack_split, top_patches
    from deepnotes.viz import new_figure, show_tiles

    xs, _ = stack_split(ctx.splits.test, limit=500)
    res = top_patches(ctx.model, ctx.layer, xs, channel=ctx.args.channel, k=min(9, len(xs)))
    fig, axes = new_figure(ncols=3, nrows=3, width=1.8, height=1.9)
    show_tiles(axes, res.patches, [f"img {int(i)}: {float(v):.2f}" for i, v in zip(res.image_index, res.value)])
    fig.suptitle(f"top patches of {ctx.layer} channel {ctx.args.channel} (field {res.geometry.size} px)", fontsize=9)
    return fig


def _neighbors(ctx):
    from deepnotes.explain import nearest_neighbors, penultimate_features, stack_split
    from deepnotes.viz import new_figure, show_image

    bank, labels = stack_split(ctx.splits.train)
    k = 5
    feat = nearest_neighbors(penultimate_features(ctx.model, ctx.x), penultimate_features(ctx.model, bank), k)[0]
    pix = nearest_neighbors(ctx.x, bank, k)[0]
    fig, axes = new_figure(ncols=k + 1, nrows=2, width=1.6, height=1.8)
    for row, (idx, name) in enumerate(((feat, "feature space"), (pix, "pixel space"))):
        show_image(axes[row, 0], ctx.x[0], "query" if row == 0 else "")
        axes[row, 0].set_ylabel(name)
        for j, i in enumerate(idx.tolist()):
            show_image(axes[row, j + 1], bank[i], f"class {int(labels[i])}")
    fig.suptitle("nearest training images: penultimate features (top) vs pixels (bottom)", fontsize=9)
    return fig


def _filters(ctx):
    from deepnotes.explain import filter_grid, first_layer_filters
    from deepnotes.viz import new_figure, show_image

    fig, ax = new_figure(width=4.0, height=4.0)
    w = first_layer_filters(ctx.model)
    show_image(ax, filter_grid(w), f"first-layer filters ({w.shape[0]} of {w.shape[-2]}×{w.shape[-1]})")
    return fig


def _embedding(ctx):
    from deepnotes.explain import embed_2d, penultimate_features, stack_split
    from deepnotes.viz import new_figure, scatter_by_class

    xs, ys = stack_split(ctx.splits.test, limit=1000)
    f = penultimate_features(ctx.model, xs)
    fig, (a, b) = new_figure(ncols=2, width=4.6, height=4.0)
    scatter_by_class(a, embed_2d(f, "pca"), ys.numpy(), "PCA of penultimate features")
    scatter_by_class(b, embed_2d(f, "tsne"), ys.numpy(), "t-SNE of penultimate features", "t-SNE 1", "t-SNE 2")
    return fig


def _class_model_image(ctx):
    import torch

    from deepnotes.explain import class_model

    lo, hi = float(ctx.x.min()), float(ctx.x.max())
    img = class_model(ctx.model, ctx.target, tuple(ctx.x.shape[1:]), steps=100, lr=0.1,
                      clamp=(min(lo, 0.0), max(hi, 1.0)))
    with torch.no_grad():
        p = float(ctx.model(img).softmax(1)[0, ctx.target])
    return img, p


def _class_model(ctx):
    from deepnotes.viz import new_figure, show_map

    img, p = _class_model_image(ctx)
    fig, ax = new_figure(width=4.6, height=4.0)
    show_map(ax, None, img[0].mean(0), f"class {ctx.target} model (p = {p:.3f})", "pixel value", cmap="gray")
    return fig


def _draw_all(ctx):
    from deepnotes.explain import filter_grid, first_layer_filters
    from deepnotes.viz import new_figure, show_image, show_map

    fig, axes = new_figure(ncols=4, nrows=2, width=3.4, height=3.0)
    show_image(axes[0, 0], ctx.x[0], "image")
    for ax, m in zip((axes[0, 1], axes[0, 2], axes[0, 3], axes[1, 0]),
                     ("saliency", "guided_backprop", "grad_cam", "occlusion")):
        _panel(ctx, ax, m)
    show_image(axes[1, 1], filter_grid(first_layer_filters(ctx.model)), "first-layer filters")
    img, p = _class_model_image(ctx)
    show_map(axes[1, 2], None, img[0].mean(0), f"class {ctx.target} model (p = {p:.3f})", "pixel value", cmap="gray")
    axes[1, 3].barh(range(len(ctx.probs)), ctx.probs.numpy())
    axes[1, 3].set(title="class probabilities", xlabel="softmax probability", ylabel="class",
                   yticks=range(len(ctx.probs)), xlim=(0, 1))
    fig.suptitle(ctx.title, fontsize=10)
    return fig


_DRAW = {
    "saliency": lambda c: _single(c, "saliency"),
    "guided_backprop": lambda c: _single(c, "guided_backprop"),
    "grad_cam": lambda c: _single(c, "grad_cam"),
    "occlusion": lambda c: _single(c, "occlusion"),
    "activations": _activations,
    "patches": _patches,
    "neighbors": _neighbors,
    "filters": _filters,
    "embedding": _embedding,
    "class_model": _class_model,
}
