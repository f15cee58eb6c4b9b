"""Greedy non-maximum suppression, per image and per class, and DIoU-NMS.

Greedy NMS visits the boxes from the highest score down and keeps a box unless a box kept
before it overlaps it with IoU > ``iou_threshold``. Written as a loop over boxes that is a long
sequential scan; here it is three tensor steps:

1. **Candidate pairs.** Two boxes can overlap only if their x-intervals do. Sorting the boxes by
   ``x1`` and searching each box's ``x2`` in that order gives, for every box, the run of boxes
   that start inside it: every overlapping pair appears once (a sweep line over x). The sweep
   runs within horizontal strips of the image (a box is listed in each strip it touches), so
   boxes far apart vertically are never compared; pairs
   that do not also overlap along y are dropped before any IoU is computed. The pairs are
   processed in chunks of at most :data:`PAIR_CHUNK`, so memory stays bounded on any input.
2. **Suppression edges.** On the candidate pairs, IoU (DIoU for :func:`diou_nms`) is computed
   with the same arithmetic as torchvision's kernel; a pair above the threshold becomes an edge
   from the higher-ranked box to the lower-ranked one (rank: score descending, ties by index).
3. **Fixed point.** ``keep[j] = not any(keep[i] for edges i → j)``. Iterating this map from
   ``keep = all`` (the matrix-free form of Cluster-NMS) settles on the unique solution, which is
   exactly greedy NMS: the rule fixes each box from the boxes ranked above it. Each iteration
   is one scatter over the edges; the number of iterations is the longest chain of boxes each
   suppressing the next, not the number of boxes.

In a crowded scene (many boxes on few objects) the best :data:`HEAD` boxes are decided first
and everything their kept boxes suppress is dropped at once, before the sweep (see ``_nms``).

The result is torchvision's: the same kept indices in the same order (score descending, equal
scores in index order), boxes exactly at the threshold included (``IoU > threshold`` suppresses,
``IoU == threshold`` does not). Two zero-area boxes have IoU 0 and never suppress each other.

Example
-------
>>> import torch
>>> boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]])
>>> nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
tensor([0, 2])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from deepnotes.core.checks import check_tensor
from deepnotes.detection._validate import check_boxes, check_scores, check_threshold

#: most candidate pairs held at once (each pair costs a few dozen bytes of temporaries)
PAIR_CHUNK = 1 << 20
#: how many of the best-scored boxes are decided before the rest (see ``_nms``) ...
HEAD = 64
#: ... once there are more than this many boxes (below it the pre-pass costs more than it saves)
HEAD_FROM = 256


def _pair_iou(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """IoU of broadcast boxes ``a = [x1, y1, x2, y2, area]``, ``b`` alike, in torchvision's NMS
    arithmetic (its kernel's operations in its order, in the boxes' dtype); 0/0 (two empty
    boxes) counts as no overlap."""
    w = (torch.min(a[2], b[2]) - torch.max(a[0], b[0])).clamp_(min=0)
    h = (torch.min(a[3], b[3]) - torch.max(a[1], b[1])).clamp_(min=0)
    inter = w.mul_(h)
    return inter.div_(a[4] + b[4] - inter).nan_to_num_(nan=0.0)


def _pair_diou(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """DIoU = IoU − ρ²/c² (ρ: centre distance, c: diagonal of the enclosing box); 0 for two equal points."""
    iou = _pair_iou(a, b)
    cw = torch.max(a[2], b[2]) - torch.min(a[0], b[0])
    ch = torch.max(a[3], b[3]) - torch.min(a[1], b[1])
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    return iou - ((dx * dx + dy * dy) / (cw * cw + ch * ch)).nan_to_num_(nan=0.0)


def _sweep_keys(
    boxes: torch.Tensor, groups: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and end keys on one line: ``x1``/``x2`` in float64, each group shifted past the previous."""
    x1, x2 = boxes[:, 0].double(), boxes[:, 2].double()
    if groups is None:
        return x1, x2
    lo = x1.min()
    span = float(x2.max() - lo)
    shift = (torch.unique(groups, return_inverse=True)[1].double()) * (2 * span + 1)
    return x1 - lo + shift, x2 - lo + shift


def _suppression_edges(
    boxes: torch.Tensor,
    rank: torch.Tensor,
    iou_threshold: float,
    groups: torch.Tensor | None,
    criterion: Callable[..., torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges ``i → j`` (``i`` ranked first) of the pairs whose criterion exceeds the threshold.

    Boxes sorted by their sweep key: box ``p`` can only overlap boxes ``p+1 … stop[p]-1`` (those
    starting before it ends). A chunk of consecutive boxes reads its runs as a strided window
    of the sorted coordinates, as wide as the chunk's longest run (padded with empty boxes far to
    the right, which overlap nothing); only the pairs that also overlap along y are gathered
    and given to the criterion.
    """
    n = boxes.shape[0]
    empty = torch.empty(0, dtype=torch.int64)
    if n < 2:
        return empty, empty
    start, end = _sweep_keys(boxes, groups)
    start_sorted, by_start = torch.sort(start, stable=True)
    # a relative margin keeps the float64 keys' runs a superset of the overlapping pairs
    stop = torch.searchsorted(
        start_sorted, end[by_start] + 1e-9 * (end[by_start].abs() + 1), side="right"
    )
    count = stop - torch.arange(1, n + 1)
    longest = int(count.max())
    if longest <= 0:
        return empty, empty
    b = boxes[by_start]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    pad = b.new_zeros((longest + 1,))  # beyond the last box: y from 0 to 0, overlapping nothing
    y1, y2 = torch.cat((b[:, 1], pad)), torch.cat((b[:, 3], pad))
    g = groups[by_start] if groups is not None else None
    src, dst = [], []
    r0 = 0
    while r0 < n:
        # as many rows as fit PAIR_CHUNK pairs at the width of the longest run among them
        width = min(longest, max(1, int(count[r0 : r0 + max(1, PAIR_CHUNK // longest)].max())))
        r1 = min(n, r0 + max(1, PAIR_CHUNK // max(width, 1)))
        width = max(1, int(count[r0:r1].max()))
        # a cheap test first: does the pair overlap at all? (start before the end along x, and
        # along y); a pair that does not has IoU 0 and DIoU < 0, never above the threshold
        win_y1 = y1[r0 + 1 : r1 + width].unfold(0, width, 1)
        win_y2 = y2[r0 + 1 : r1 + width].unfold(0, width, 1)
        overlap = torch.min(b[r0:r1, 3, None], win_y2) > torch.max(b[r0:r1, 1, None], win_y1)
        overlap &= torch.arange(width) < count[r0:r1, None]
        r, k = torch.nonzero(overlap, as_tuple=True)
        i, j = r + r0, r + r0 + 1 + k
        hit = criterion([*b[i].unbind(1), area[i]], [*b[j].unbind(1), area[j]]) > iou_threshold
        i, j = i[hit], j[hit]
        if g is not None:
            same = g[i] == g[j]
            i, j = i[same], j[same]
        i, j = by_start[i], by_start[j]
        i_first = rank[i] < rank[j]
        src.append(torch.where(i_first, i, j))
        dst.append(torch.where(i_first, j, i))
        r0 = r1
    return torch.cat(src), torch.cat(dst)


def _greedy_keep(n: int, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The fixed point of ``keep[j] = not any(keep[i] for i → j)``, reached from ``keep = all``."""
    keep = torch.ones(n, dtype=torch.bool)
    while True:
        suppressed = torch.zeros(n, dtype=torch.bool)
        suppressed[dst[keep[src]]] = True
        new_keep = ~suppressed
        if torch.equal(new_keep, keep):
            return keep
        keep = new_keep


def _check(boxes, scores, iou_threshold) -> tuple[torch.Tensor, torch.Tensor, float]:
    check_boxes("boxes", boxes)
    if not boxes.is_floating_point():  # as torchvision's kernel, which refuses integer boxes
        raise TypeError(f"boxes must be a floating-point tensor, got dtype {boxes.dtype}")
    check_scores("scores", scores, boxes.shape[0])
    return boxes, scores, check_threshold("iou_threshold", iou_threshold)


def _threshold_in(threshold: float, dtype: torch.dtype) -> torch.Tensor | float:
    """The threshold as a scalar of the IoU's dtype, rounded down.

    torchvision compares a float32 IoU with the threshold as a double. Comparing two float32
    values instead agrees exactly when the threshold is rounded toward −inf: no float32 lies
    strictly between a double and its float32 floor.
    """
    if not dtype.is_floating_point or dtype == torch.float64:
        return threshold
    t = torch.tensor(threshold, dtype=dtype)
    if float(t) > threshold:
        t = torch.nextafter(t, torch.tensor(-torch.inf, dtype=dtype))
    return t


def _columns(boxes: torch.Tensor) -> list[torch.Tensor]:
    return [*boxes.unbind(1), (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])]


def _suppressed_by(boxes, kept, rest, iou_threshold, groups, criterion) -> torch.Tensor:
    """Which of ``rest`` exceed the threshold with some box of ``kept`` (dense, in chunks)."""
    cols = _columns(boxes)
    a = [c[kept, None] for c in cols]
    out = []
    for part in rest.split(max(1, PAIR_CHUNK // max(1, kept.numel()))):
        hit = criterion(a, [c[None, part] for c in cols]) > iou_threshold
        if groups is not None:
            hit &= groups[kept, None] == groups[None, part]
        out.append(hit.any(0))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def _strips(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut the image into horizontal strips and list every box once per strip it touches.

    Two boxes that overlap share a point, so they meet in some strip: sweeping each strip on
    its own finds every overlapping pair, while comparing far fewer boxes than one sweep over
    the whole image. Strips are twice the mean box height (at most 256 of them), so a box
    touches about 1.5 strips. Returns ``(box index, strip)`` per entry.
    """
    y1, y2 = boxes[:, 1].double(), boxes[:, 3].double()
    lo = y1.min()
    height = max(2 * float((y2 - y1).mean()), float(y2.max() - lo) / 256, 1e-12)
    first = torch.floor((y1 - lo) / height).long()
    n_strips = torch.floor((y2 - lo) / height).long() - first + 1
    entry = torch.repeat_interleave(torch.arange(len(boxes)), n_strips)
    offset = torch.arange(len(entry)) - torch.repeat_interleave(
        torch.cumsum(n_strips, 0) - n_strips, n_strips
    )
    return entry, first[entry] + offset


def _greedy_subset(boxes, rank, subset, iou_threshold, groups, criterion) -> torch.Tensor:
    """Greedy NMS restricted to ``subset`` (indices in rank order); the kept ones, in rank order."""
    b = boxes[subset]
    if len(b) < 2:
        return subset
    entry, strip = _strips(b)
    key = strip if groups is None else groups[subset][entry] * (int(strip.max()) + 1) + strip
    src, dst = _suppression_edges(b[entry], rank[subset][entry], iou_threshold, key, criterion)
    return subset[_greedy_keep(subset.numel(), entry[src], entry[dst])]


def _nms(boxes, scores, iou_threshold, groups, criterion) -> torch.Tensor:
    """Greedy NMS; kept indices by rank.

    When boxes crowd around a few objects (a detector's raw output), the best-scored boxes
    suppress most of the others. So if the best box alone suppresses at least 1 % of the boxes,
    the top :data:`HEAD` boxes are decided first and, if they suppressed at least half of
    themselves (a crowded scene), everything the kept ones suppress is dropped with one dense
    comparison; this repeats, and the sweep settles the rest. Exact: a box that a kept box
    suppresses is suppressed in greedy NMS too, and the survivors only interact among themselves.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    iou_threshold = _threshold_in(iou_threshold, boxes.dtype)
    order = torch.sort(scores, descending=True, stable=True)[1]
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n)
    alive, kept = order, []
    while alive.numel() > max(2 * HEAD, HEAD_FROM):
        # probe: the best box is kept; if it alone suppresses under 1 % of the others, the scene
        # is not crowded and the sweep is cheaper than deciding the head first
        probe = _suppressed_by(boxes, alive[:1], alive[1:], iou_threshold, groups, criterion)
        if 100 * int(probe.sum()) < alive.numel():
            break
        head, rest = alive[:HEAD], alive[HEAD:]
        head_kept = _greedy_subset(boxes, rank, head, iou_threshold, groups, criterion)
        if 2 * head_kept.numel() > HEAD:  # the best boxes barely suppress each other: sweep it all
            break
        kept.append(head_kept)
        alive = rest[~_suppressed_by(boxes, head_kept, rest, iou_threshold, groups, criterion)]
    kept.append(_greedy_subset(boxes, rank, alive, iou_threshold, groups, criterion))
    return torch.cat(kept)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS: ``boxes (Tensor[N, 4])`` xyxy, ``scores (Tensor[N])`` → kept indices (int64),
    score descending. Suppresses a box whose IoU with a kept, higher-ranked box is > ``iou_threshold``."""
    boxes, scores, iou_threshold = _check(boxes, scores, iou_threshold)
    return _nms(boxes, scores, iou_threshold, None, _pair_iou)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS within each category ``idxs (Tensor[N])``; kept indices sorted by score descending.

    torchvision picks one of two strategies by size, and they differ in floating point, so to
    return exactly torchvision's indices we follow the same rule. Up to 1,000 boxes (4,000
    numbers) it shifts each category's boxes by ``idx · (max coordinate + 1)`` and runs one NMS —
    the shift rounds coordinates, which can move an IoU across the threshold. Above that, each
    category is suppressed on its own coordinates (here: one pass, pairs restricted to a
    category) and the kept indices are ordered by ``scores.sort(descending=True)``.
    """
    boxes, scores, iou_threshold = _check(boxes, scores, iou_threshold)
    check_tensor("idxs", idxs, ndim=1)
    if idxs.is_floating_point() or idxs.dtype == torch.bool:
        raise TypeError(f"idxs must be an integer tensor, got dtype {idxs.dtype}")
    if idxs.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"idxs must have one entry per box: expected {boxes.shape[0]}, got {idxs.shape[0]}"
        )
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    if boxes.numel() <= 4000:
        offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
        return _nms(boxes + offsets[:, None], scores, iou_threshold, None, _pair_iou)
    kept = torch.sort(_nms(boxes, scores, iou_threshold, idxs, _pair_iou))[
        0
    ]  # index order, then by score
    return kept[scores[kept].sort(descending=True)[1]]


def diou_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS that suppresses on DIoU = IoU − ρ²/c² > ``iou_threshold`` (YOLOv4's DIoU-NMS).

    Two overlapping boxes whose centres lie far apart (two adjacent objects) score lower than
    their IoU, so both survive more often. Boxes that do not overlap have DIoU < 0 and never
    suppress each other.
    """
    boxes, scores, iou_threshold = _check(boxes, scores, iou_threshold)
    return _nms(boxes, scores, iou_threshold, None, _pair_diou)
