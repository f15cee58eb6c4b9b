"""A small appearance-embedding CNN for the DeepSORT-style tracker, trained on shapes crops.

Re-identification as classification (as DeepSORT's own network is trained): every object of every
training sequence is one identity; the network sees its crops (resized to ``crop_size``) and is
trained with cross-entropy over the identities. The embedding is the L2-normalised penultimate
layer, so crops of one object end up close in cosine distance and the classifier head is dropped
at tracking time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_int

__all__ = ["AppearanceNet", "crops", "sequence_crops", "train_appearance"]


class AppearanceNet(nn.Module):
    """Three conv blocks → global average → ``dim``-d unit embedding (and identity logits)."""

    def __init__(self, num_identities: int, dim: int = 32, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, dim),
        )  # fmt: skip
        self.head = nn.Linear(dim, num_identities)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.features(x), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def crops(frame: torch.Tensor, boxes_xyxy: Any, size: int = 24) -> torch.Tensor:
    """Crops of ``frame (3, H, W)`` at ``boxes (N, 4)`` resized to ``size x size`` (N, 3, size, size)."""
    b = torch.as_tensor(np.asarray(boxes_xyxy, dtype=np.float32)).reshape(-1, 4)
    if len(b) == 0:
        return torch.zeros(0, 3, size, size)
    h, w = frame.shape[1:]
    out = []
    for x1, y1, x2, y2 in b.round().long().tolist():
        x1, y1 = min(max(x1, 0), w - 1), min(max(y1, 0), h - 1)
        x2, y2 = max(min(x2, w), x1 + 1), max(min(y2, h), y1 + 1)
        out.append(F.interpolate(frame[None, :, y1:y2, x1:x2], size=(size, size), mode="bilinear", align_corners=False))
    return torch.cat(out)


def sequence_crops(sequences: list[Any], size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """All ground-truth crops of the sequences and their identity labels (0-based, global)."""
    xs, ys, offset = [], [], 0
    for seq in sequences:
        n_ids = 0
        for t in range(len(seq)):
            frame, target = seq[t]
            xs.append(crops(frame, target["boxes"].numpy(), size))
            ys.append(target["track_ids"] - 1 + offset)
            if len(target["track_ids"]):
                n_ids = max(n_ids, int(target["track_ids"].max()))
        offset += n_ids
    return torch.cat(xs), torch.cat(ys)


def train_appearance(
    sequences: list[Any], steps: int = 300, batch_size: int = 64, lr: float = 3e-3, seed: int = 0, size: int = 24
) -> AppearanceNet:
    """Train :class:`AppearanceNet` on the identities of ``sequences``; returns it in eval mode."""
    check_int("steps", steps, min=1)
    x, y = sequence_crops(sequences, size)
    torch.manual_seed(seed)
    net = AppearanceNet(int(y.max()) + 1)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()
