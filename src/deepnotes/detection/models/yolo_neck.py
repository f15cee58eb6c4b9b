"""YOLOv3's backbone and neck, with the YOLOv4 options: CSP stages, SPP, a PAN path, ASFF or
SE-style fusion.

- :class:`DarknetBackbone` — a stem and five stride-2 stages (Darknet-53 in miniature), residual
  (:class:`~.yolo_parts.DarkStage`) or cross-stage-partial (:class:`~.yolo_parts.CSPStage`);
  returns the stride-8, 16 and 32 maps.
- :class:`YOLONeck` — FPN top-down (YOLOv3: the coarse map upsampled and concatenated with the
  finer one), optionally SPP on the coarsest map, a PAN bottom-up path (PANet / YOLOv4: the fine
  maps downsampled and concatenated back), and a last fusion of all levels at each level:

  ``"asff"`` (Liu et al., 2019): every level resized to level ``l`` and summed with per-pixel
  weights ``softmax_l(λ)`` learnt by 1×1 convs — the network picks, per location, the level
  that suits the object there;
  ``"se"``: the resized levels concatenated, re-weighted channel by channel by a
  squeeze-and-excitation gate (global average pool → FC → ReLU → FC → sigmoid), then mixed by a
  1×1 conv — a non-linear fusion in the spirit of the notes' SENet-style aggregation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_choice, check_int
from deepnotes.detection.models.yolo_parts import SPP, ConvBNAct, CSPStage, DarkStage, DropBlock2d

FUSIONS = (None, "asff", "se")


class DarknetBackbone(nn.Module):
    """Stem (3×3, stride 1) and stages of widths ``(w, 2w, 4w, 8w, 16w)`` at strides 2 … 32 with
    ``depths`` residual units; ``out_channels`` are those of the stride-8, 16, 32 maps."""

    def __init__(self, in_channels: int = 3, width: int = 8, depths=(1, 1, 2, 2, 1), csp: bool = False,
                 act: str = "leaky"):
        super().__init__()
        w = check_int("width", width, min=2)
        widths = [w * 2**i for i in range(5)]
        self.stem = ConvBNAct(in_channels, w // 2, 3, 1, act)
        stage = CSPStage if csp else DarkStage
        c, stages = w // 2, []
        for cw, d in zip(widths, depths):
            stages.append(stage(c, cw, check_int("depth", d, min=1), act))
            c = cw
        self.stages = nn.ModuleList(stages)
        self.out_channels = tuple(widths[2:])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out[2:]


class ASFF(nn.Module):
    """Adaptively spatial feature fusion into level ``level`` of three ``channels``-wide maps."""

    def __init__(self, channels: int, level: int, num_levels: int = 3):
        super().__init__()
        self.level = level
        self.weight = nn.ModuleList([nn.Conv2d(channels, 1, 1) for _ in range(num_levels)])

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[self.level].shape[-2:]
        resized = [f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="nearest") for f in feats]
        logits = torch.cat([conv(f) for conv, f in zip(self.weight, resized)], 1)  # (N, L, H, W)
        alpha = logits.softmax(1)
        return sum(alpha[:, i : i + 1] * f for i, f in enumerate(resized))


class SEFusion(nn.Module):
    """Concatenate the levels resized to level ``level``, gate channels SE-style, mix by 1×1."""

    def __init__(self, channels: int, level: int, num_levels: int = 3, reduction: int = 4):
        super().__init__()
        self.level = level
        total = channels * num_levels
        self.gate = nn.Sequential(nn.Linear(total, max(1, total // reduction)), nn.ReLU(),
                                  nn.Linear(max(1, total // reduction), total), nn.Sigmoid())
        self.mix = ConvBNAct(total, channels, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[self.level].shape[-2:]
        x = torch.cat([f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="nearest") for f in feats], 1)
        return self.mix(x * self.gate(x.mean((2, 3)))[:, :, None, None])


class YOLONeck(nn.Module):
    """Maps ``(C3, C4, C5)`` to three ``channels``-wide maps (strides 8, 16, 32)."""

    def __init__(self, in_channels, channels: int, spp: bool = False, pan: bool = False, fusion: str | None = None,
                 act: str = "leaky", dropblock: float = 0.0, block_size: int = 3):
        super().__init__()
        check_choice("fusion", fusion, FUSIONS)
        c3, c4, c5 = in_channels
        c = check_int("channels", channels, min=1)
        self.top = nn.Sequential(ConvBNAct(c5, c, 1, act=act), *([SPP(c, act=act)] if spp else []), ConvBNAct(c, c, 3, act=act))
        self.lateral = nn.ModuleList([ConvBNAct(c + c4, c, 1, act=act), ConvBNAct(c + c3, c, 1, act=act)])
        self.smooth = nn.ModuleList([ConvBNAct(c, c, 3, act=act), ConvBNAct(c, c, 3, act=act)])
        self.pan = pan
        if pan:
            self.down = nn.ModuleList([ConvBNAct(c, c, 3, 2, act) for _ in range(2)])
            self.merge = nn.ModuleList([ConvBNAct(2 * c, c, 3, act=act) for _ in range(2)])
        self.fusion = None
        if fusion is not None:
            cls = ASFF if fusion == "asff" else SEFusion
            self.fusion = nn.ModuleList([cls(c, level) for level in range(3)])
        self.drop = DropBlock2d(dropblock, block_size) if dropblock > 0 else nn.Identity()

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        c3, c4, c5 = feats
        p5 = self.drop(self.top(c5))
        up = F.interpolate(p5, size=c4.shape[-2:], mode="nearest")
        p4 = self.drop(self.smooth[0](self.lateral[0](torch.cat([up, c4], 1))))
        up = F.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        p3 = self.drop(self.smooth[1](self.lateral[1](torch.cat([up, c3], 1))))
        outs = [p3, p4, p5]
        if self.pan:  # bottom-up: the fine, well-localized maps flow back to the coarse ones
            n4 = self.merge[0](torch.cat([self.down[0](p3), p4], 1))
            n5 = self.merge[1](torch.cat([self.down[1](n4), p5], 1))
            outs = [p3, n4, n5]
        if self.fusion is not None:
            outs = [fuse(outs) for fuse in self.fusion]
        return outs
