"""Inception v3: factorized convolutions (5×5 → two 3×3, n×n → 1×n then n×1), batch norm
everywhere, grid reductions that pool and convolve with stride 2 in parallel (so neither a
representational bottleneck nor a blow-up in cost), and one auxiliary head.

Layout and parameter names follow ``torchvision.models.inception_v3`` (23,834,568 parameters
without the auxiliary head, 27,161,264 with it, for 1000 classes). Native input 299×299;
minimum 75×75.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_int, check_probability
from deepnotes.core.registry import MODELS
from deepnotes.models.blocks import ConvBNReLU as B
from deepnotes.models.blocks import init_inception_weights
from deepnotes.models.interface import ImageClassifier, parse_in_shape


class InceptionA(nn.Module):
    """35×35 module: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg-pool→1×1."""

    def __init__(self, in_ch: int, pool_features: int):
        super().__init__()
        self.branch1x1 = B(in_ch, 64, kernel_size=1)
        self.branch5x5_1 = B(in_ch, 48, kernel_size=1)
        self.branch5x5_2 = B(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = B(in_ch, 64, kernel_size=1)
        self.branch3x3dbl_2 = B(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = B(96, 96, kernel_size=3, padding=1)
        self.branch_pool = B(in_ch, pool_features, kernel_size=1)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Grid reduction 35→17: stride-2 3×3 | 1×1→3×3→3×3/2 | max-pool/2, concatenated."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.branch3x3 = B(in_ch, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = B(in_ch, 64, kernel_size=1)
        self.branch3x3dbl_2 = B(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = B(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3d, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """17×17 module with 7×7 convolutions factorized into 1×7 and 7×1."""

    def __init__(self, in_ch: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = B(in_ch, 192, kernel_size=1)
        self.branch7x7_1 = B(in_ch, c7, kernel_size=1)
        self.branch7x7_2 = B(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = B(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = B(in_ch, c7, kernel_size=1)
        self.branch7x7dbl_2 = B(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = B(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = B(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = B(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = B(in_ch, 192, kernel_size=1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        d = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(d))))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), b7, d, bp], 1)


class InceptionD(nn.Module):
    """Grid reduction 17→8."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.branch3x3_1 = B(in_ch, 192, kernel_size=1)
        self.branch3x3_2 = B(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = B(in_ch, 192, kernel_size=1)
        self.branch7x7x3_2 = B(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = B(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = B(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """8×8 module whose 3×3 branches split into parallel 1×3 and 3×1 outputs (wider, not deeper)."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.branch1x1 = B(in_ch, 320, kernel_size=1)
        self.branch3x3_1 = B(in_ch, 384, kernel_size=1)
        self.branch3x3_2a = B(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = B(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = B(in_ch, 448, kernel_size=1)
        self.branch3x3dbl_2 = B(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = B(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = B(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = B(in_ch, 192, kernel_size=1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), b3, d, bp], 1)


class InceptionAuxV3(nn.Module):
    """Auxiliary head on the 17×17 grid: 5×5/3 average pool → 1×1 (128) → 5×5 (768) → GAP → FC."""

    def __init__(self, in_ch: int, num_classes: int):
        super().__init__()
        self.conv0 = B(in_ch, 128, kernel_size=1)
        self.conv1 = B(128, 768, kernel_size=5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x):
        x = self.conv1(self.conv0(F.avg_pool2d(x, kernel_size=5, stride=3)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


class InceptionV3(ImageClassifier):
    """Inception v3. ``forward`` returns the main logits; :meth:`forward_with_aux` also returns
    ``[aux]`` (empty without ``aux_logits``)."""

    min_size = 75
    aux_min_size = 299  # the auxiliary head's 5×5/3 pool and 5×5 conv need a 17×17 grid

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = False, dropout: float = 0.5):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, min=1)
        self.num_classes = nc = check_int("num_classes", num_classes, min=1)
        self.aux_logits = bool(aux_logits)
        self.Conv2d_1a_3x3 = B(self.in_channels, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = B(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = B(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = B(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = B(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits = InceptionAuxV3(768, nc) if self.aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(check_probability("dropout", dropout))
        self.fc = nn.Linear(2048, nc)
        init_inception_weights(self)

    def _features(self, x, want_aux: bool):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(x)))
        x = self.maxpool2(x)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(self.Mixed_6a(x)))))
        aux = [self.AuxLogits(x)] if want_aux else []
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        return x, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(x, False)[0]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(features), 1)))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self.check_input(x)
        if self.aux_logits and min(x.shape[-2:]) < self.aux_min_size:
            raise ValueError(f"input of size {tuple(x.shape[-2:])} is below aux_min_size {self.aux_min_size} of the auxiliary head")
        feats, aux = self._features(x, self.aux_logits)
        return self.forward_head(feats), aux


@MODELS.register("inception_v3", description="Inception v3 (aux head with aux_logits=True; min 75x75)")
def inception_v3(in_shape, num_classes: int, **kw) -> nn.Module:
    c, _, _ = parse_in_shape(in_shape, InceptionV3.min_size, "inception_v3")
    return InceptionV3(num_classes=num_classes, in_channels=c, **kw)
