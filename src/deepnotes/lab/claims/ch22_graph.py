"""Chapter 22: graph neural networks — depth and over-smoothing in GCN, GIN vs mean aggregation
on a 1-WL example, GAT's learned weights vs GCN's fixed ones on a graph with noisy edges."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from deepnotes.graph import GATConv, GCNConv, GINConv, gcn_norm, global_add_pool, scatter
from deepnotes.graph.data import Graph, collate_graphs, undirected
from deepnotes.graph.datasets import cycle_graph, sbm_node_data
from deepnotes.graph.fast import FastGraph, fast_forward
from deepnotes.graph.models import GNN
from deepnotes.lab.api import ClaimResult, claim
from deepnotes.viz import new_figure


def _mean_cosine(h: torch.Tensor) -> float:
    """Mean cosine similarity over all pairs of distinct rows."""
    z = F.normalize(h, dim=1)
    n = z.shape[0]
    return float(((z @ z.t()).sum() - n) / (n * (n - 1)))


def _train_deep_gcn(depth: int, x, graph: FastGraph, y, train, test, epochs: int, seed: int):
    torch.manual_seed(seed)
    widths = [x.shape[1]] + [16] * (depth - 1) + [int(y.max()) + 1]
    layers = torch.nn.ModuleList(GCNConv(widths[k], widths[k + 1]) for k in range(depth))
    opt = torch.optim.Adam(layers.parameters(), lr=0.01, weight_decay=5e-4)

    def forward():
        h, states = x, []
        for k, layer in enumerate(layers):
            h = fast_forward(layer, F.relu(h) if k else h, graph)
            states.append(h)
        return states

    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(forward()[-1][train], y[train]).backward()
        opt.step()
    with torch.no_grad():
        states = forward()
    acc = float((states[-1].argmax(1)[test] == y[test]).float().mean())
    hidden = _mean_cosine(F.relu(states[-2])) if depth > 1 else float("nan")
    return acc, hidden


@claim(
    "22a",
    title="Stacking GCN layers spreads features over more hops; many layers over-smooth them",
    topics=("22.1", "22.2"),
    source="notes 1744-1749, 1773",
    statement="A GCN layer transforms the node features (XW), propagates them to the neighbours "
    "through the adjacency matrix and normalizes; stacking layers propagates the features along "
    "the edges several times.",
)
def gcn_depth(quick: bool, seed: int) -> ClaimResult:
    depths = (2, 4, 16) if quick else (1, 2, 4, 8, 16)
    epochs = 60 if quick else 150
    repeats = (seed,) if quick else (seed, seed + 100, seed + 200)
    prop = {d: [] for d in depths}
    acc = {d: [] for d in depths}
    hid = {d: [] for d in depths}
    for r in repeats:
        x, ei, y, (train, _, test) = sbm_node_data(r)
        n = y.numel()
        e, w = gcn_norm(ei, None, n)
        h = x
        for k in range(1, max(depths) + 1):  # pure propagation: (D̂^-1/2 Â D̂^-1/2)^k X
            h = scatter(w.unsqueeze(1) * h[e[0]], e[1], n)
            if k in prop:
                prop[k].append(_mean_cosine(h))
        graph = FastGraph(ei, n)
        for d in depths:
            a, s = _train_deep_gcn(d, x, graph, y, train, test, epochs, r)
            acc[d].append(a)
            hid[d].append(s)
    mp = {d: float(np.mean(v)) for d, v in prop.items()}
    ma = {d: float(np.mean(v)) for d, v in acc.items()}
    deep, shallow = max(depths), [d for d in depths if d < max(depths)]
    best_shallow = max(ma[d] for d in shallow)
    monotone = all(mp[a] < mp[b] for a, b in zip(depths, depths[1:]))
    holds = monotone and mp[2] < 0.3 and mp[16] > 0.9 and best_shallow - ma[deep] > 0.2

    fig, (ax1, ax2) = new_figure(ncols=2)
    ax1.plot(depths, [mp[d] for d in depths], "o-", label="propagation only, Â^L X")
    ax1.plot([d for d in depths if d > 1], [float(np.nanmean(hid[d])) for d in depths if d > 1], "s--",
             label="trained GCN, last hidden layer")
    ax1.set(xscale="log", xlabel="number of layers L", ylabel="mean pairwise cosine similarity",
            title="Node features grow alike", ylim=(0, 1.05), xticks=list(depths), xticklabels=list(map(str, depths)))
    ax1.minorticks_off()
    ax1.legend(fontsize=8)
    ax2.plot(depths, [ma[d] for d in depths], "o-", color="C2")
    ax2.axhline(1 / 3, color="k", ls=":", lw=0.8, label="chance (3 blocks)")
    ax2.set(xscale="log", xlabel="number of layers L", ylabel="test accuracy",
            title="GCN on a 3-block SBM", ylim=(0, 1), xticks=list(depths), xticklabels=list(map(str, depths)))
    ax2.minorticks_off()
    ax2.legend(fontsize=8)
    measured = {"depths": list(depths), "propagation_cosine": mp, "test_accuracy": ma,
                "hidden_cosine": {d: float(np.mean(v)) for d, v in hid.items() if d > 1}, "repeats": len(repeats)}
    test = (
        f"3-block SBM (300 nodes, p_in 0.05, p_out 0.005, weakly informative features), mean over "
        f"{len(repeats)} graph(s). Propagation: the mean pairwise cosine similarity of (D̂^-1/2 Â D̂^-1/2)^L X "
        "must rise strictly with L, from < 0.3 at L = 2 to > 0.9 at L = 16 (features spread until "
        "they coincide). Trained GCNs (Adam 0.01, no residuals): the deepest network's test "
        "accuracy must be more than 0.2 below the best shallower one (the chance level is 0.33, "
        "so 0.2 is far beyond the sampling error of ~0.04 on 230 test nodes)."
    )
    peak = max(ma, key=ma.get)
    obs = (f"Accuracy peaks at {peak} layers ({ma[peak]:.2f}) and falls to {ma[deep]:.2f} at {deep}: "
           "a few propagations help (more neighbours vote), many average the blocks together. "
           "The notes do not mention this over-smoothing.")
    return ClaimResult(measured, test, holds, [fig], observation=obs)


def _regular_pairs():
    """Pairs of regular graphs with equal node counts and different degrees (1-WL tells them apart)."""
    def cube():
        ids = torch.arange(8)
        pairs = [(int(i), int(i ^ (1 << b))) for i in ids for b in range(3) if i < i ^ (1 << b)]
        return undirected(torch.tensor(pairs).t())

    def k33():
        a, b = torch.meshgrid(torch.arange(3), torch.arange(3, 6), indexing="ij")
        return undirected(torch.stack([a.reshape(-1), b.reshape(-1)]))

    def complete(n):
        u, v = torch.triu_indices(n, n, 1)
        return undirected(torch.stack([u, v]))

    def petersen():
        outer = [(i, (i + 1) % 5) for i in range(5)]
        inner = [(5 + i, 5 + (i + 2) % 5) for i in range(5)]
        spokes = [(i, i + 5) for i in range(5)]
        return undirected(torch.tensor(outer + inner + spokes).t())

    return [("C4 vs K4", cycle_graph(4), complete(4), 4), ("C6 vs K3,3", cycle_graph(6), k33(), 6),
            ("C8 vs cube", cycle_graph(8), cube(), 8), ("C10 vs Petersen", cycle_graph(10), petersen(), 10)]


def _wl_histograms(edge_sets, n_nodes, rounds: int = 3) -> list[torch.Tensor]:
    """1-WL colour refinement run jointly on several graphs; returns each graph's colour histogram."""
    graph = collate_graphs([Graph(torch.ones(n, 1), e) for e, n in zip(edge_sets, n_nodes)])
    colour = torch.zeros(graph.num_nodes, dtype=torch.long)
    for _ in range(rounds):
        k = int(colour.max()) + 1
        counts = scatter(F.one_hot(colour[graph.edge_index[0]], k).double(), graph.edge_index[1], graph.num_nodes)
        colour = torch.unique(torch.cat([colour.unsqueeze(1).double(), counts], 1), dim=0, return_inverse=True)[1]
    k = int(colour.max()) + 1
    return [torch.bincount(colour[graph.batch == b], minlength=k) for b in range(len(edge_sets))]


@torch.no_grad()
def _embedding_gap(make_layers, e1, e2, n) -> float:
    """|readout(G1) − readout(G2)|_max for a stack of layers on constant features."""
    outs = []
    for e in (e1, e2):
        h = torch.ones(n, 1, dtype=torch.float64)
        for layer in make_layers:
            h = torch.relu(layer(h, e))
        outs.append(global_add_pool(h))
    return float((outs[0] - outs[1]).abs().max())


@claim(
    "22b",
    title="GIN's sum aggregation separates graphs that GCN's normalized mean cannot (1-WL example)",
    topics=("22.2",),
    source="notes 1734, 1740",
    statement="GCN aggregates the neighbours' features with a learnable weight matrix; GIN combines, "
    "with learnable parameters, a node's own previous features with its neighbours' — and so can "
    "tell apart graphs that GCN's aggregation maps to the same representation.",
    kind="worked example",
)
def gin_vs_gcn(quick: bool, seed: int) -> ClaimResult:
    inits = 3 if quick else 10
    rows = []
    for name, e1, e2, n in _regular_pairs():
        wl = _wl_histograms([e1, e2], [n, n])
        gaps = {"GCN": [], "GIN (mean)": [], "GIN (sum)": []}
        for k in range(inits):
            torch.manual_seed(1000 * seed + k)
            gcn = [GCNConv(1, 8).double(), GCNConv(8, 8).double()]
            mlp = [torch.nn.Sequential(torch.nn.Linear(a, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8)).double()
                   for a in (1, 8)]
            gin_sum = [GINConv(m, train_eps=True) for m in mlp]
            gin_mean = [GINConv(m, train_eps=True, aggr="mean") for m in mlp]
            gaps["GCN"].append(_embedding_gap(gcn, e1, e2, n))
            gaps["GIN (mean)"].append(_embedding_gap(gin_mean, e1, e2, n))
            gaps["GIN (sum)"].append(_embedding_gap(gin_sum, e1, e2, n))
        rows.append((name, not torch.equal(wl[0], wl[1]), {k: (min(v), max(v)) for k, v in gaps.items()}))
    holds = all(wl and g["GCN"][1] < 1e-9 and g["GIN (sum)"][0] > 1e-3 for _, wl, g in rows)

    fig, ax = new_figure(width=7)
    xs = np.arange(len(rows))
    for k, (label, color) in enumerate((("GCN", "C0"), ("GIN (mean)", "C1"), ("GIN (sum)", "C2"))):
        vals = [max(g[label][0], 1e-17) for _, _, g in rows]
        ax.bar(xs + (k - 1) * 0.27, np.log10(vals), 0.27, label=label, color=color)
    ax.axhline(np.log10(1e-9), color="k", ls=":", lw=0.8, label="1e-9 (float64 round-off)")
    ax.set(xticks=xs, xticklabels=[r[0] for r in rows], ylabel="log10 smallest readout gap",
           title="Two-layer GNNs on constant features, sum readout")
    ax.set_ylim(-18, 1)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4)
    measured = {name: {"wl_distinguishes": wl, **{k: list(v) for k, v in g.items()}} for name, wl, g in rows}
    test = (
        f"Four pairs of regular graphs with equal node counts but different degrees (1-WL colour "
        f"refinement must give different colour histograms). Constant node features, two layers, "
        f"sum readout, {inits} random initializations per pair: GCN's largest readout difference must "
        "be < 1e-9 (identical up to round-off) for every pair, GIN's smallest > 1e-3."
    )
    obs = ("On a d-regular graph every row of D̂^-1/2 Â D̂^-1/2 sums to 1, so GCN sees a constant "
           "signal as the same constant whatever d is. GIN with the neighbour *mean* — the wording "
           "of notes 1740 — fails exactly like GCN; it is the sum (Xu et al.) that counts the "
           "neighbours and separates the pairs.")
    return ClaimResult(measured, test, holds, [fig], observation=obs)


def _share_same_class(edges, weights, y, n) -> float:
    """Mean over nodes of the fraction of incoming (non-loop) weight on same-class neighbours."""
    keep = edges[0] != edges[1]
    e, w = edges[:, keep], weights[keep]
    same = (y[e[0]] == y[e[1]]).double()
    num, den = scatter(w * same, e[1], n), scatter(w, e[1], n)
    has = den > 0
    return float((num[has] / den[has]).mean())


@claim(
    "22c",
    title="GAT's learned attention differs from GCN's fixed, degree-based weights on a noisy graph",
    topics=("22.2",),
    source="notes 1734, 1736",
    statement="GCN aggregates neighbours with a shared parameter matrix (its edge weights are fixed "
    "by the degrees), while GAT computes attention weights for every node's neighbours.",
)
def gat_vs_gcn(quick: bool, seed: int) -> ClaimResult:
    repeats = (seed, seed + 100) if quick else tuple(seed + 100 * k for k in range(4))
    epochs = 100 if quick else 150
    tv, share_gat, share_gcn, acc = [], [], [], {"GAT": [], "GCN": []}
    for r in repeats:
        x, ei, y, (train, _, test) = sbm_node_data(r, sizes=(100, 100), p_in=0.05, p_out=0.03,
                                                    feature_signal=1.0, per_class=20)
        n, g = y.numel(), Graph(x, ei)
        for conv in ("GAT", "GCN"):
            torch.manual_seed(r)
            model = GNN(conv.lower(), 16, 16, 2, 2, 0.0, heads=4)
            opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
            for _ in range(epochs):
                opt.zero_grad()
                F.cross_entropy(model(g)[train], y[train]).backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                acc[conv].append(float((model(g).argmax(1)[test] == y[test]).float().mean()))
                if conv == "GAT":
                    first: GATConv = model.layers[0]
                    edges, alpha = first(x, ei, return_attention_weights=True)[1]
        e_gcn, w = gcn_norm(ei, None, n, dtype=torch.float64)
        if not torch.equal(e_gcn, edges):  # both replace the loops and append them: same order
            raise RuntimeError("GAT and GCN edge lists differ; the weights cannot be compared edge by edge")
        w_rows = w / scatter(w, e_gcn[1], n)[e_gcn[1]]  # GCN's weights as a distribution per node
        alpha = alpha.double()
        tv.append(float((0.5 * scatter((alpha - w_rows.unsqueeze(1)).abs(), edges[1], n)).mean()))
        share_gat.append(_share_same_class(edges, alpha.mean(1), y, n))
        share_gcn.append(_share_same_class(edges, w_rows, y, n))
    mean_tv = float(np.mean(tv))
    holds = mean_tv > 0.1
    gain = np.array(share_gat) - np.array(share_gcn)

    fig, (ax1, ax2) = new_figure(ncols=2)
    ax1.bar(range(len(tv)), tv, color="C1")
    ax1.axhline(0.1, color="k", ls=":", lw=0.8, label="threshold 0.1")
    ax1.set(xlabel="repeat (graph)", ylabel="mean total-variation distance", title="GAT attention vs GCN weights",
            xticks=range(len(tv)))
    ax1.legend(fontsize=8)
    xs = np.arange(len(repeats))
    ax2.bar(xs - 0.2, share_gcn, 0.4, label="GCN (fixed)")
    ax2.bar(xs + 0.2, share_gat, 0.4, label="GAT (learned, heads averaged)")
    ax2.set(xlabel="repeat (graph)", ylabel="weight share on same-class neighbours", ylim=(0, 1), xticks=xs,
            title="Where the weight goes")
    ax2.legend(fontsize=8)
    measured = {"tv_distance": tv, "mean_tv_distance": mean_tv, "same_class_share_gat": share_gat,
                "same_class_share_gcn": share_gcn, "test_accuracy": acc}
    test = (
        f"2-block SBM (200 nodes, p_in 0.05, p_out 0.03: about 38% of the edges join different "
        f"blocks), {len(repeats)} graphs. Two-layer GAT (4 heads) and GCN trained alike. For each "
        "node, GCN's weights over its incoming edges (loop included) are normalized to a "
        "distribution; the claim holds if the first GAT layer's attention is on average more than "
        "0.1 away from it in total-variation distance (0 would mean GAT reproduces GCN's weights)."
    )
    obs = (
        f"The learned weights differ from GCN's, but they do not move onto the clean edges: the "
        f"same-class share changes by {gain.mean():+.3f} ± {gain.std(ddof=1) if len(gain) > 1 else 0:.3f} "
        f"(GCN {np.mean(share_gcn):.3f}). GAT's score a_srcᵀWx_j + a_dstᵀWx_i ranks the neighbours "
        "the same way for every target ('static' attention, Brody et al. 2022), so one head cannot "
        f"prefer same-class neighbours for both blocks. Test accuracy GAT {np.mean(acc['GAT']):.2f}, "
        f"GCN {np.mean(acc['GCN']):.2f}."
    )
    return ClaimResult(measured, test, holds, [fig], observation=obs)
