"""Chapter 9 claim: fewer input dimensions (feature selection or PCA) as a remedy for overfitting."""

from __future__ import annotations

import math
import warnings

import torch

from deepnotes.classic import PCA, LinearClassifier, SelectKBest, f_classif
from deepnotes.core.threads import single_threaded as one_thread
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.lab.claims.ch09_regularization import digits_tensors
from deepnotes.viz import new_figure

_N_NOISE = 436     # uninformative features added to the 64 pixels: 500 inputs in all
_PER_CLASS = 5     # training digits per class: 50 samples for 500 inputs
_K0 = 32           # the kept dimension the verdict uses: half the pixel count (the curve shows every k)
_MIN_EFFECT = 0.02  # two accuracy points: a smaller change is no remedy worth the name


def _paired(diff: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error over resamples of a paired difference."""
    return float(diff.mean()), float(diff.std() / math.sqrt(len(diff)))


@claim("9d", title="Fewer input dimensions narrow the train–test gap: feature selection does, PCA does not here",
       topics=("9.4",),
       source="notes 297-300",
       statement="Dimensionality reduction, by feature selection or by feature extraction, is a remedy for "
                 "overfitting.",
       expected="partly",
       reason="With many uninformative inputs, keeping the 32 features with the highest ANOVA F narrows the "
              "train-test gap and raises validation accuracy by about 20 points; PCA keeps the directions of "
              "largest variance, which here are mostly noise, and changes neither by 2 points.")
@one_thread
def dimensionality_reduction_vs_overfitting(quick: bool, seed: int) -> ClaimResult:
    xp, yp, xv, yv = (t.double() if t.is_floating_point() else t for t in digits_tensors(seed))
    g = torch.Generator().manual_seed(seed)
    # uniform [0, 1] noise: the same range as the pixels, and no relation to the class
    xp = torch.cat([xp, torch.rand(len(xp), _N_NOISE, generator=g, dtype=torch.float64)], 1)
    xv = torch.cat([xv, torch.rand(len(xv), _N_NOISE, generator=g, dtype=torch.float64)], 1)
    n_features = xp.shape[1]
    resamples = 4 if quick else 12
    k_select = (8, 32, 128) if quick else (2, 4, 8, 16, 32, 64, 128, 256)
    k_pca = (8, 32) if quick else (2, 4, 8, 16, 32)
    by_class = [torch.nonzero(yp == c).flatten() for c in range(10)]
    acc: dict[tuple[str, int], list[tuple[float, float]]] = {}
    on_noise: list[float] = []
    noise_variance_share = float(xp[:, 64:].var(0).sum() / xp.var(0).sum())
    for _ in range(resamples):
        idx = torch.cat([ix[torch.randperm(len(ix), generator=g)[:_PER_CLASS]] for ix in by_class])
        x, y = xp[idx], yp[idx]
        setups = [("all", n_features, None)]
        setups += [("SelectKBest", k, SelectKBest(f_classif, k=k)) for k in k_select]
        setups += [("PCA", k, PCA(k)) for k in k_pca]
        # control, same draw: the 64 pixels alone, every input informative or blank
        setups += [("pixels: all", 64, None), ("pixels: SelectKBest", _K0, SelectKBest(f_classif, k=_K0)),
                   ("pixels: PCA", _K0, PCA(_K0))]
        for name, k, reducer in setups:
            xa, xb = (x[:, :64], xv[:, :64]) if name.startswith("pixels") else (x, xv)
            if reducer is not None:
                with warnings.catch_warnings():  # pixels blank in every drawn digit: F is NaN, ranked last
                    warnings.simplefilter("ignore", UserWarning)
                    xa, xb = reducer.fit(xa, y).transform(xa), reducer.transform(xb)
            # softmax, the default L2 alpha = 1e-3; gradient tolerance 1e-6 instead of 1e-9: a third of
            # the time, the objective equal to 1e-7
            clf = LinearClassifier(tol=1e-6).fit(xa, y)
            if name == "PCA" and k == _K0:  # squared loadings on the noise inputs (each component has norm 1)
                on_noise.append(float((reducer.components_[:, 64:] ** 2).sum() / k))
            acc.setdefault((name, k), []).append((clf.score(xa, y), clf.score(xb, yv)))
    acc_t = {key: torch.tensor(v, dtype=torch.float64) for key, v in acc.items()}  # (resamples, 2)
    gap = {key: a[:, 0] - a[:, 1] for key, a in acc_t.items()}

    def effect(base, key):
        narrowing, narrowing_se = _paired(gap[base] - gap[key])
        gain, gain_se = _paired(acc_t[key][:, 1] - acc_t[base][:, 1])
        found = narrowing > max(_MIN_EFFECT, 2 * narrowing_se) and gain > max(_MIN_EFFECT, 2 * gain_se)
        return {"gap_narrowing": narrowing, "gap_narrowing_se": narrowing_se,
                "validation_gain": gain, "validation_gain_se": gain_se}, found

    base = ("all", n_features)
    effects, verdicts = {}, {}
    for name in ("SelectKBest", "PCA"):
        effects[name], verdicts[name] = effect(base, (name, _K0))
    control, control_found = {}, {}
    for name in ("SelectKBest", "PCA"):
        control[name], control_found[name] = effect(("pixels: all", 64), (f"pixels: {name}", _K0))

    def mean(key, col):
        return float(acc_t[key][:, col].mean())

    fig, ax = new_figure(width=6.4, height=4.0)
    for name, colour, ks in (("SelectKBest", "C0", k_select), ("PCA", "C1", k_pca)):
        test = torch.stack([acc_t[(name, k)][:, 1] for k in ks])
        se = test.std(1) / math.sqrt(resamples)
        ax.plot(ks, [mean((name, k), 0) for k in ks], "--", color=colour, marker="o", ms=3,
                label=f"{name}: train")
        ax.errorbar(ks, test.mean(1).numpy(), yerr=se.numpy(), color=colour, marker="o", ms=3, capsize=2,
                    label=f"{name}: validation (± 1 s.e.)")
    ax.axhline(mean(base, 0), color="k", ls="--", lw=1, label=f"all {n_features} inputs: train")
    ax.axhline(mean(base, 1), color="k", lw=1, label=f"all {n_features} inputs: validation")
    ax.axvline(_K0, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ticks = sorted(set(k_select) | set(k_pca))
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.set_xlabel("kept features (SelectKBest) or components (PCA)")
    ax.set_ylabel("accuracy (mean over draws)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"digits + {_N_NOISE} noise inputs, {10 * _PER_CLASS} training samples, "
                 f"{resamples} resamples", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    curve = {f"{name} k={k}": {"train": mean((name, k), 0), "validation": mean((name, k), 1)}
             for name, k in acc_t if name in ("SelectKBest", "PCA")}
    above = {name: [k for n, k in acc_t if n == name and mean((n, k), 1) > mean(base, 1) + _MIN_EFFECT]
             for name in ("SelectKBest", "PCA")}
    best = {name: max((k for n, k in acc_t if n == name), key=lambda k, n=name: mean((n, k), 1))
            for name in ("SelectKBest", "PCA")}
    return ClaimResult(
        measured={"all_inputs": {"train": mean(base, 0), "validation": mean(base, 1)},
                  "k0": _K0, "effect_at_k0": effects, "reduces_overfitting": verdicts, "curve": curve,
                  "control_pixels_only": {"all_pixels": {"train": mean(("pixels: all", 64), 0),
                                                         "validation": mean(("pixels: all", 64), 1)},
                                          "effect_at_k0": control},
                  "best_k_on_validation": best, "k_beating_all_inputs": above, "noise_variance_share": noise_variance_share,
                  "pca_weight_on_noise_inputs": sum(on_noise) / len(on_noise), "resamples": resamples, "n_train": 10 * _PER_CLASS,
                  "n_features": n_features, "n_validation": len(yv)},
        test=f"{resamples} stratified draws of {10 * _PER_CLASS} training digits (5 per class) with {_N_NOISE} "
             "uniform-noise inputs added to the 64 pixels (500 inputs); a softmax LinearClassifier (alpha 1e-3) "
             f"on all inputs, on the k = {_K0} features of highest ANOVA F (SelectKBest) and on {_K0} PCA "
             "components, both fitted on the training draw only; accuracy on the "
             f"{len(yv)}-digit validation split. A reduction counts as a remedy when, paired over the draws, it "
             f"narrows the train − validation accuracy gap and raises validation accuracy, each by more than "
             f"{_MIN_EFFECT:.2f} and more than 2 standard errors. Holds if both do, partly if one does.",
        holds=all(verdicts.values()), partly=any(verdicts.values()), figures=[fig],
        observation="Remedy at k = 32: " + (", ".join(k for k, v in verdicts.items() if v) or "neither")
        + f". SelectKBest at k = {_K0}: validation accuracy {mean(('SelectKBest', _K0), 1):.2f} vs "
        f"{mean(base, 1):.2f} with all inputs; PCA at {_K0} components: {mean(('PCA', _K0), 1):.2f}. PCA does not "
        f"look at the labels: the noise inputs hold {noise_variance_share:.0%} of the total variance, and its "
        f"{_K0} components put {sum(on_noise) / len(on_noise):.0%} of their squared weight on them. An L2-penalized "
        "linear model may also gain little from dropping low-variance "
        "directions, which the penalty already damps (not measured). Control on the 64 pixels alone (same draws): validation accuracy "
        f"{mean(('pixels: all', 64), 1):.2f} with all pixels, {mean(('pixels: SelectKBest', _K0), 1):.2f} with "
        f"SelectKBest {_K0}, {mean(('pixels: PCA', _K0), 1):.2f} with PCA {_K0}; a remedy by the same rule "
        "there: " + (", ".join(k for k, v in control_found.items() if v) or "neither") + ". Kept dimensions "
        f"whose mean validation accuracy beats all inputs by > {_MIN_EFFECT:.2f}: SelectKBest {above['SelectKBest']}, "
        f"PCA {above['PCA']}.",
        details="The verdict uses k = 32 fixed in advance; the figure and `curve` show every k (means over the "
                "draws; `best_k_on_validation` picks k on the same validation data, so its accuracy is "
                "optimistic). The control on the 64 pixels alone is reported, not tested: there the inputs carry "
                "the class and the reduction has nothing uninformative to remove. Not measured here: other "
                "classifiers (an unpenalized or nonlinear model may gain more from PCA), and k chosen by "
                "cross-validation inside the training draw.")
