"""Chapter 16: kNN and the choice of K, distance concentration, linear templates, model sizes, residual identity."""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.classic import KNNClassifier, LinearClassifier
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.viz import new_figure


def _digits(seed: int):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    p = np.random.default_rng(seed).permutation(len(X))
    return X[p] / 16.0, y[p]


@claim(
    "16a",
    title="kNN with K = 1 is perfect on its own training set; K chosen on validation data generalizes better",
    topics=("16.1",),
    source='notes 798-800',
    statement='Choosing K on the training data always gives K = 1 (a perfect fit of the training set) and generalizes badly; choose K on a separate validation set.',
)
def knn_choose_k(quick: bool, seed: int) -> ClaimResult:
    X, y = _digits(seed)
    tr, va, te = slice(0, 1000), slice(1000, 1400), slice(1400, None)
    ks = list(range(1, 16, 2 if quick else 1))
    rng = np.random.default_rng(seed)
    settings = {}
    for noise in (0.0, 0.2):
        # label noise = the outliers that a 1-NN boundary bends around
        ytr = y[tr].copy()
        flip = rng.random(len(ytr)) < noise
        ytr[flip] = rng.integers(0, 10, int(flip.sum()))
        rows = []
        for k in ks:
            clf = KNNClassifier(k=k).fit(X[tr], ytr)
            rows.append({"k": k, "train": clf.score(X[tr], ytr), "val": clf.score(X[va], y[va]),
                         "test": clf.score(X[te], y[te])})
        best = max(rows, key=lambda r: (r["val"], -r["k"]))
        settings[f"label_noise_{noise}"] = {"rows": rows, "k_star": best["k"], "test_k_star": best["test"],
                                            "test_k1": rows[0]["test"], "train_k1": rows[0]["train"]}
    clean, noisy = settings["label_noise_0.0"], settings["label_noise_0.2"]
    holds = (
        clean["train_k1"] == 1.0
        and noisy["train_k1"] == 1.0
        and clean["test_k_star"] >= clean["test_k1"]
        and noisy["test_k_star"] > noisy["test_k1"]
    )
    fig, axes = new_figure(ncols=2)
    for ax, (name, s) in zip(axes, settings.items()):
        for key in ("train", "val", "test"):
            ax.plot([r["k"] for r in s["rows"]], [r[key] for r in s["rows"]], "o-", ms=3, label=key)
        ax.axvline(s["k_star"], color="k", ls=":", lw=1, label=f"K* = {s['k_star']}")
        ax.set(xlabel="K", ylabel="accuracy", title=f"digits, {name.replace('_', ' ')}")
        ax.legend(fontsize=8)
    return ClaimResult(
        measured=settings,
        test="sklearn digits (1000 train / 400 validation / 397 test), L2 kNN: K = 1 has training accuracy 1.0; "
        "K* = argmax validation accuracy has test accuracy >= K = 1's on clean labels and > on training labels with "
        "20 % noise",
        holds=bool(holds),
        figures=[fig],
        details="On clean digits validation picks K = 1 itself (a tie with K = 1 is the honest outcome there); "
        "the benefit of choosing K appears when the training set has outliers.",
    )


@claim("16b", title="Distances concentrate in high dimensions: max/min distance ratio → 1", topics=("16.1",),
    source='notes 778',
    statement='In high dimensions (the curse of dimensionality) data are spread thinly and points are far apart, so pixel distances say little about similarity.')
def distance_concentration(quick: bool, seed: int) -> ClaimResult:
    g = torch.Generator().manual_seed(seed)
    dims = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    n, q = (500, 20) if quick else (2000, 100)
    ratios = []
    for d in dims:
        pts = torch.rand(n, d, generator=g, dtype=torch.float64)
        queries = torch.rand(q, d, generator=g, dtype=torch.float64)
        dist = torch.cdist(queries, pts)
        ratios.append(float((dist.max(1).values / dist.min(1).values).mean()))
    decreasing = all(b < a for a, b in zip(ratios, ratios[1:]))
    holds = decreasing and ratios[0] > 10 and ratios[-1] < 1.3
    fig, ax = new_figure()
    ax.semilogx(dims, ratios, "o-", base=2)
    ax.axhline(1.0, color="k", ls=":", lw=1)
    ax.set(xlabel="dimension", ylabel="mean max/min distance from a query", title="Distance concentration (uniform cube)")
    return ClaimResult(
        measured={"dims": dims, "max_over_min": ratios, "points": n, "queries": q},
        test="uniform points in [0,1]^d: the mean over queries of max/min distance decreases strictly with d, "
        "is > 10 at d = 2 and < 1.3 at d = 1024",
        holds=bool(holds),
        figures=[fig],
    )


@claim("16c", title="The linear classifier's weight rows look like class templates", topics=("16.2",),
    source='notes 824-828',
    statement="Each row of a linear classifier's weights, turned back into an image, is a template of its class; scoring is template matching.")
def linear_templates(quick: bool, seed: int) -> ClaimResult:
    X, y = _digits(seed)
    n = 600 if quick else 1400
    clf = LinearClassifier("softmax", alpha=1e-2, max_iter=200 if quick else 500).fit(X[:n], y[:n])
    templates = clf.coef_.numpy()
    means = np.stack([X[:n][y[:n] == k].mean(0) for k in range(10)]) - X[:n].mean(0)
    corr = np.corrcoef(templates, means)[:10, 10:]  # template c vs centred mean image of class j
    matched = int((corr.argmax(1) == np.arange(10)).sum())
    diag = float(np.diag(corr).mean())
    off = float((corr.sum() - np.trace(corr)) / 90)
    holds = matched >= 9 and diag > 0.5 and diag > off + 0.5
    fig, axes = new_figure(ncols=10, nrows=2, width=1.2, height=1.3)
    for k in range(10):
        axes[0, k].imshow(templates[k].reshape(8, 8), cmap="RdBu_r")
        axes[0, k].set_title(f"W[{k}]", fontsize=8)
        axes[1, k].imshow(means[k].reshape(8, 8), cmap="RdBu_r")
        axes[1, k].set_title(f"mean {k}", fontsize=8)
        for ax in axes[:, k]:
            ax.axis("off")
    return ClaimResult(
        measured={"classes_matched": matched, "mean_diag_corr": diag, "mean_offdiag_corr": off,
                  "train_accuracy": clf.score(X[:n], y[:n]), "test_accuracy": clf.score(X[n:], y[n:])},
        test="softmax linear classifier on 8×8 digits: each weight row correlates best with its own class's "
        "(centred) mean image for >= 9 of 10 classes, with mean matched correlation > 0.5 and > off-diagonal + 0.5",
        holds=bool(holds),
        figures=[fig],
    )


@claim("16d", title="Our model definitions have exactly the reference parameter counts", topics=("16.4",),
    source='notes 849-970',
    statement="The classic CNNs (AlexNet, ZFNet, VGG, GoogLeNet, Inception v3, ResNet) as the notes describe them; our definitions must have the reference's exact parameter counts.",
    kind='worked example')
def parameter_counts(quick: bool, seed: int) -> ClaimResult:
    import torchvision.models as tvm

    from deepnotes.models import create

    cases = [
        ("alexnet", {}, tvm.alexnet, {}),
        ("vgg16", {}, tvm.vgg16, {}),
        ("vgg19", {}, tvm.vgg19, {}),
        ("vgg16_bn", {}, tvm.vgg16_bn, {}),
        ("googlenet", {}, tvm.googlenet, {"aux_logits": False, "init_weights": False}),
        ("googlenet+aux", {"aux_logits": True}, tvm.googlenet, {"aux_logits": True, "init_weights": False}),
        ("inception_v3", {}, tvm.inception_v3, {"aux_logits": False, "init_weights": False}),
        ("inception_v3+aux", {"aux_logits": True}, tvm.inception_v3, {"aux_logits": True, "init_weights": False}),
    ] + [(f"resnet{d}", {}, getattr(tvm, f"resnet{d}"), {}) for d in (18, 34, 50, 101, 152)]
    rows = {}
    for label, kw, tv, tkw in cases:
        name = label.split("+")[0]
        with torch.device("meta"):  # shapes only: no memory, no initialization
            ours = create(name, 1000, 3, 299 if name == "inception_v3" else 224, **kw)
            ref = tv(**tkw)
        rows[label] = {"ours": sum(p.numel() for p in ours.parameters()),
                       "torchvision": sum(p.numel() for p in ref.parameters())}
    holds = all(r["ours"] == r["torchvision"] for r in rows.values())
    fig, ax = new_figure(width=7)
    names = list(rows)
    ax.barh(names, [rows[k]["ours"] / 1e6 for k in names], color="C0", label="ours")
    ax.scatter([rows[k]["torchvision"] / 1e6 for k in names], names, color="C3", marker="|", s=200, label="torchvision")
    ax.set(xlabel="parameters (millions)", title="Parameter counts, 1000 classes")
    ax.legend(fontsize=8)
    return ClaimResult(
        measured=rows,
        test="parameter count of each of our architectures equals torchvision's for the same configuration "
        "(exact integer equality)",
        holds=bool(holds),
        figures=[fig],
    )


@claim(
    "16e",
    title="With the last BN of every residual branch zero-initialized, each non-downsampling block is the identity at init",
    topics=("16.4",),
    source='notes 962',
    statement='If all weights of a residual block are set to 0, the block is the identity, which makes the model easier to train.',
    kind='worked example',
)
def zero_init_residual(quick: bool, seed: int) -> ClaimResult:
    from deepnotes.models import ResNet

    torch.manual_seed(seed)
    results = {}
    for depth in (18,) if quick else (18, 50):
        for zero in (True, False):
            net = ResNet(depth, 10, 3, variant="small", zero_init_residual=zero)
            devs = []
            for block in net.blocks():
                if block.downsample is not None:
                    continue
                cin = block.conv1.in_channels
                # block inputs inside the network are ReLU outputs, hence non-negative
                x = torch.relu(torch.randn(4, cin, 8, 8))
                for mode in ("train", "eval"):
                    block.train(mode == "train")
                    with torch.no_grad():
                        devs.append(float((block(x) - x).abs().max()))
            results[f"resnet{depth}_{'zero' if zero else 'default'}_init"] = {
                "blocks_checked": len(devs) // 2, "max_abs_deviation": max(devs)}
    holds = all(v["max_abs_deviation"] == 0.0 for k, v in results.items() if "zero" in k) and all(
        v["max_abs_deviation"] > 0.1 for k, v in results.items() if "default" in k
    )
    fig, ax = new_figure()
    names = list(results)
    ax.bar(names, [results[k]["max_abs_deviation"] for k in names], color=["C2" if "zero" in k else "C1" for k in names])
    ax.set(ylabel="max |block(x) − x|", title="Residual blocks at initialization")
    ax.tick_params(axis="x", labelsize=7, rotation=15)
    return ClaimResult(
        measured=results,
        test="for every residual block without downsampling, block(x) == x exactly (max |difference| = 0, train "
        "and eval mode, x ≥ 0) with zero_init_residual; > 0.1 without it (control)",
        holds=bool(holds),
        figures=[fig],
    )


def _train_cnn(net: torch.nn.Module, images: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> torch.nn.Module:
    """Every weight of ``net`` trained end to end (Adam, mini-batches of 64)."""
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(64):
            loss = torch.nn.functional.cross_entropy(net(images[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@claim(
    "16f",
    title="Two pipelines: fixed hand-crafted features + a trained linear classifier, or a CNN trained end to end",
    topics=("16.3",),
    source="notes 845-847",
    statement="Image classification either extracts features with fixed, hand-designed methods (histograms and the "
    "like), concatenates them and trains only a linear classifier on top with the extractor frozen, or feeds the "
    "pixels to a CNN that learns its own features, training every weight of the network.",
)
def two_pipelines(quick: bool, seed: int) -> ClaimResult:
    from deepnotes.classic import FeatureClassifier, handcrafted_features

    X, y = _digits(seed)
    images = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8)
    labels = torch.tensor(y)
    n = 500 if quick else 1200
    tr, te = slice(0, n), slice(n, None)

    # pipeline 1: the extractor (colour + gradient-orientation histograms) has no trainable state
    extractor = handcrafted_features
    before = extractor(images[te])
    clf = FeatureClassifier(extractor, LinearClassifier("softmax", alpha=1e-3, max_iter=300)).fit(images[tr], y[tr])
    frozen = bool(torch.equal(before, extractor(images[te])))
    acc_features = clf.score(images[te], y[te])
    pixels = LinearClassifier("softmax", alpha=1e-3, max_iter=300).fit(X[tr], y[tr]).score(X[te], y[te])

    # pipeline 2: the CNN learns its features; every parameter tensor must move
    from deepnotes.core.registry import MODELS

    torch.manual_seed(seed)
    net = MODELS.create("cnn", (1, 8, 8), 10)
    start = {k: p.detach().clone() for k, p in net.named_parameters()}
    _train_cnn(net, images[tr], labels[tr], 5 if quick else 20, seed)
    # root-mean-square change of each tensor (batch-norm biases start at 0, so no relative change)
    moved = {k: float((p.detach() - start[k]).pow(2).mean().sqrt()) for k, p in net.named_parameters()}
    with torch.no_grad():
        acc_cnn = float((net(images[te]).argmax(1) == labels[te]).float().mean())

    chance = 0.1
    holds = frozen and min(moved.values()) > 1e-4 and acc_features >= 5 * chance and acc_cnn >= 5 * chance
    fig, axes = new_figure(ncols=2, width=4.6)
    names = ["hand-crafted\nfeatures + linear", "pixels + linear", "CNN, end to end"]
    accs = [acc_features, pixels, acc_cnn]
    axes[0].bar(names, accs, color=["C1", "C7", "C0"])
    for i, a in enumerate(accs):
        axes[0].text(i, a + 0.01, f"{a:.3f}", ha="center", fontsize=8)
    axes[0].set(ylabel="test accuracy", ylim=(0, 1.08), title=f"digits, {n} training images")
    axes[0].tick_params(axis="x", labelsize=7)
    axes[1].barh(list(moved), list(moved.values()), color="C0")
    axes[1].set(xscale="log", xlabel="RMS change of the tensor's entries", title="CNN: every parameter tensor trained")
    axes[1].tick_params(axis="y", labelsize=6)
    return ClaimResult(
        measured={"test_accuracy_handcrafted_linear": acc_features, "test_accuracy_pixels_linear": pixels,
                  "test_accuracy_cnn": acc_cnn, "extractor_output_unchanged_by_training": frozen,
                  "smallest_rms_weight_change_cnn": min(moved.values()), "train_images": n},
        test="pipeline 1's features of the test images are bit-identical before and after training (frozen "
        "extractor); every parameter tensor of the CNN moves (root-mean-square change of its entries > 1e-4, far above "
        "float32 rounding); both pipelines "
        "classify the held-out digits at ≥ 5× chance (≥ 0.5)",
        holds=bool(holds),
        figures=[fig],
        observation=f"on 8 × 8 digits the CNN reaches {acc_cnn:.3f}, the histogram features + linear classifier "
        f"{acc_features:.3f}, and a linear classifier on the raw pixels {pixels:.3f}: the learned features win, "
        "and these coarse histograms lose information that the pixels themselves carry.",
    )
