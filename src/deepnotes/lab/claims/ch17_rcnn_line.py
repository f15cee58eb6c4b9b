"""Chapter 17, the R-CNN line: where the time per image goes from R-CNN to Faster R-CNN.

(The RPN's recall against Selective Search's is claim 17p in ``ch17_rpn_recall``.)"""

from __future__ import annotations

import time

import numpy as np
import torch

from deepnotes.core.threads import torch_threads
from deepnotes.data import shapes
from deepnotes.detection.anchors import AnchorGenerator
from deepnotes.detection.models.backbone import TinyResNet
from deepnotes.detection.roi_pool import roi_spatial_pyramid_pool
from deepnotes.detection.two_stage import (
    RCNN,
    FastRCNN,
    FastRCNNPredictor,
    MultiScaleRoIAlign,
    RegionProposalNetwork,
    RoIHeads,
    RPNHead,
    SPPNet,
    TwoMLPHead,
    per_class_detections,
)
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.viz import new_figure

PARTS = ("proposals", "features", "heads")
LINE = ("R-CNN", "SPPNet", "Fast R-CNN", "Faster R-CNN")


class _Faster(torch.nn.Module):
    """Faster R-CNN from the toolkit's RPN and RoI heads on the same stride-8 backbone as SPPNet
    and Fast R-CNN (untrained: only its timing is used)."""

    def __init__(self, width: int = 64, num_classes: int = 3, post_nms: int = 200):
        super().__init__()
        self.backbone = TinyResNet(3, (width // 4, width // 2, width), stem_width=width // 4)
        anchors = AnchorGenerator(((16, 32, 64),), ((0.5, 1.0, 2.0),))
        self.rpn = RegionProposalNetwork(anchors, RPNHead(width, 9), 0.7, 0.3, 256, 0.5,
                                         {"training": 2000, "testing": 1000}, {"training": post_nms, "testing": post_nms}, 0.7)
        self.roi_heads = RoIHeads(MultiScaleRoIAlign(["0"], 7, 2), TwoMLPHead(width * 49, 256),
                                  FastRCNNPredictor(256, num_classes + 1), 0.5, 0.5, 512, 0.25, None, 0.05, 0.5, 100)


def _timed(fn):
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


@torch.no_grad()
def _time_parts(name: str, model, image: torch.Tensor) -> dict[str, float]:
    """CPU seconds of the three parts for one image (batch of 1), in eval mode."""
    x = image.unsqueeze(0)
    size = tuple(x.shape[-2:])
    if name == "Faster R-CNN":
        fmap, t_feat = _timed(lambda: model.backbone(x)[-1])
        props, t_prop = _timed(lambda: model.rpn(x, [fmap])[0])
        _, t_head = _timed(lambda: model.roi_heads({"0": fmap}, props, [size]))
        return {"proposals": t_prop, "features": t_feat, "heads": t_head}
    props, t_prop = _timed(lambda: model.proposer(x, cache=False))
    rois = torch.cat(props)
    if name == "R-CNN":  # warp every region and run the CNN on it: features per region
        p5, t_feat = _timed(lambda: model.pool5(x, props))
    elif name == "SPPNet":
        fmap, t_feat = _timed(lambda: model.features(x)[-1])
    else:
        fmap, t_feat = _timed(lambda: model.backbone(x)[-1])

    def heads():
        if name == "Fast R-CNN":
            return model.detect(fmap, props)
        pooled = p5 if name == "R-CNN" else roi_spatial_pyramid_pool(fmap, props, model.levels, 1.0 / model.stride)
        scores = torch.sigmoid(model.svm(model.fc(pooled)))
        boxes = model.box_coder.decode(model.bbox_pred(pooled), rois).view(-1, model.num_classes, 4)
        return per_class_detections(scores, boxes, [len(rois)], size, score_thresh=model.score_thresh,
                                    nms_thresh=model.nms_thresh, detections_per_img=model.detections_per_img)

    _, t_head = _timed(heads)
    return {"proposals": t_prop, "features": t_feat, "heads": t_head}


@claim(
    "17l",
    title="Along R-CNN → SPPNet → Fast R-CNN → Faster R-CNN each step removes a time bottleneck",
    topics=("17.6",),
    source="notes 1020-1035, 1037-1042, 1044-1051, 1055-1062",
    statement="R-CNN is slow because it runs the CNN on every (heavily overlapping) proposal; SPPNet "
    "extracts the features of the whole image once and cuts each proposal's features out of them; "
    "Fast R-CNN keeps that and replaces the SVMs and regressors with jointly trained fully connected "
    "layers for efficiency; Faster R-CNN replaces Selective Search with an RPN sharing the features.",
    expected="partly",
    reason="Both bottlenecks are real — R-CNN's per-region CNN costs about 12× SPPNet's single pass and "
    "Selective Search about 9× the RPN — but on 128-px images with 200 proposals SPPNet's pyramid pooling "
    "of every region (deepnotes' RoI pooling, about 75 ms) costs as much as the per-region CNN it saves, so "
    "the time per image does not fall from R-CNN to SPPNet; it falls fivefold from Fast to Faster R-CNN.",
)
def rcnn_line_time(quick: bool, seed: int) -> ClaimResult:
    torch.manual_seed(seed)
    n_images, rounds = (2, 3) if quick else (8, 5)
    data = shapes(seed=seed, n_train=1, n_val=1, n_test=n_images).test
    images = [data[i][0] for i in range(n_images)]
    # Selective Search in the paper's fast mode (R-CNN's setting), at most 200 boxes per image
    ss = {"proposal_mode": "fast", "max_proposals": 200}
    models = {"R-CNN": RCNN(**ss), "SPPNet": SPPNet(**ss), "Fast R-CNN": FastRCNN(**ss), "Faster R-CNN": _Faster()}
    for name in ("R-CNN", "SPPNet"):  # detect with the SVMs (the trained pipeline's test path)
        models[name].steps_done.fill_(models[name].finetune_steps)
    n_rois = int(np.mean([len(models["R-CNN"].proposer(x.unsqueeze(0), cache=False)[0]) for x in images]))
    for m in models.values():
        m.eval()
    samples = {n: {p: [] for p in PARTS} for n in LINE}
    # One thread: CPU time then counts the work, not a thread pool waiting for cores that other
    # processes hold (which slowed the batched per-region CNN most and made the ratios drift).
    with torch_threads(1):
        for _ in range(rounds):  # models interleaved in each round, so load changes hit all of them
            for image in images:
                for name in LINE:
                    for part, t in _time_parts(name, models[name], image).items():
                        samples[name][part].append(t)
    ms = {n: {p: 1000 * float(np.median(v)) for p, v in samples[n].items()} for n in LINE}
    total = {n: sum(ms[n].values()) for n in LINE}
    feature_ratio = ms["R-CNN"]["features"] / ms["SPPNet"]["features"]
    proposal_ratio = ms["Fast R-CNN"]["proposals"] / ms["Faster R-CNN"]["proposals"]
    bottlenecks = feature_ratio > 2 and proposal_ratio > 2
    falls = total["R-CNN"] > 1.5 * total["SPPNet"] and total["Fast R-CNN"] > 1.5 * total["Faster R-CNN"]
    holds, partly = bottlenecks and falls, bottlenecks and not falls
    # the same pyramid pooling with torchvision's C++ RoI pooling (a test dependency), for scale
    try:
        import torchvision
    except ImportError:
        torchvision = None
    x = images[0].unsqueeze(0)
    with torch.no_grad():
        fmap = models["SPPNet"].features(x)[-1]
    props = models["SPPNet"].proposer(x, cache=False)
    tv = []
    with torch_threads(1):
        for _ in range(rounds):
            _, t_ours = _timed(lambda: roi_spatial_pyramid_pool(fmap, props, (4, 2, 1), 1 / 8))
            t_ref = float("nan")
            if torchvision is not None:
                _, t_ref = _timed(lambda: [torchvision.ops.roi_pool(fmap, props, lv, 1 / 8) for lv in (4, 2, 1)])
            tv.append((t_ours, t_ref))
    spp_ours_ms, spp_tv_ms = (1000 * float(np.median(v)) for v in zip(*tv))
    spp_tv_ms = None if np.isnan(spp_tv_ms) else spp_tv_ms

    fig, ax = new_figure(width=7.0, height=4.0)
    bottom = np.zeros(len(LINE))
    for part, colour in zip(PARTS, ("#c44e52", "#4c72b0", "#55a868")):
        vals = np.array([ms[n][part] for n in LINE])
        ax.bar(LINE, vals, bottom=bottom, label=part, color=colour)
        bottom += vals
    for i, n in enumerate(LINE):
        ax.text(i, bottom[i], f"{total[n]:.0f} ms", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="CPU time per 128 × 128 image (ms, median)", ylim=(0, bottom.max() * 1.15),
           title="Where the test-time goes (1 thread, untrained weights)")
    ax.legend(fontsize=8)
    measured = {"ms_per_image": ms, "total_ms": total, "rcnn_over_sppnet_features": feature_ratio,
                "selective_search_over_rpn_proposals": proposal_ratio, "selective_search_boxes_per_image": n_rois,
                "images": n_images, "rounds": rounds, "spp_pooling_ms_deepnotes": spp_ours_ms,
                "spp_pooling_ms_torchvision": spp_tv_ms}
    test = (
        "CPU time (process time, one torch thread, batch of 1, median over images × rounds, models "
        "interleaved) of each part; Selective Search in the paper's fast mode, at most 200 boxes. Holds if "
        "R-CNN's per-region CNN costs more than 2× SPPNet's single pass, the RPN is more than 2× faster "
        "than Selective Search, and the total falls by more than a third (ratio > 1.5) from R-CNN to SPPNet "
        "and from Fast to Faster R-CNN; partly if only the two bottleneck ratios hold. Both factors sit "
        "above the timing noise: on a shared machine the median of one part moved by up to 2.5× between "
        "runs of the same seed, the totals by up to 30 %."
    )
    observation = (
        f"Selective Search dominates every detector that uses it ({ms['Fast R-CNN']['proposals']:.0f} ms "
        f"of {total['Fast R-CNN']:.0f} ms for Fast R-CNN); SPPNet and Fast R-CNN cost about the same at "
        f"test time ({total['SPPNet']:.0f} vs {total['Fast R-CNN']:.0f} ms) — Fast R-CNN's gain over SPPNet "
        "is in training (one stage, no SVMs, fine-tuning through RoI pooling), not in the test pass. "
        f"SPPNet's per-region cost is the pyramid pooling: {spp_ours_ms:.0f} ms with deepnotes' RoI pooling "
        "(vectorized over RoIs, a loop over bin offsets)"
        + (f" against {spp_tv_ms:.1f} ms with torchvision's C++ kernel — with the latter, SPPNet would beat "
           "R-CNN as the notes say." if spp_tv_ms is not None else ".")
    )
    return ClaimResult(measured, test, holds, [fig], partly=partly, observation=observation)

