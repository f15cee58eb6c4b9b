"""The building blocks of YOLOv2–v5, one small piece each, switched on by YOLOv3's keywords.

- :class:`ConvBNAct` — conv, batch norm (YOLOv2 puts it after every conv), leaky ReLU or Mish;
- :func:`reorg` — YOLOv2's passthrough layer: a ``s × s`` space-to-depth rearrangement;
- :class:`ResBlock`, :class:`CSPStage` — a Darknet residual stage and its cross-stage-partial form;
- :class:`SPP` — YOLOv4's spatial pyramid pooling: stride-1 max pools of 5, 9, 13 concatenated;
- :func:`drop_block` / :class:`DropBlock2d` — DropBlock (Ghiasi et al., 2018);
- :func:`smooth_labels` — class label smoothing for independent logistic classifiers.

Mosaic, CutMix and multi-scale training act on a training batch: :mod:`.yolo_batch`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_choice, check_float, check_int, check_tensor

ACTIVATIONS = ("leaky", "mish")


def make_act(name: str) -> nn.Module:
    """``"leaky"`` → LeakyReLU(0.1) (YOLOv2/v3), ``"mish"`` → x·tanh(softplus(x)) (YOLOv4)."""
    check_choice("act", name, ACTIVATIONS)
    return nn.LeakyReLU(0.1) if name == "leaky" else nn.Mish()


class ConvBNAct(nn.Sequential):
    """conv (no bias) → batch norm → activation."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1, act: str = "leaky"):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(c_out),
            make_act(act),
        )


def reorg(x: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """Passthrough (YOLOv2): ``(N, C, H, W)`` → ``(N, C·s², H/s, W/s)``; output channel
    ``c·s² + dy·s + dx`` holds input pixel ``(s·i + dy, s·j + dx)`` of channel ``c``
    (``F.pixel_unshuffle``'s order)."""
    check_tensor("x", x, ndim=4)
    s = check_int("stride", stride, min=1)
    n, c, h, w = x.shape
    if h % s or w % s:
        raise ValueError(f"x's height and width must be multiples of stride {s}, got {h}×{w}")
    return x.view(n, c, h // s, s, w // s, s).permute(0, 1, 3, 5, 2, 4).reshape(n, c * s * s, h // s, w // s)


class ResBlock(nn.Module):
    """Darknet-53's residual unit: ``x + conv3×3(conv1×1(x))`` (the 1×1 halves the channels)."""

    def __init__(self, channels: int, act: str = "leaky"):
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(channels, channels // 2, 1, act=act), ConvBNAct(channels // 2, channels, 3, act=act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DarkStage(nn.Sequential):
    """A Darknet-53 stage: a stride-2 3×3 conv, then ``depth`` residual units."""

    def __init__(self, c_in: int, c_out: int, depth: int = 1, act: str = "leaky"):
        super().__init__(ConvBNAct(c_in, c_out, 3, 2, act), *[ResBlock(c_out, act) for _ in range(depth)])


class CSPStage(nn.Module):
    """A cross-stage-partial stage (CSPNet, YOLOv4's CSPDarknet53).

    After the stride-2 conv the features are split by two 1×1 convs into a part that goes through
    the residual units and a part that bypasses them; the two are concatenated and mixed by a 1×1
    transition. Only half of the channels pay for the residual units, and the gradient reaching
    the stage input flows through two paths that do not duplicate each other.
    """

    def __init__(self, c_in: int, c_out: int, depth: int = 1, act: str = "leaky"):
        super().__init__()
        half = c_out // 2
        self.down = ConvBNAct(c_in, c_out, 3, 2, act)
        self.part1 = ConvBNAct(c_out, half, 1, act=act)  # bypasses the blocks
        self.part2 = nn.Sequential(ConvBNAct(c_out, half, 1, act=act), *[ResBlock(half, act) for _ in range(depth)])
        self.transition = ConvBNAct(2 * half, c_out, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return self.transition(torch.cat([self.part1(x), self.part2(x)], 1))


class SPP(nn.Module):
    """YOLOv4's SPP block: ``[x, maxpool5(x), maxpool9(x), maxpool13(x)]`` (stride 1, same size)
    concatenated, then a 1×1 conv back to ``channels``. It widens the receptive field of the last
    stage without changing its size (unlike SPPNet's fixed-bin pyramid,
    :func:`deepnotes.nn.spatial_pyramid_pool`)."""

    def __init__(self, channels: int, kernel_sizes=(5, 9, 13), act: str = "leaky"):
        super().__init__()
        self.kernel_sizes = tuple(check_int("kernel_size", k, min=1) for k in kernel_sizes)
        self.mix = ConvBNAct(channels * (1 + len(self.kernel_sizes)), channels, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [F.max_pool2d(x, k, stride=1, padding=k // 2) for k in self.kernel_sizes]
        return self.mix(torch.cat([x, *pooled], 1))


def drop_block(x: torch.Tensor, drop_prob: float, block_size: int, training: bool = True) -> torch.Tensor:
    """DropBlock: zero whole ``block_size × block_size`` squares instead of single units.

    Block centres are drawn with rate γ = p / b² · HW / ((H − b + 1)(W − b + 1)) (so about a share
    ``p`` of the units is dropped), grown into squares with a stride-1 max pool, and the kept
    units rescaled by ``numel / kept`` (as dropout rescales by 1 / (1 − p)). Identity when not
    training or ``p = 0``; draws from torch's global generator (like dropout).
    """
    check_tensor("x", x, ndim=4, floating=True)
    p = check_float("drop_prob", drop_prob, min=0.0, max=1.0, max_inclusive=False)
    b = check_int("block_size", block_size, min=1)
    if not training or p == 0:
        return x
    n, c, h, w = x.shape
    b = min(b, h, w)
    gamma = p / b**2 * h * w / ((h - b + 1) * (w - b + 1))
    centres = torch.zeros_like(x)
    # centres only where the whole block fits, as in the paper
    centres[..., (b - 1) // 2 : h - b // 2, (b - 1) // 2 : w - b // 2] = (
        torch.rand(n, c, h - b + 1, w - b + 1, device=x.device, dtype=x.dtype) < gamma).to(x.dtype)
    pad = (b // 2, (b - 1) // 2, b // 2, (b - 1) // 2)
    blocks = F.max_pool2d(F.pad(centres, pad), b, stride=1)  # a block of ones behind every centre
    keep = 1 - blocks
    return x * keep * (keep.numel() / keep.sum().clamp(min=1))


class DropBlock2d(nn.Module):
    """Module form of :func:`drop_block`."""

    def __init__(self, drop_prob: float = 0.1, block_size: int = 3):
        super().__init__()
        self.drop_prob = check_float("drop_prob", drop_prob, min=0.0, max=1.0, max_inclusive=False)
        self.block_size = check_int("block_size", block_size, min=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_block(x, self.drop_prob, self.block_size, self.training)


def smooth_labels(onehot: torch.Tensor, eps: float) -> torch.Tensor:
    """Label smoothing for independent logistic classifiers: each binary target moves ``eps / 2``
    towards the other side, ``1 → 1 − ε/2`` and ``0 → ε/2`` (each classifier has two outcomes)."""
    eps = check_float("label_smoothing", eps, min=0.0, max=1.0)
    return onehot * (1 - eps) + eps / 2
