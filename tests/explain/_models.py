"""Small float64 CNNs shared by the explanation tests: a plain chain, one with residual
connections and in-place ReLUs, and the project's own ``cnn`` and small ResNet."""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.models import create
from deepnotes.models.basic import SmallCNN


class Chain(nn.Module):
    def __init__(self, c=2, k=4, inplace=False):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(c, 5, 3, padding=1), nn.ReLU(inplace=inplace), nn.MaxPool2d(2),
            nn.Conv2d(5, 6, 3, padding=1), nn.ReLU(inplace=inplace),
        )
        self.head = nn.Linear(6 * 4 * 4, k)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class Residual(nn.Module):
    """conv → relu → [conv → relu → conv] + skip → relu (all in place) → GAP → linear."""

    def __init__(self, c=2, k=4):
        super().__init__()
        self.stem = nn.Conv2d(c, 6, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)  # one module used three times, as in torchvision's ResNet
        self.conv1 = nn.Conv2d(6, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.head = nn.Linear(6, k)

    def forward(self, x):
        x = self.relu(self.stem(x))
        y = self.conv2(self.relu(self.conv1(x)))
        return self.head(self.relu(x + y).mean(dim=(2, 3)))


def models(c=2, k=4):
    """(name, model, Grad-CAM layer) triples, float64, eval mode, seeded weights."""
    torch.manual_seed(0)
    out = [
        ("chain", Chain(c, k), "features.3"),
        ("chain_inplace", Chain(c, k, inplace=True), "features.3"),
        ("residual_inplace", Residual(c, k), "conv2"),
        ("cnn", SmallCNN((c, 8, 8), k, width=4), "features.7"),
        ("resnet18_small", create("resnet18", num_classes=k, in_channels=c, image_size=8), None),
    ]
    result = []
    for name, m, layer in out:
        m = m.double()
        for mod in m.modules():  # random BN statistics so eval-mode BN is not the identity
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.5, 0.5)
        m.eval()
        if layer is None:
            layer = [n for n, mod in m.named_modules() if isinstance(mod, nn.Conv2d)][-1]
        result.append((name, m, layer))
    return result


def images(n=3, c=2, size=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g, dtype=torch.float64)
