"""``deepnotes track``: run SORT or the DeepSORT-style tracker on a sequence and score it."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from deepnotes.commands._common import add_threads_option

    p = sub.add_parser(
        "track",
        help="track objects through a shapes sequence or a MOTChallenge folder; tracks, strip and metrics",
        description="Run a tracker frame by frame on --data: 'shapes-seq' (a synthetic shapes sequence; "
        "detections are the true boxes with jitter and misses) or 'mot:PATH' (a MOTChallenge sequence "
        "folder with det/det.txt and, to be scored, gt/gt.txt; images in img1/ for the strip). Writes "
        "tracks.txt (MOTChallenge format), metrics.json (when there is ground truth) and strip.png "
        "(annotated frames) to --out.",
    )
    p.add_argument("--data", default="shapes-seq", help="shapes-seq (default) or mot:PATH")
    p.add_argument("--tracker", default="sort", choices=("sort", "deepsort"))
    p.add_argument("--frames", type=int, default=100, help="shapes-seq: number of frames (default 100)")
    p.add_argument("--miss-rate", type=float, default=0.1, help="shapes-seq: detection miss rate (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-age", type=int, default=5, help="frames a track survives unseen (default 5)")
    p.add_argument("--iou-threshold", type=float, default=0.3, help="SORT's matching IoU (default 0.3)")
    p.add_argument("--out", required=True, help="output folder")
    add_threads_option(p)
    p.set_defaults(func=run)


def _mot_folder(path: Path):
    """Detections per frame (xyxy), ground truth rows (or None) and a frame reader (or None)."""
    import numpy as np

    from deepnotes.data import read_image
    from deepnotes.tracking.mot_io import read_mot

    det_file = path / "det" / "det.txt"
    if not det_file.is_file():
        raise FileNotFoundError(f"{str(path)!r} is not a MOTChallenge sequence: no det/det.txt")
    det = read_mot(det_file, detections=True)
    gt = None
    if (path / "gt" / "gt.txt").is_file():
        gt = read_mot(path / "gt" / "gt.txt")
        gt = gt[gt[:, 6] != 0]  # MOT16+: a 0 in the 7th column marks an entry not to evaluate
    n_frames = int(max(det[:, 0].max(initial=0), 0 if gt is None else gt[:, 0].max(initial=0)))
    dets = []
    for f in range(1, n_frames + 1):
        rows = det[det[:, 0] == f]
        dets.append(np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1))
    images = sorted((path / "img1").glob("*.jpg")) + sorted((path / "img1").glob("*.png"))

    def frame(t: int):
        return read_image(images[t]) if t < len(images) else None

    return dets, gt, frame


def run(args) -> int:
    from deepnotes.commands._common import apply_threads

    apply_threads(args)  # small tensor work collapses when the thread pool outnumbers free cores

    from deepnotes.commands._common import console
    from deepnotes.core.checks import check_int, check_probability
    from deepnotes.core.io import atomic_write_json
    from deepnotes.tracking import DeepSortTracker, Sort, mot_metrics, write_mot
    from deepnotes.tracking.sequences import (
        colour_features,
        run_tracker,
        shapes_sequence_detections,
    )

    check_int("--frames", args.frames, min=1)
    check_int("--max-age", args.max_age, min=1)
    check_probability("--miss-rate", args.miss_rate)
    out = Path(args.out)
    if args.data == "shapes-seq":
        from deepnotes.data.shapes import ShapesSequence

        seq = ShapesSequence(num_frames=args.frames, seed=args.seed)
        gt, dets, feats = shapes_sequence_detections(seq, miss_rate=args.miss_rate, seed=args.seed)

        def frame(t):
            return seq[t][0]
    elif args.data.startswith("mot:"):
        dets, gt, frame = _mot_folder(Path(args.data[4:]))
        feats = None
        if args.tracker == "deepsort":
            imgs = [frame(t) for t in range(len(dets))]
            if any(i is None for i in imgs):
                raise ValueError("--tracker deepsort needs the frames (img1/) for appearance features")
            feats = [colour_features(i[:3], d) for i, d in zip(imgs, dets)]
    else:
        raise ValueError(f"--data must be 'shapes-seq' or 'mot:PATH', got {args.data!r}")

    if args.tracker == "sort":
        tracker, feats = Sort(max_age=args.max_age, min_hits=1, iou_threshold=args.iou_threshold), None
    else:
        tracker = DeepSortTracker(n_init=1, max_age=args.max_age, std_weight_velocity=0.1)
    tracks = run_tracker(tracker, dets, feats)
    out.mkdir(parents=True, exist_ok=True)
    write_mot(out / "tracks.txt", tracks)
    con = console()
    if gt is not None:
        metrics = mot_metrics(gt, tracks)
        atomic_write_json(out / "metrics.json", {"data": args.data, "tracker": args.tracker, **metrics})
        con.print("  ".join(f"{k} {metrics[k]:.3f}" if isinstance(metrics[k], float) else f"{k} {metrics[k]}"
                            for k in ("mota", "motp", "idf1", "num_switches", "num_false_positives", "num_misses")))
    _strip(out / "strip.png", frame, tracks, len(dets))
    con.print(f"wrote tracks.txt{', metrics.json' if gt is not None else ''} and strip.png to {out.resolve()}")
    return 0


def _strip(path: Path, frame, tracks, n_frames: int, panels: int = 6) -> None:
    """A row of evenly spaced frames with each track's box and id in its own colour."""
    import matplotlib.pyplot as plt
    import numpy as np

    from deepnotes.viz import new_figure

    picks = np.unique(np.linspace(0, n_frames - 1, min(panels, n_frames)).round().astype(int))
    fig, axes = new_figure(ncols=len(picks), width=2.6, height=2.8)
    axes = np.atleast_1d(axes)
    cmap = plt.get_cmap("tab10")
    for ax, t in zip(axes, picks):
        img = frame(int(t))
        if img is not None:
            ax.imshow(img[:3].permute(1, 2, 0).clamp(0, 1).numpy())
        elif len(tracks):  # no frames on disk: draw the boxes on a blank canvas of their extent
            ax.set_xlim(0, float((tracks[:, 2] + tracks[:, 4]).max()) + 1)
            ax.set_ylim(float((tracks[:, 3] + tracks[:, 5]).max()) + 1, 0)
        for _, tid, x, y, w, h in tracks[tracks[:, 0] == t + 1][:, :6]:
            c = cmap(int(tid) % 10)
            ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, color=c, lw=1.5))
            ax.text(x, y - 1, str(int(tid)), color=c, fontsize=7)
        ax.set_title(f"frame {t + 1}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.savefig(path, dpi=100)
    plt.close(fig)
