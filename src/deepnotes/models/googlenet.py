"""GoogLeNet (Inception v1): parallel 1×1 / 3×3 / 5×5 / pool branches, 1×1 bottlenecks before the
expensive convolutions, global average pooling instead of big fully connected layers, and two
auxiliary classifiers on intermediate features (training only).

The layout and parameter names follow ``torchvision.models.googlenet`` (6,624,904 parameters
without the auxiliary heads, 13,004,888 with them, for 1000 classes) — including its use of a
3×3 kernel in the "5×5" branch; pass ``branch3_kernel=5`` for the paper's 5×5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_choice, check_int, check_probability
from deepnotes.core.registry import MODELS
from deepnotes.models.blocks import ConvBNReLU, init_inception_weights
from deepnotes.models.interface import ImageClassifier, parse_in_shape


class Inception(nn.Module):
    """One Inception v1 module: four branches concatenated along channels."""

    def __init__(self, in_ch, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, branch3_kernel: int = 3):
        super().__init__()
        self.branch1 = ConvBNReLU(in_ch, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            ConvBNReLU(in_ch, ch3x3red, kernel_size=1),  # 1×1 bottleneck cuts the 3×3's input channels
            ConvBNReLU(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            ConvBNReLU(in_ch, ch5x5red, kernel_size=1),
            ConvBNReLU(ch5x5red, ch5x5, kernel_size=branch3_kernel, padding=branch3_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            ConvBNReLU(in_ch, pool_proj, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: 4×4 average pool → 1×1 conv (128) → FC 1024 → dropout 0.7 → FC."""

    def __init__(self, in_ch: int, num_classes: int, dropout: float = 0.7):
        super().__init__()
        self.conv = ConvBNReLU(in_ch, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))
        return self.fc2(self.dropout(F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)))


class GoogLeNet(ImageClassifier):
    """GoogLeNet. ``forward`` returns the main logits; :meth:`forward_with_aux` also returns the
    auxiliary logits (``[aux1, aux2]``, empty without ``aux_logits``) for the weighted training loss.
    Minimum input 15×15."""

    min_size = 15

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = False,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
        branch3_kernel: int = 3,
    ):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, min=1)
        self.num_classes = nc = check_int("num_classes", num_classes, min=1)
        k = check_choice("branch3_kernel", branch3_kernel, (3, 5))
        self.aux_logits = bool(aux_logits)
        self.conv1 = ConvBNReLU(self.in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = ConvBNReLU(64, 64, kernel_size=1)
        self.conv3 = ConvBNReLU(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32, k)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64, k)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64, k)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64, k)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64, k)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64, k)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128, k)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128, k)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128, k)
        if self.aux_logits:
            self.aux1 = InceptionAux(512, nc, check_probability("dropout_aux", dropout_aux))
            self.aux2 = InceptionAux(528, nc, dropout_aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(check_probability("dropout", dropout))
        self.fc = nn.Linear(1024, nc)
        init_inception_weights(self)

    def _features(self, x: torch.Tensor, want_aux: bool):
        aux = []
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        if want_aux:
            aux.append(self.aux1(x))
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        if want_aux:
            aux.append(self.aux2(x))
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x)), aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(x, False)[0]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(features), 1)))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Main logits and the auxiliary logits ``[aux1, aux2]`` (empty when ``aux_logits`` is off)."""
        self.check_input(x)
        feats, aux = self._features(x, self.aux_logits)
        return self.forward_head(feats), aux


@MODELS.register("googlenet", description="GoogLeNet / Inception v1 (aux heads with aux_logits=True; min 15x15)")
def googlenet(in_shape, num_classes: int, **kw) -> nn.Module:
    c, _, _ = parse_in_shape(in_shape, GoogLeNet.min_size, "googlenet")
    return GoogLeNet(num_classes=num_classes, in_channels=c, **kw)
