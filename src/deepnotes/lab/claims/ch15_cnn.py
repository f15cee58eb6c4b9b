"""Chapter 15: convolution arithmetic, receptive fields, pooling stability, dilation and groups."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.lab.api import ClaimResult, claim
from deepnotes.models.localization import make_shapes
from deepnotes.nn.calculators import (
    conv_layer_table,
    conv_output_size,
    conv_params,
    receptive_field,
)
from deepnotes.viz import new_figure


def _gradient_support(model: nn.Module, size: int) -> int:
    """Receptive field measured, not computed: rows of the input that move one central output."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    x = torch.ones(1, model[0].in_channels, size, size, dtype=torch.float64, requires_grad=True)
    y = model.double()(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = (x.grad[0].abs().sum((0, 2)) > 0).nonzero()
    return int(rows.max() - rows.min() + 1)


@claim("15a", title="A 5×5 conv with 16 kernels on a 5×5×3 input has 1216 parameters", topics=("15.1",),
    source='notes 587-589',
    statement='A conv layer has kernel size × input channels × kernels + kernels parameters: 5·5·3·16 + 16 = 1216 for 16 kernels of 5×5 on 3 channels.',
    kind='worked example')
def conv_param_count(quick: bool, seed: int) -> ClaimResult:
    formula = conv_params(3, 16, 5)
    layer = nn.Conv2d(3, 16, 5)
    counted = sum(p.numel() for p in layer.parameters())
    out = layer(torch.zeros(1, 3, 5, 5))
    measured = {
        "calculator": formula,
        "torch_conv2d_parameters": counted,
        "weights": layer.weight.numel(),
        "biases": layer.bias.numel(),
        "output_shape": list(out.shape[1:]),
    }
    holds = formula == counted == 1216 and list(out.shape[1:]) == [16, 1, 1]
    fig, ax = new_figure()
    ax.bar(["weights 5·5·3·16", "biases 16"], [layer.weight.numel(), layer.bias.numel()], color=["C0", "C1"])
    ax.set(ylabel="parameters", title=f"Conv 5×5×3 → 16: {counted} parameters")
    return ClaimResult(
        measured=measured,
        test="k·k·C_in·C_out + C_out from the calculator and from nn.Conv2d(3, 16, 5) both equal 1216; "
        "the output is 1×1×16",
        holds=bool(holds),
        figures=[fig],
    )


@claim(
    "15b",
    title="Two stacked 3×3 convs see 5×5, three see 7×7, with 27C² weights instead of 49C²",
    topics=("15.1",),
    source='notes 616-622, 909-911',
    statement='Stacked small 3×3 kernels reach the receptive field of a large kernel (two see 5×5, three see 7×7) with fewer parameters.',
    kind='worked example',
)
def stacked_3x3(quick: bool, seed: int) -> ClaimResult:
    c = 64
    rows = []
    for depth in (1, 2, 3):
        stack = nn.Sequential(*[nn.Conv2d(1, 1, 3, bias=False) for _ in range(depth)])
        rows.append(
            {
                "depth": depth,
                "rf_formula": receptive_field([(3, 1)] * depth)["size"],
                "rf_measured": _gradient_support(stack, 21),
                "weights_3x3_stack": depth * conv_params(c, c, 3, bias=False),
                "weights_single_kernel": conv_params(c, c, 2 * depth + 1, bias=False),
            }
        )
    ok_rf = [r["rf_formula"] == r["rf_measured"] == 2 * r["depth"] + 1 for r in rows]
    three = rows[2]
    holds = all(ok_rf) and three["weights_3x3_stack"] == 27 * c * c and three["weights_single_kernel"] == 49 * c * c
    fig, ax = new_figure()
    d = [r["depth"] for r in rows]
    ax.plot(d, [r["weights_3x3_stack"] / c**2 for r in rows], "o-", label="stack of 3×3 (weights / C²)")
    ax.plot(d, [r["weights_single_kernel"] / c**2 for r in rows], "s--", label="one kernel with the same field")
    for r in rows:
        ax.annotate(f"RF {r['rf_measured']}×{r['rf_measured']}", (r["depth"], r["weights_single_kernel"] / c**2),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xlabel="number of stacked 3×3 layers", ylabel="weights / C²", title="Same receptive field, fewer weights")
    ax.legend(fontsize=8)
    return ClaimResult(
        measured={"rows": rows, "C": c},
        test="receptive field from the recurrence and from gradient support equals 3, 5, 7 for 1, 2, 3 layers; "
        "three 3×3 layers have 27·C² weights, one 7×7 has 49·C² (C = 64, no bias)",
        holds=bool(holds),
        figures=[fig],
    )


@claim(
    "15c",
    title="AlexNet conv1 on 227×227×3 gives 55×55×96 with ≈35K weights; the 3×3/2 pool gives 27×27×96 with 0 parameters",
    topics=("15.1", "15.2"),
    source='notes 860-880',
    statement="AlexNet's first conv (96 kernels of 11×11, stride 4) maps 227×227×3 to 55×55×96 with about 35K weights; the next 3×3 stride-2 pool gives 27×27×96 and has no parameters.",
    kind='worked example',
)
def alexnet_first_layer(quick: bool, seed: int) -> ClaimResult:
    table = conv_layer_table(
        (3, 227, 227),
        [
            {"type": "conv", "name": "conv1", "out_channels": 96, "kernel_size": 11, "stride": 4},
            {"type": "pool", "name": "pool1", "kernel_size": 3, "stride": 2},
        ],
    )
    conv, pool = nn.Conv2d(3, 96, 11, 4), nn.MaxPool2d(3, 2)
    with torch.no_grad():
        a = conv(torch.zeros(1, 3, 227, 227))
        b = pool(a)
    measured = {
        "conv1_out_formula": list(table[0]["out_shape"]),
        "conv1_out_torch": list(a.shape[1:]),
        "conv1_weights": conv.weight.numel(),
        "conv1_parameters": table[0]["params"],
        "pool1_out_formula": list(table[1]["out_shape"]),
        "pool1_out_torch": list(b.shape[1:]),
        "pool1_parameters": sum(p.numel() for p in pool.parameters()),
        "conv1_size_arithmetic": f"(227 - 11) / 4 + 1 = {conv_output_size(227, 11, 4)}",
        "pool1_size_arithmetic": f"(55 - 3) / 2 + 1 = {conv_output_size(55, 3, 2)}",
    }
    holds = (
        measured["conv1_out_formula"] == measured["conv1_out_torch"] == [96, 55, 55]
        and abs(measured["conv1_weights"] - 35_000) / 35_000 < 0.02
        and measured["pool1_out_formula"] == measured["pool1_out_torch"] == [96, 27, 27]
        and measured["pool1_parameters"] == 0
    )
    fig, ax = new_figure()
    ax.axis("off")
    cells = [[r["layer"], "×".join(map(str, r["out_shape"])), f"{r['params']:,}", r["receptive_field"], r["jump"]]
             for r in table]
    t = ax.table(cellText=cells, colLabels=["layer", "output", "parameters", "receptive field", "stride"], loc="center")
    t.scale(1, 1.6)
    ax.set_title("AlexNet layer 1 and pool 1 on 227×227×3")
    return ClaimResult(
        measured=measured,
        test="output sizes from (W − K + 2P)/S + 1 equal torch's; conv1 has 11·11·3·96 = 34,848 weights "
        "(within 2 % of 35K); the pool has no parameters",
        holds=bool(holds),
        figures=[fig],
    )


@claim(
    "15d",
    title="Max pooling makes features more stable under small input shifts than the conv output",
    topics=("15.2",),
    source='notes 628-629',
    statement='Pooling makes features invariant to small translations: a slight shift of the image does not change the pooled result.',
)
def pooling_shift_stability(quick: bool, seed: int) -> ClaimResult:
    n = 32 if quick else 256
    images, _, _ = make_shapes(n, 32, seed=seed, noise=0.0)
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(16, 3, 3, 3, generator=g)  # a random filter bank: no training needed for the geometry

    def rel_change(a, b):
        return float(((a - b).flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1).clamp_min(1e-12)).mean())

    rows = []
    for shift in (1, 2, 3):
        shifted = torch.roll(images, shift, dims=3)
        fa, fb = F.relu(F.conv2d(images, weight, padding=1)), F.relu(F.conv2d(shifted, weight, padding=1))
        rows.append(
            {
                "shift_px": shift,
                "conv": rel_change(fa, fb),
                "maxpool_2x2": rel_change(F.max_pool2d(fa, 2), F.max_pool2d(fb, 2)),
                "maxpool_4x4": rel_change(F.max_pool2d(fa, 4), F.max_pool2d(fb, 4)),
            }
        )
    # "small" = smaller than the pooling window: only then can a max over the window absorb the shift
    holds = all(r[f"maxpool_{p}x{p}"] < r["conv"] for r in rows for p in (2, 4) if r["shift_px"] < p)
    gain = {f"{r['shift_px']}px_{p}x{p}": 1 - r[f"maxpool_{p}x{p}"] / r["conv"] for r in rows for p in (2, 4)}
    fig, ax = new_figure()
    s = [r["shift_px"] for r in rows]
    for key, style in (("conv", "o-"), ("maxpool_2x2", "s-"), ("maxpool_4x4", "^-")):
        ax.plot(s, [r[key] for r in rows], style, label=key)
    ax.set(xlabel="horizontal shift (pixels)", ylabel="mean relative change ‖f(x) − f(shift x)‖ / ‖f(x)‖",
           title="Feature change under input shifts")
    ax.legend(fontsize=8)
    return ClaimResult(
        measured={"rows": rows, "images": n, "relative_reduction": gain},
        test="mean relative L2 change of ReLU(conv) features (16 random 3×3 filters, synthetic shape images) when "
        "the image shifts by 1–3 px, compared at the same positions: holds if max-pooled features change less than "
        "the conv output for every shift smaller than the pooling window (1 px for 2×2; 1–3 px for 4×4)",
        holds=bool(holds),
        figures=[fig],
        details="The effect is real but modest and local: "
        + ", ".join(f"{k}: {100 * v:.1f} % less change" for k, v in gain.items())
        + ". Once the shift reaches the window size, 2×2 pooling brings almost nothing.",
    )


@claim(
    "15e",
    title="Stacked dilations 1, 2, 4 grow the receptive field exponentially; groups divide the weights by the group count",
    topics=("15.3",),
    source='notes 665-669, 689-693',
    statement='A dilated conv enlarges the receptive field without downsampling (rate r puts r-1 holes between kernel taps); a group conv splits the channels into groups, each with its own kernels.',
    kind='worked example',
)
def dilation_and_groups(quick: bool, seed: int) -> ClaimResult:
    depths = (1, 2, 3, 4)
    dilated = [receptive_field([(3, 1, 2**i) for i in range(d)])["size"] for d in depths]
    plain = [receptive_field([(3, 1, 1)] * d)["size"] for d in depths]
    measured_dilated = [
        _gradient_support(nn.Sequential(*[nn.Conv2d(1, 1, 3, dilation=2**i, bias=False) for i in range(d)]), 64)
        for d in depths
    ]
    c = 64
    groups = (1, 2, 4, 8, 16)
    group_weights = [nn.Conv2d(c, c, 3, groups=g, bias=False).weight.numel() for g in groups]
    holds = (
        dilated == measured_dilated
        and dilated == [2 ** (d + 1) - 1 for d in depths]
        and plain == [2 * d + 1 for d in depths]
        and all(w * g == group_weights[0] for w, g in zip(group_weights, groups))
    )
    fig, (ax1, ax2) = new_figure(ncols=2)
    ax1.plot(depths, dilated, "o-", label="dilations 1, 2, 4, 8")
    ax1.plot(depths, plain, "s--", label="dilation 1")
    ax1.set(xlabel="layers", ylabel="receptive field (px)", title="Receptive field of stacked 3×3 convs")
    ax1.legend(fontsize=8)
    ax2.loglog(groups, group_weights, "o-", base=2)
    ax2.set(xlabel="groups", ylabel="weights", title=f"3×3 conv {c}→{c}: weights vs groups")
    return ClaimResult(
        measured={"layers": list(depths), "rf_dilated": dilated, "rf_dilated_measured": measured_dilated,
                  "rf_plain": plain, "groups": list(groups), "weights_per_groups": group_weights},
        test="receptive field (recurrence and gradient support) with dilations 2^i is 2^(L+1) − 1 (3, 7, 15, 31) vs "
        "2L + 1 without; a 3×3 conv 64→64 with g groups has exactly 1/g of the weights of g = 1",
        holds=bool(holds),
        figures=[fig],
    )
