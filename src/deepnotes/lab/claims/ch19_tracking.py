"""Chapter 19: tracking — Kalman prediction across missed detections, appearance at crossings,
IoU-only matching under fast motion, KCF speed.

The multi-object scenes here are synthetic boxes (no rendering), so that many sequences fit in a
few seconds: objects of fixed size move at a constant speed in a 320x320 world, turning by a
random angle now and then and bouncing off the walls; detections are the true boxes with 1 px
jitter per side, each missed with a small probability. Where appearance is needed, each object
has a random 16-d identity vector and each detection's embedding is that vector plus Gaussian
noise — a stand-in for a re-identification network, with its quality set by the noise.
"""

from __future__ import annotations

import time

import numpy as np

from deepnotes.lab.api import ClaimResult, claim
from deepnotes.tracking import KCF, DeepSortTracker, Sort, mot_metrics
from deepnotes.tracking.sequences import run_tracker
from deepnotes.viz import new_figure

WORLD = 320.0


def _scene(rng, n_obj, n_frames, speed, size=24.0, turn_prob=0.0, miss_prob=0.05, feat_noise=0.3,
           centred=False):
    """Ground-truth rows, per-frame detections (xyxy) and embeddings of a synthetic scene."""
    pos = rng.uniform(size, WORLD - 2 * size, (n_obj, 2))
    if centred:  # start in the middle: no wall within reach of a short sequence
        pos = np.full((n_obj, 2), (WORLD - size) / 2)
    angle = rng.uniform(0, 2 * np.pi, n_obj)
    ident = rng.normal(size=(n_obj, 16))
    ident /= np.linalg.norm(ident, axis=1, keepdims=True)
    gt, dets, feats = [], [], []
    for t in range(n_frames):
        turn = rng.random(n_obj) < turn_prob
        angle = angle + turn * rng.uniform(-np.pi / 2, np.pi / 2, n_obj)
        vel = speed * np.stack([np.cos(angle), np.sin(angle)], 1)
        pos = pos + vel
        for axis in (0, 1):  # bounce
            out = (pos[:, axis] < 0) | (pos[:, axis] > WORLD - size)
            angle = np.where(out, (np.pi - angle) if axis == 0 else -angle, angle)
            pos[:, axis] = np.clip(pos[:, axis], 0, WORLD - size)
        boxes = np.concatenate([pos, pos + size], 1)
        gt.append(np.column_stack([np.full(n_obj, t + 1), np.arange(1, n_obj + 1), pos, np.full((n_obj, 2), size)]))
        seen = rng.random(n_obj) >= miss_prob
        dets.append(boxes[seen] + rng.normal(0, 1.0, (int(seen.sum()), 4)))
        feats.append(ident[seen] + rng.normal(0, feat_noise, (int(seen.sum()), 16)) / 4.0)
    return np.concatenate(gt), dets, feats


class _LastBoxTracker:
    """Baseline without a motion model: match detections to each track's last box by IoU."""

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 30):
        self.thr, self.max_age = iou_threshold, max_age
        self.boxes, self.ids, self.age, self.next = np.zeros((0, 4)), [], [], 1

    def update(self, dets: np.ndarray) -> np.ndarray:
        from deepnotes.tracking._boxes import iou_xyxy
        from deepnotes.tracking.assignment import gated_assignment

        dets = np.asarray(dets, float).reshape(-1, 4)
        r, c, _, new = gated_assignment(-iou_xyxy(self.boxes, dets), -self.thr)
        self.age = [a + 1 for a in self.age]
        out = []
        for i, j in zip(r, c):
            self.boxes[i], self.age[i] = dets[j], 0
            out.append([*dets[j], self.ids[i]])
        for j in new:
            self.boxes = np.concatenate([self.boxes, dets[j : j + 1]])
            self.ids.append(self.next)
            self.age.append(0)
            out.append([*dets[j], self.next])
            self.next += 1
        keep = [a <= self.max_age for a in self.age]
        self.boxes = self.boxes[keep]
        self.ids = [i for i, k in zip(self.ids, keep) if k]
        self.age = [a for a, k in zip(self.age, keep) if k]
        return np.array(out, float).reshape(-1, 5)


@claim(
    "19a",
    title="Kalman prediction carries an identity across missed detections",
    topics=("19.1",),
    source="notes 1646-1648",
    statement="Tracking matches detections to tracks using motion: a Kalman filter estimates each "
    "track's next state from its current one.",
)
def kalman_bridges_gaps(quick: bool, seed: int) -> ClaimResult:
    rng = np.random.default_rng(seed)
    gaps = np.arange(1, 7 if quick else 9)
    trials = 8 if quick else 100
    speed, size = 5.0, 24.0
    kept = {"SORT (Kalman)": np.zeros(len(gaps)), "last box (no motion model)": np.zeros(len(gaps))}
    for gi, k in enumerate(gaps):
        for _ in range(trials):
            # one object: 10 frames seen, k frames unseen, 5 frames seen
            _, dets, _ = _scene(rng, 1, 15 + k, speed, size, miss_prob=0.0, centred=True)
            for t in range(10, 10 + k):
                dets[t] = np.zeros((0, 4))
            for name, trk in (
                ("SORT (Kalman)", Sort(max_age=k + 1, min_hits=1, iou_threshold=0.3)),
                ("last box (no motion model)", _LastBoxTracker(0.3, max_age=k + 1)),
            ):
                ids = [trk.update(d) for d in dets]
                before, after = ids[9][:, 4], ids[-1][:, 4]
                kept[name][gi] += float(len(before) == 1 and len(after) == 1 and before[0] == after[0])
    rates = {k: (v / trials) for k, v in kept.items()}
    kal, last = rates["SORT (Kalman)"], rates["last box (no motion model)"]
    # the box moves speed·(k+1) px between sightings; with no motion model the IoU of the last box
    # and the new detection falls below 0.3 once that exceeds ~11 px, i.e. from k = 2 on
    holds = bool(kal[:6].min() >= 0.9 and last[2:6].max() <= 0.2)
    fig, ax = new_figure()
    for name, r in rates.items():
        ax.plot(gaps, r, "o-", label=name)
    ax.set(xlabel="consecutive frames without a detection", ylabel="fraction keeping its identity",
           ylim=(-0.02, 1.02), title=f"One box ({size:.0f} px) moving {speed:.0f} px/frame")
    ax.legend(fontsize=8)
    measured = {"gaps": gaps.tolist(), "trials": trials, **{k: v.tolist() for k, v in rates.items()}}
    test = (
        f"{trials} random directions per gap length; an object ({size:.0f} px box, {speed:.0f} px/frame, "
        "1 px jitter) is detected for 10 frames, missed for k, then detected again. SORT "
        "(max_age = k + 1, IoU ≥ 0.3) must keep the same identity in ≥ 90 % of the trials for every "
        "k ≤ 6, while matching to the last seen box keeps it in ≤ 20 % for k = 3..6."
    )
    return ClaimResult(measured, test, holds, [fig])


def _id_switches(tracker_factory, scenes, with_features):
    out = []
    for gt, dets, feats in scenes:
        hyp = run_tracker(tracker_factory(), dets, feats if with_features else None)
        m = mot_metrics(gt, hyp)
        out.append((m["num_switches"], m["idf1"], m["mota"]))
    return np.array(out, float)


@claim(
    "19b",
    title="Appearance features cut identity switches where objects cross",
    topics=("19.1",),
    source="notes 1646-1649",
    statement="Besides motion, tracking matches detections to tracks by appearance (re-identification "
    "features).",
)
def appearance_cuts_switches(quick: bool, seed: int) -> ClaimResult:
    rng = np.random.default_rng(seed)
    n_seq = 6 if quick else 30
    # crowded: 10 objects in the world, turning often, so that paths cross while objects change course
    scenes = [_scene(rng, 10, 60, 6.0, 24.0, turn_prob=0.15, miss_prob=0.1) for _ in range(n_seq)]
    sort = _id_switches(lambda: Sort(max_age=5, min_hits=1, iou_threshold=0.3), scenes, False)
    deep = _id_switches(lambda: DeepSortTracker(n_init=1, max_age=5, std_weight_velocity=0.1), scenes, True)
    diff = sort[:, 0] - deep[:, 0]
    se = diff.std(ddof=1) / np.sqrt(n_seq)
    holds = bool(diff.mean() > 0 and diff.mean() > 2 * se and (diff >= 0).mean() >= 0.8)
    fig, (ax1, ax2) = new_figure(ncols=2)
    ax1.bar(["SORT", "DeepSORT-style"], [sort[:, 0].mean(), deep[:, 0].mean()],
            yerr=[sort[:, 0].std(ddof=1) / np.sqrt(n_seq), deep[:, 0].std(ddof=1) / np.sqrt(n_seq)],
            color=["C0", "C1"], capsize=4)
    ax1.set(ylabel="ID switches per sequence (mean ± s.e.)", title=f"{n_seq} sequences, 10 objects, 60 frames")
    ax2.scatter(sort[:, 0], deep[:, 0])
    lim = max(sort[:, 0].max(), deep[:, 0].max()) + 1
    ax2.plot([0, lim], [0, lim], "k:", lw=0.8)
    ax2.set(xlabel="SORT ID switches", ylabel="DeepSORT-style ID switches", title="Same detections, per sequence")
    measured = {
        "sequences": n_seq,
        "sort_id_switches_mean": float(sort[:, 0].mean()),
        "deepsort_id_switches_mean": float(deep[:, 0].mean()),
        "paired_difference_mean": float(diff.mean()),
        "paired_difference_se": float(se),
        "sort_idf1_mean": float(sort[:, 1].mean()),
        "deepsort_idf1_mean": float(deep[:, 1].mean()),
    }
    test = (
        "Same detections for both trackers (10 objects of 24 px moving 6 px/frame, turning by up to 90° "
        "with probability 0.15 per frame, 10 % missed; embeddings = identity vector + noise). The "
        "paired difference in ID switches (SORT − DeepSORT-style) must be positive by more than twice "
        "its standard error, and DeepSORT-style must not have more switches in ≥ 80 % of the sequences."
    )
    observation = (
        "On rendered shapes sequences, whose visible boxes change shape when objects occlude each other, "
        "DeepSORT's Mahalanobis gate (noise tied to the box height, almost fixed aspect ratio) rejects "
        "true matches and duplicates tracks, and plain SORT switches less — the gate's noise model "
        "must fit the data."
    )
    return ClaimResult(measured, test, holds, [fig], observation=observation)


def _iou_only(iou_threshold=0.3, max_age=1):
    return _LastBoxTracker(iou_threshold, max_age)


@claim(
    "19c",
    title="IoU-only matching fails under fast motion",
    topics=("19.1", "19.2"),
    source="notes 1646-1650",
    statement="Detections are matched to tracks by motion (Kalman), appearance and box IoU.",
)
def iou_fails_fast_motion(quick: bool, seed: int) -> ClaimResult:
    rng = np.random.default_rng(seed)
    speeds = np.array([2, 6, 10, 14, 18, 22, 26], float)
    n_seq = 3 if quick else 12
    size = 24.0
    curves = {"IoU with the last box": [], "SORT (Kalman + IoU)": []}
    for v in speeds:
        scenes = [_scene(rng, 4, 40, v, size, miss_prob=0.0) for _ in range(n_seq)]
        curves["IoU with the last box"].append(_id_switches(_iou_only, scenes, False)[:, 1].mean())
        curves["SORT (Kalman + IoU)"].append(
            _id_switches(lambda: Sort(max_age=1, min_hits=1, iou_threshold=0.3), scenes, False)[:, 1].mean()
        )
    iou_only, sort = (np.array(curves[k]) for k in curves)
    slow, fast = speeds <= 6, speeds >= 18
    holds = bool(iou_only[slow].min() >= 0.8 and iou_only[fast].max() <= 0.4)
    fig, ax = new_figure()
    for k, c in curves.items():
        ax.plot(speeds, c, "o-", label=k)
    ax.axvline(size * 0.54, color="k", ls=":", lw=0.8, label="IoU(shifted box) = 0.3")
    ax.set(xlabel="speed (px/frame)", ylabel="IDF1", ylim=(0, 1.02), title=f"{size:.0f} px boxes")
    ax.legend(fontsize=8)
    measured = {"speeds": speeds.tolist(), **{k: np.asarray(v).tolist() for k, v in curves.items()}}
    test = (
        "IDF1 of matching each detection to the last box of a track by IoU ≥ 0.3: ≥ 0.8 at speeds ≤ 6 "
        "px/frame and ≤ 0.4 at ≥ 18 px/frame (a 24 px box shifted by d px overlaps its old position "
        "with IoU (24 − d)/(24 + d), below 0.3 beyond ~13 px). SORT's curve is reported, not tested."
    )
    observation = (
        "SORT does not escape this: a new track starts with zero velocity, so its first association "
        "is IoU against the box where the object was, and above ~13 px/frame no track survives its "
        "second frame. Between the two regimes the Kalman prediction helps (higher IDF1 at 10–14 "
        "px/frame), but at low speed bounces off the walls cost SORT some identities that the "
        "last-box matcher, with its large overlaps, keeps."
    )
    return ClaimResult(measured, test, holds, [fig], observation=observation)


def _bounce(p: float, span: float) -> float:
    """Position moving at constant speed between 0 and ``span``, reflected at the ends."""
    q = p % (2 * span)
    return span - abs(span - q)


@claim(
    "19d",
    title="KCF tracks in real time on a CPU",
    topics=("19.1",),
    source="notes 1652",
    statement="The KCF tracker (the notes name its principle) — correlation filtering in the Fourier "
    "domain — is the classic fast single-object tracker.",
)
def kcf_real_time(quick: bool, seed: int) -> ClaimResult:
    rng = np.random.default_rng(seed)
    n_frames = 60 if quick else 300
    texture = rng.uniform(0.3, 1.0, (32, 32))
    frames, truth = [], []
    for t in range(n_frames):
        f = rng.normal(0, 0.05, (240, 320))
        x, y = int(_bounce(40 + 2 * t, 280)), int(_bounce(60 + 1.5 * t, 200))
        f[y : y + 32, x : x + 32] += texture
        frames.append(f)
        truth.append((x, y))
    tracker = KCF().init(frames[0], [*truth[0], 32, 32])
    times, errors = [], []
    for f, (x, y) in zip(frames[1:], truth[1:]):
        t0 = time.process_time()  # CPU time: a busy machine does not slow the count
        box = tracker.update(f)
        times.append(time.process_time() - t0)
        errors.append(float(np.hypot(box[0] - x, box[1] - y)))
    fps = 1.0 / float(np.median(times))
    holds = bool(fps >= 30 and np.median(errors) <= 2.0)
    fig, ax = new_figure()
    ax.plot(np.arange(1, len(times) + 1), 1e3 * np.array(times), label="update time")
    ax.axhline(1e3 / 30, color="k", ls=":", label="30 fps budget")
    ax.set(xlabel="frame", ylabel="milliseconds per frame", title=f"KCF, 320x240 frames, median {fps:.0f} fps")
    ax.legend(fontsize=8)
    measured = {"frames": len(times), "median_fps": fps, "median_center_error_px": float(np.median(errors))}
    test = (
        "KCF (raw pixels, Gaussian kernel) on 320x240 frames with a 32x32 textured target moving "
        "(2, 1.5) px/frame: median update rate ≥ 30 frames per second on one CPU core (the machine may "
        "be shared: the median is used) with median position error ≤ 2 px."
    )
    return ClaimResult(measured, test, holds, [fig])
