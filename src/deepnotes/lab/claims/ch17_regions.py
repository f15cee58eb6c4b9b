"""Chapter 17 (region features): RoI Align vs RoI Pool alignment; Selective Search vs sliding windows."""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.data import ShapesDataset
from deepnotes.detection.proposals import sliding_window_boxes
from deepnotes.detection.roi_align import roi_align
from deepnotes.detection.roi_pool import roi_pool
from deepnotes.detection.selective_search import selective_search
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.viz import new_figure

STRIDE, GRID, BINS = 16, 32, 7  # a stride-16 backbone on a 512 × 512 image, 7 × 7 RoI outputs


def _field(rng: np.random.Generator, n_bumps: int = 60, width: float = 1.5):
    """A smooth feature field f(u, v) (u, v in feature-pixel units): a sum of Gaussian bumps."""
    centres = rng.uniform(-2, GRID + 2, size=(n_bumps, 2))
    amps = rng.normal(size=n_bumps)

    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """f on the grid of columns ``u`` (..., C) × rows ``v`` (..., R) → (..., R, C); the Gaussian
        is separable, so f = Σ_m a_m · g(v - v_m) · g(u - u_m)."""
        gu = np.exp(-((u[..., None] - centres[:, 0]) ** 2) / (2 * width**2))  # (..., C, M)
        gv = np.exp(-((v[..., None] - centres[:, 1]) ** 2) / (2 * width**2))  # (..., R, M)
        return np.einsum("...rm,...cm,m->...rc", gv, gu, amps)

    return f


def _exact_bins(f, boxes: np.ndarray, reduce, dense: int = 8) -> np.ndarray:
    """``reduce`` (mean or max) of the continuous field over every bin of every box: (K, 7, 7).

    A box edge x in image pixels is at u = x / STRIDE - ½ on the feature grid, whose pixel i is
    centred at u = i (the half-pixel convention of ``aligned=True``). Bins are sampled densely.
    """
    u1, v1, u2, v2 = (boxes / STRIDE - 0.5).T
    t = (np.arange(BINS * dense) + 0.5) / (BINS * dense)  # midpoints across the whole box
    u = u1[:, None] + t * (u2 - u1)[:, None]  # (K, 7·dense)
    v = v1[:, None] + t * (v2 - v1)[:, None]
    vals = f(u, v)  # (K, rows, cols)
    k = len(boxes)
    blocks = vals.reshape(k, BINS, dense, BINS, dense)
    return reduce(blocks, axis=(2, 4))


def _roi_errors(rng: np.random.Generator, n_boxes: int, boxes: np.ndarray | None = None):
    """Per-RoI RMS error (in units of the map's std) of RoI Align vs exact bin means and of RoI
    Pool vs exact bin maxima, on one random smooth field."""
    f = _field(rng)
    grid = np.arange(GRID, dtype=np.float64)
    fmap = torch.from_numpy(f(grid, grid)).view(1, 1, GRID, GRID)
    if boxes is None:
        wh = rng.uniform(48, 256, size=(n_boxes, 2))
        xy = rng.uniform(0, GRID * STRIDE - wh)
        boxes = np.concatenate([xy, xy + wh], 1)
    rois = torch.from_numpy(boxes)
    scale = float(fmap.std())
    align = roi_align(fmap, [rois], BINS, 1 / STRIDE, sampling_ratio=2, aligned=True)[:, 0].numpy()
    pool = roi_pool(fmap, [rois], BINS, 1 / STRIDE)[:, 0].numpy()
    err_align = np.sqrt(((align - _exact_bins(f, boxes, np.mean)) ** 2).mean((1, 2))) / scale
    err_pool = np.sqrt(((pool - _exact_bins(f, boxes, np.max)) ** 2).mean((1, 2))) / scale
    return err_align, err_pool


@claim(
    "17r",
    title="RoI Align follows the box exactly; RoI Pool's two roundings misplace the pooled region",
    topics=("17.4",),
    source="notes 1132-1136, 1420-1426",
    statement="RoI Pooling quantizes twice (the RoI's corners, then the bin edges), so the pooled "
    "region drifts from the proposal box; RoI Align drops the quantization and reads the map by "
    "bilinear interpolation, so the pooled features stay aligned with the box.",
)
def roi_align_vs_pool(quick: bool, seed: int) -> ClaimResult:
    rng = np.random.default_rng(seed)
    n_fields, n_boxes = (4, 100) if quick else (12, 300)
    ea, ep = map(np.concatenate, zip(*[_roi_errors(rng, n_boxes) for _ in range(n_fields)]))
    diff = ep - ea
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    holds = bool(diff.mean() > 3 * se and ea.mean() < ep.mean())
    # one box slid across a feature cell: RoI Pool's error jumps with the rounding, RoI Align's not
    shifts = np.linspace(0, 2 * STRIDE, 65)
    base = np.array([96.0, 80.0, 96.0 + 150.0, 80.0 + 110.0])
    slide = np.stack([base + np.array([s, 0, s, 0]) for s in shifts])
    sa, sp = _roi_errors(np.random.default_rng(seed + 1000), 0, boxes=slide)
    fig, axes = new_figure(ncols=2)
    bins = np.linspace(0, max(ea.max(), ep.max()), 40)
    axes[0].hist(ea, bins=bins, alpha=0.6, label="RoI Align vs exact bin mean")
    axes[0].hist(ep, bins=bins, alpha=0.6, label="RoI Pool vs exact bin max")
    axes[0].set_xlabel("RMS error per RoI (units of the map's std)")
    axes[0].set_ylabel("number of RoIs")
    axes[0].legend(fontsize=8)
    axes[1].plot(shifts, sa, label="RoI Align")
    axes[1].plot(shifts, sp, label="RoI Pool")
    axes[1].set_xlabel("horizontal shift of one box (image pixels; a feature cell is 16)")
    axes[1].set_ylabel("RMS error (units of the map's std)")
    axes[1].legend(fontsize=8)
    return ClaimResult(
        measured={
            "rois": int(len(ea)),
            "align_error_mean": float(ea.mean()),
            "pool_error_mean": float(ep.mean()),
            "paired_difference_mean": float(diff.mean()),
            "paired_difference_se": float(se),
            "pool_worse_fraction": float((diff > 0).mean()),
        },
        test="on smooth random feature maps (stride 16, 7×7 bins, RoIs of 48–256 px), each RoI's RMS "
        "error against the exact continuous version of the same pooling (RoI Align vs the bin mean, "
        "sampling_ratio=2, aligned=True; RoI Pool vs the bin max); holds if RoI Pool's mean error "
        "exceeds RoI Align's by more than 3 standard errors of the paired difference",
        holds=holds,
        figures=[fig],
        details=f"{len(ea)} RoIs over {n_fields} fields: RoI Align {ea.mean():.3f}, RoI Pool {ep.mean():.3f} "
        f"(difference {diff.mean():.3f} ± {se:.3f}). Each operator is compared with the exact continuous "
        "version of its own reduction, so RoI Pool's error holds its rounding of the box and bin edges "
        "plus reading the maximum at grid pixels only; RoI Align's holds bilinear interpolation and "
        "averaging 2 × 2 samples per bin.",
        observation=f"RoI Pool is worse on {100 * (diff > 0).mean():.0f}% of RoIs; sliding one box across "
        f"two feature cells, RoI Pool's error ranges {sp.min():.2f}–{sp.max():.2f} and RoI Align's "
        f"{sa.min():.2f}–{sa.max():.2f}.",
    )


def _recall(gt: torch.Tensor, boxes: torch.Tensor, budgets, thr: float = 0.5) -> np.ndarray:
    """Number of ground-truth boxes hit (IoU >= thr) by the first n proposals, per budget n."""
    if len(boxes) == 0:
        return np.zeros(len(budgets))
    a, b = gt.double()[:, None], boxes.double()[None]
    wh = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0)
    inter = wh.prod(-1)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    iou = inter / (area(a) + area(b) - inter)  # ground-truth and proposals have positive area
    return np.array([float((iou[:, :n].max(1).values >= thr).sum()) for n in budgets])


@claim(
    "17s",
    title="Selective Search covers the objects with far fewer boxes than sliding windows",
    topics=("17.3",),
    source="notes 988-992, 1022, 1333-1341",
    statement="Sliding windows must try many window sizes and positions, which is costly; Selective "
    "Search instead merges similar neighbouring regions again and again, its candidate regions "
    "growing from small segments to large ones, and so finds candidate boxes for the objects.",
)
def selective_search_recall(quick: bool, seed: int) -> ClaimResult:
    n_images, mode = (8, "single") if quick else (20, "fast")
    budgets = [1, 3, 10, 30, 100, 300, 1000]
    ds = ShapesDataset(n_images, split="test", seed=seed)
    windows = sliding_window_boxes(128, [(s, int(s * a)) for s in (12, 24, 48, 96) for a in (0.5, 1, 2)], stride=8)
    g = torch.Generator().manual_seed(seed)
    hits_ss, hits_sw, total, counts = np.zeros(len(budgets)), np.zeros(len(budgets)), 0, []
    for i in range(n_images):
        image, target = ds[i]
        proposals = selective_search(image, mode=mode, seed=seed)
        counts.append(len(proposals))
        hits_ss += _recall(target["boxes"], proposals, budgets)
        hits_sw += _recall(target["boxes"], windows[torch.randperm(len(windows), generator=g)], budgets)
        total += len(target["boxes"])
    rec_ss, rec_sw = hits_ss / total, hits_sw / total
    at100 = budgets.index(100)
    # binomial standard error of the difference of two recalls over `total` objects
    se = np.sqrt((rec_ss[at100] * (1 - rec_ss[at100]) + rec_sw[at100] * (1 - rec_sw[at100])) / total)
    holds = bool(rec_ss[at100] >= 0.8 and rec_ss[at100] - rec_sw[at100] > 3 * max(se, 1 / total))
    fig, ax = new_figure()
    ax.plot(budgets, rec_ss, marker="o", label=f"Selective Search ({mode})")
    ax.plot(budgets, rec_sw, marker="s", label=f"sliding windows (random order, {len(windows)} in all)")
    ax.set_xscale("log")
    ax.set_xlabel("number of proposals per image")
    ax.set_ylabel("recall of ground-truth boxes at IoU ≥ 0.5")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return ClaimResult(
        measured={
            "budgets": budgets,
            "recall_selective_search": [float(r) for r in rec_ss],
            "recall_sliding_windows": [float(r) for r in rec_sw],
            "objects": int(total),
            "mean_proposals": float(np.mean(counts)),
        },
        test=f"recall at IoU 0.5 on {n_images} shapes test images with 100 proposals per image: holds if "
        "Selective Search reaches >= 0.8 and beats the same number of sliding windows (12–96 px, three "
        "aspect ratios, stride 8, in random order) by more than 3 binomial standard errors",
        holds=holds,
        figures=[fig],
        details=f"recall@100: Selective Search {rec_ss[at100]:.2f}, sliding windows {rec_sw[at100]:.2f} "
        f"({total} objects); Selective Search returns {np.mean(counts):.0f} boxes per image on average.",
        observation=f"sliding windows need all {len(windows)} windows to reach {rec_sw[-1]:.2f} recall "
        f"(at 1000); Selective Search reaches {rec_ss[budgets.index(30)]:.2f} with 30.",
    )
