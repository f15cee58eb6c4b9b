"""Assigning anchors/proposals to ground truth, and sampling a balanced training batch.

:class:`Matcher` (torchvision's): for a quality matrix ``Q[m, n]`` (IoU of ground truth ``m``
with prediction ``n``), prediction ``n`` is matched to ``argmax_m Q[m, n]`` if that maximum is
``>= high_threshold``, marked ``BETWEEN_THRESHOLDS`` (-2, ignored in training) if it lies in
``[low, high)``, and ``BELOW_LOW_THRESHOLD`` (-1, background) below ``low``. With
``allow_low_quality_matches`` every ground truth also keeps the predictions that overlap it
best (ties included), even below ``high_threshold``, so no object is left without an anchor
(Faster R-CNN's RPN rule).

:class:`BalancedPositiveNegativeSampler` draws at most ``batch_size_per_image ·
positive_fraction`` positives and fills the rest of the batch with negatives, so the
thousands of background anchors do not swamp the few positives.
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_float, check_int, check_tensor, check_type


class Matcher:
    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(
        self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False
    ) -> None:
        self.high_threshold = check_float("high_threshold", high_threshold)
        self.low_threshold = check_float("low_threshold", low_threshold)
        if self.low_threshold > self.high_threshold:
            raise ValueError(
                f"low_threshold ({low_threshold}) must be <= high_threshold ({high_threshold})"
            )
        self.allow_low_quality_matches = bool(
            check_type("allow_low_quality_matches", allow_low_quality_matches, bool)
        )

    def __call__(self, match_quality_matrix: torch.Tensor) -> torch.Tensor:
        """``match_quality_matrix (Tensor[M, N])`` → ``LongTensor[N]``: a ground-truth index or -1 / -2."""
        check_tensor(
            "match_quality_matrix", match_quality_matrix, ndim=2, floating=True, finite=True
        )
        m, n = match_quality_matrix.shape
        if m == 0:
            raise ValueError("match_quality_matrix has no rows: no ground-truth boxes to match")
        if n == 0:
            raise ValueError("match_quality_matrix has no columns: no predictions to match")
        best, matches = match_quality_matrix.max(dim=0)
        all_matches = matches.clone()
        matches[best < self.low_threshold] = self.BELOW_LOW_THRESHOLD
        matches[(best >= self.low_threshold) & (best < self.high_threshold)] = (
            self.BETWEEN_THRESHOLDS
        )
        if self.allow_low_quality_matches:
            best_per_gt = match_quality_matrix.max(dim=1).values
            # every prediction that attains some ground truth's best quality gets its own best match back
            rescued = (match_quality_matrix == best_per_gt[:, None]).any(dim=0)
            matches[rescued] = all_matches[rescued]
        return matches


class BalancedPositiveNegativeSampler:
    """Sample ``batch_size_per_image`` elements with at most ``positive_fraction`` positives.

    ``matched_idxs``: one ``LongTensor`` per image with ``-1`` (ignore), ``0`` (negative) or
    ``>= 1`` (positive), as torchvision's heads label them. Returns two lists of ``uint8`` masks
    (positives, negatives). Draws come from ``generator`` (the global RNG when ``None``, which
    reproduces torchvision's draws under the same ``torch.manual_seed``).
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float) -> None:
        self.batch_size_per_image = check_int("batch_size_per_image", batch_size_per_image, min=1)
        self.positive_fraction = check_float(
            "positive_fraction", positive_fraction, min=0.0, max=1.0
        )

    def __call__(
        self, matched_idxs: list[torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        check_type("matched_idxs", matched_idxs, (list, tuple))
        pos_masks, neg_masks = [], []
        for i, labels in enumerate(matched_idxs):
            check_tensor(f"matched_idxs[{i}]", labels, ndim=1)
            positive = torch.where(labels >= 1)[0]
            negative = torch.where(labels == 0)[0]
            num_pos = min(positive.numel(), int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(negative.numel(), self.batch_size_per_image - num_pos)
            pos = positive[torch.randperm(positive.numel(), generator=generator)[:num_pos]]
            neg = negative[torch.randperm(negative.numel(), generator=generator)[:num_neg]]
            pos_mask = torch.zeros_like(labels, dtype=torch.uint8)
            neg_mask = torch.zeros_like(labels, dtype=torch.uint8)
            pos_mask[pos] = 1
            neg_mask[neg] = 1
            pos_masks.append(pos_mask)
            neg_masks.append(neg_mask)
        return pos_masks, neg_masks
