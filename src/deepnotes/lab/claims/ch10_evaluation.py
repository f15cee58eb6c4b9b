"""Chapter 10: model evaluation — the out-of-bag fraction, holdout vs K-fold, tuning K on train."""

from __future__ import annotations

import math

import numpy as np
from sklearn.linear_model import LogisticRegression

from deepnotes.classic import KNNClassifier
from deepnotes.evaluation import Bootstrap, KFold, cross_validate, holdout_split
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.metrics import accuracy
from deepnotes.viz import new_figure


def _blobs(n_per_class: int, rng: np.random.Generator, d: int = 2, sep: float = 1.5):
    shift = sep / np.sqrt(d) * np.ones(d)
    X = np.vstack([rng.normal(size=(n_per_class, d)), rng.normal(size=(n_per_class, d)) + shift])
    return X, np.r_[np.zeros(n_per_class, np.int64), np.ones(n_per_class, np.int64)]


@claim(
    "10a",
    title="A bootstrap sample leaves about 1/e ≈ 36.8 % of the data out of bag",
    topics=("10.1",),
    source='notes 359-361',
    statement='The bootstrap draws n samples with replacement from n; for large n about 36.8% of the data are never drawn and serve for validation.',
)
def oob_fraction(quick: bool, seed: int) -> ClaimResult:
    sizes = [5, 10, 30, 100, 1000, 10000] if quick else [5, 10, 30, 100, 1000, 10000, 100000]
    n_splits = 50 if quick else 200
    measured, exact = [], []
    for n in sizes:
        fr = [len(oob) / n for _, oob in Bootstrap(n_splits, random_state=seed).split(n)]
        measured.append(float(np.mean(fr)))
        exact.append((1 - 1 / n) ** n)
    inv_e = math.exp(-1)
    # sampling noise of the mean fraction: about sqrt(p(1-p) / (n · n_splits)); allow 4 of them
    tol = [4 * math.sqrt(e * (1 - e) / (n * n_splits)) for n, e in zip(sizes, exact)]
    follows_formula = all(abs(m - e) <= t for m, e, t in zip(measured, exact, tol))
    formula_at_1_over_e = all(abs(e - inv_e) < 0.002 for n, e in zip(sizes, exact) if n >= 100)
    holds = follows_formula and formula_at_1_over_e
    fig, ax = new_figure()
    ax.semilogx(sizes, measured, "o-", label="measured OOB fraction")
    ax.semilogx(sizes, exact, "k:", label="(1 − 1/n)^n")
    ax.axhline(inv_e, color="tab:red", lw=0.8, label="1/e")
    ax.set(xlabel="n", ylabel="fraction out of bag", title=f"mean over {n_splits} bootstrap draws")
    ax.legend()
    return ClaimResult(
        measured={
            "n": sizes,
            "oob_fraction": [round(m, 5) for m in measured],
            "formula_(1-1/n)^n": [round(e, 5) for e in exact],
            "one_over_e": round(inv_e, 5),
            "tolerance": [round(t, 5) for t in tol],
        },
        test=f"mean out-of-bag fraction over {n_splits} bootstrap draws of n samples; holds if for every n "
        "it is within 4 standard errors of (1 - 1/n)^n, and (1 - 1/n)^n is within 0.002 of 1/e for n >= 100",
        holds=holds,
        figures=[fig],
    )


@claim(
    "10b", title="Holdout estimates vary more across seeds than 10-fold estimates", topics=("10.1",),
    source='notes 347-353',
    statement='A holdout estimate is random and depends strongly on how the data were split; K-fold cross-validation (K = 10 commonly) averages over K splits.'
)
def holdout_vs_kfold(quick: bool, seed: int) -> ClaimResult:
    n_seeds = 15 if quick else 60
    rng = np.random.default_rng(seed)
    X, y = _blobs(100, rng, d=5, sep=2.0)
    hold, kfold = [], []
    for s in range(n_seeds):  # the data set is fixed; only the split's seed changes
        tr, te = holdout_split(X, test_size=0.3, random_state=s)
        hold.append(accuracy(y[te], LogisticRegression().fit(X[tr], y[tr]).predict(X[te])))
        res = cross_validate(
            LogisticRegression, X, y, KFold(10, shuffle=True, random_state=s), ["accuracy"]
        )
        kfold.append(float(res["test_accuracy"].mean()))
    sd_h, sd_k = float(np.std(hold)), float(np.std(kfold))
    holds = sd_h > 1.5 * sd_k
    fig, ax = new_figure()
    ax.boxplot([hold, kfold])
    ax.set_xticks([1, 2], ["holdout (30 % test)", "10-fold CV"])
    ax.set(ylabel="estimated accuracy", title=f"{n_seeds} split seeds, one data set (n=200)")
    return ClaimResult(
        measured={
            "std_holdout": round(sd_h, 5),
            "std_10fold": round(sd_k, 5),
            "mean_holdout": round(float(np.mean(hold)), 4),
            "mean_10fold": round(float(np.mean(kfold)), 4),
            "seeds": n_seeds,
        },
        test="accuracy of logistic regression on one fixed 200-sample set, estimated by a 70/30 holdout and by "
        "10-fold CV for each split seed; holds if the holdout estimates' standard deviation is more than "
        "1.5x the 10-fold estimates'",
        holds=holds,
        figures=[fig],
    )


@claim(
    "10c",
    title="Choosing kNN's K by training accuracy picks K = 1; a validation set picks a larger K",
    topics=("10.2",),
    source='notes 798',
    statement='Choosing the hyperparameter that gives the best accuracy on the training data overfits: kNN would always pick K = 1, which classifies the training set perfectly.',
)
def k_on_train_picks_one(quick: bool, seed: int) -> ClaimResult:
    rng = np.random.default_rng(seed)
    X, y = _blobs(150 if quick else 500, rng)
    tr, va = holdout_split(X, test_size=0.3, random_state=seed)
    ks = [1, 3, 5, 9, 15, 25, 41]
    train_acc, val_acc = [], []
    for k in ks:
        m = KNNClassifier(k=k).fit(X[tr], y[tr])
        train_acc.append(m.score(X[tr], y[tr]))
        val_acc.append(m.score(X[va], y[va]))
    k_train = ks[int(np.argmax(train_acc))]
    k_val = ks[int(np.argmax(val_acc))]
    holds = k_train == 1 and train_acc[0] == 1.0 and k_val > 1
    fig, ax = new_figure()
    ax.plot(ks, train_acc, "o-", label="training accuracy")
    ax.plot(ks, val_acc, "s-", label="validation accuracy")
    ax.set(xlabel="K", ylabel="accuracy", title="kNN on overlapping Gaussians")
    ax.legend()
    return ClaimResult(
        measured={
            "K": ks,
            "train_accuracy": [round(a, 4) for a in train_acc],
            "validation_accuracy": [round(a, 4) for a in val_acc],
            "K_by_train": k_train,
            "K_by_validation": k_val,
        },
        test="kNN (L2) on two overlapping Gaussians, 70/30 split; holds if the K with the best training "
        "accuracy is 1 (with training accuracy 1.0) and the K with the best validation accuracy is > 1",
        holds=holds,
        figures=[fig],
    )
