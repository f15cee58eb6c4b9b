"""The 4-step alternating training of the Faster R-CNN paper (its main recipe; the default here,
and through ``deepnotes train``, is approximate joint training).

1. **RPN.** A copy of the detector (its backbone from the common initialization — ImageNet in the
   paper, the detector's initial weights here) trains backbone + RPN on the RPN losses.
2. **Fast R-CNN.** The detector itself, again from the common initialization, trains backbone +
   RoI heads on the RoI losses, with the *fixed* proposals of step 1's RPN. The two networks share
   no layers yet.
3. **RPN on shared features.** The detector's RPN starts from step 1's RPN; the backbone of step 2 is
   frozen and only the RPN's own layers train. From now on the convolutional features are shared.
4. **Fast R-CNN on shared features.** With the backbone and the RPN frozen, only the RoI heads
   train, on the proposals of step 3's RPN.

The notes (lines 1100-1114) list the same recipe in six steps, counting the two proposal
extractions (done here inside steps 2 and 4) as steps of their own. The result is one detector
whose RPN and RoI heads read the same features. Frozen parts are run
in eval mode (batch norm uses its running statistics) and without gradients.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.detection.two_stage.faster_rcnn import TwoStageDetector


def _feature_modules(model: TwoStageDetector) -> list[nn.Module]:
    return [m for m in (model.backbone, getattr(model, "neck", None)) if m is not None]


def _fixed_proposals(net: TwoStageDetector, images: torch.Tensor) -> list[torch.Tensor]:
    """Proposals of ``net`` as constants (eval mode: its testing top-N)."""
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    with torch.no_grad():
        proposals, _ = net.proposals(images, net.features(images))
    for m, mode in modes:  # restore each module's own mode (frozen parts stay in eval mode)
        m.training = mode
    return proposals


def _step(model, images, targets, *, part: str, frozen_features: bool, source=None) -> dict[str, torch.Tensor]:
    """The losses of one part (``"rpn"`` or ``"roi"``) of ``model`` on one batch."""
    targets = model.prepare_targets(targets, images)
    if frozen_features:
        with torch.no_grad():
            features = model.features(images)
    else:
        features = model.features(images)
    if part == "rpn":
        return model.proposals(images, features, targets)[1]
    proposals = _fixed_proposals(source if source is not None else model, images)
    sizes = [tuple(images.shape[-2:])] * images.shape[0]
    return model.roi_heads(features, proposals, sizes, targets)[1]


def _run(model, params, batches, epochs, lr, optimizer, frozen: Sequence[nn.Module], **kw) -> list[float]:
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = optimizer(params, lr)
    history = []
    for _ in range(epochs):
        for images, targets in batches:
            model.train()
            for m in frozen:
                m.eval()
            loss = sum(_step(model, images, targets, **kw).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
    for p in model.parameters():
        p.requires_grad_(True)
    return history


def train_alternating(
    model: TwoStageDetector,
    batches: Iterable,
    epochs: Sequence[int] = (1, 1, 1, 1),
    lr: float = 1e-3,
    optimizer: Callable[..., torch.optim.Optimizer] | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` in place by the paper's four steps; returns each step's batch losses.

    Parameters
    ----------
    model : a :class:`TwoStageDetector` (its current weights are the common initialization)
    batches : re-iterable ``(images, targets)`` batches, e.g. a DataLoader with the detect task's collate
    epochs : passes over ``batches`` in steps 1-4
    lr : learning rate of every step
    optimizer : ``f(params, lr)``, default Adam
    """
    check_type("model", model, TwoStageDetector)
    check_type("epochs", epochs, (tuple, list))
    if len(epochs) != 4:
        raise ValueError(f"epochs must give the passes of the 4 steps, got {tuple(epochs)}")
    epochs = [check_int(f"epochs[{i}]", e, min=0) for i, e in enumerate(epochs)]
    lr = check_float("lr", lr, min=0.0, min_inclusive=False)
    optimizer = optimizer or (lambda params, lr: torch.optim.Adam(params, lr=lr))
    features = _feature_modules(model)
    feature_params = [p for m in features for p in m.parameters()]

    rpn_net = copy.deepcopy(model)  # step 1: its own backbone, from the same initialization
    out = {"step1_rpn": _run(
        rpn_net, [p for m in _feature_modules(rpn_net) for p in m.parameters()] + list(rpn_net.rpn.parameters()),
        batches, epochs[0], lr, optimizer, frozen=[], part="rpn", frozen_features=False,
    )}
    out["step2_fast_rcnn"] = _run(  # step 2: Fast R-CNN on the fixed proposals of step 1
        model, feature_params + list(model.roi_heads.parameters()), batches, epochs[1], lr, optimizer,
        frozen=[], part="roi", frozen_features=False, source=rpn_net,
    )
    model.rpn.load_state_dict(rpn_net.rpn.state_dict())
    out["step3_rpn_shared"] = _run(  # step 3: RPN layers only, on the frozen shared features
        model, list(model.rpn.parameters()), batches, epochs[2], lr, optimizer,
        frozen=features, part="rpn", frozen_features=True,
    )
    out["step4_fast_rcnn_shared"] = _run(  # step 4: RoI heads only, proposals of step 3's RPN
        model, list(model.roi_heads.parameters()), batches, epochs[3], lr, optimizer,
        frozen=[*features, model.rpn], part="roi", frozen_features=True,
    )
    return out
