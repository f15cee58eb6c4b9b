"""Graph data that needs no download: Zachary's karate club, stochastic block models, synthetic
graph families (cycles / trees / grids), and the edge splits of link prediction.

Generators are vectorized and take a ``torch.Generator``; the registered factories take ``seed``
and return :class:`~deepnotes.data.DataSplits` whose items are :class:`~deepnotes.graph.data.Graph`
objects (``task`` ``"node"``, ``"graph"`` or ``"link"``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from deepnotes.core.checks import check_float, check_int
from deepnotes.core.registry import DATASETS
from deepnotes.core.seeding import make_generator
from deepnotes.data.splits import DataSplits, split_dataset
from deepnotes.graph.data import Graph, undirected
from deepnotes.graph.link import split_edges

# Zachary (1977): 34 members, 78 friendships, and the club each member joined after the split
# (0: the instructor's, "Mr. Hi"; 1: the administrator's, "Officer") — the edge list and labels
# of networkx.karate_club_graph(), stored here so no package or download is needed.
_KARATE_EDGES = (
    "0-1 0-2 0-3 0-4 0-5 0-6 0-7 0-8 0-10 0-11 0-12 0-13 0-17 0-19 0-21 0-31 1-2 1-3 1-7 1-13 1-17 "
    "1-19 1-21 1-30 2-3 2-7 2-8 2-9 2-13 2-27 2-28 2-32 3-7 3-12 3-13 4-6 4-10 5-6 5-10 5-16 6-16 "
    "8-30 8-32 8-33 9-33 13-33 14-32 14-33 15-32 15-33 18-32 18-33 19-33 20-32 20-33 22-32 22-33 "
    "23-25 23-27 23-29 23-32 23-33 24-25 24-27 24-31 25-31 26-29 26-33 27-33 28-31 28-33 29-32 "
    "29-33 30-32 30-33 31-32 31-33 32-33"
)
_KARATE_CLUB = "0000000001000011001010111111111111"


class GraphList(Dataset):
    """A list of :class:`Graph` items as a ``Dataset``."""

    def __init__(self, graphs: list[Graph]):
        self.graphs = list(graphs)

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int) -> Graph:
        return self.graphs[i]


def karate_club_edges() -> Tensor:
    """The 78 undirected friendships as ``(2, 78)`` pairs ``u < v``."""
    pairs = [tuple(map(int, p.split("-"))) for p in _KARATE_EDGES.split()]
    return torch.tensor(pairs).t().contiguous()


def karate_club_labels() -> Tensor:
    return torch.tensor([int(c) for c in _KARATE_CLUB])


def stochastic_block_model(
    sizes: list[int], p_in: float, p_out: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Undirected SBM: nodes of the same block are joined with probability ``p_in``, others with
    ``p_out``. Returns ``(edge_index (2, 2M) both directions, block (N))``."""
    for i, s in enumerate(sizes):
        check_int(f"sizes[{i}]", s, min=1)
    p_in, p_out = check_float("p_in", p_in, min=0, max=1), check_float("p_out", p_out, min=0, max=1)
    block = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    u, v = torch.triu_indices(len(block), len(block), offset=1)
    p = torch.where(block[u] == block[v], p_in, p_out)
    keep = torch.rand(p.shape, generator=generator) < p
    return undirected(torch.stack([u[keep], v[keep]])), block


def _node_splits(y: Tensor, per_class: int, n_val: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Boolean masks: ``per_class`` training nodes of every class, ``n_val`` validation nodes, the rest test."""
    n = y.numel()
    perm = torch.randperm(n, generator=g)
    train = torch.zeros(n, dtype=torch.bool)
    for c in torch.unique(y).tolist():  # a loop over classes, not nodes
        members = perm[y[perm] == c]
        train[members[:per_class]] = True
    rest = perm[~train[perm]]
    val = torch.zeros(n, dtype=torch.bool)
    val[rest[:n_val]] = True
    return train, val, ~(train | val)


def _node_data(x: Tensor, edge_index: Tensor, y: Tensor, masks, num_classes: int) -> DataSplits:
    parts = [GraphList([Graph(x, edge_index, y=y, mask=m)]) for m in masks]
    return DataSplits(*parts, in_shape=(x.shape[1],), num_classes=num_classes, task="node")


@DATASETS.register("karate", task="node", description="Zachary's karate club, 34 nodes, 78 edges, 2 clubs (bundled)")
def karate(seed: int = 0) -> DataSplits:
    """The karate club as node classification: one-hot node ids as features (34), 2 classes;
    4 training nodes per class and 8 validation nodes drawn with ``seed``, 18 test nodes."""
    edges, y = undirected(karate_club_edges()), karate_club_labels()
    masks = _node_splits(y, 4, 8, make_generator(seed))
    return _node_data(torch.eye(34), edges, y, masks, 2)


def sbm_node_data(
    seed: int = 0, sizes: tuple[int, ...] = (100, 100, 100), p_in: float = 0.05, p_out: float = 0.005,
    num_features: int = 16, feature_signal: float = 0.5, per_class: int = 10, n_val: int = 60,
) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor, Tensor]]:
    """An SBM whose node features are weakly informative: ``x = signal · μ_block + N(0, I)`` with
    random unit class means ``μ``, so that the graph carries most of the label information."""
    g = make_generator(seed)
    edge_index, y = stochastic_block_model(list(sizes), p_in, p_out, g)
    means = torch.nn.functional.normalize(torch.randn(len(sizes), num_features, generator=g), dim=1)
    x = feature_signal * means[y] + torch.randn(len(y), num_features, generator=g)
    return x, edge_index, y, _node_splits(y, per_class, n_val, g)


@DATASETS.register("sbm", task="node", description="3-block stochastic block model, 300 nodes, 16 noisy features")
def sbm(seed: int = 0) -> DataSplits:
    """Three blocks of 100 nodes (p_in 0.05, p_out 0.005), 16 weakly informative features,
    10 training nodes per block, 60 validation nodes."""
    x, edge_index, y, masks = sbm_node_data(seed)
    return _node_data(x, edge_index, y, masks, 3)


def cycle_graph(n: int) -> Tensor:
    i = torch.arange(n)
    return undirected(torch.stack([i, (i + 1) % n]))


def random_tree(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Node ``k ≥ 1`` attaches to a uniformly chosen earlier node (a random recursive tree)."""
    k = torch.arange(1, n)
    parent = (torch.rand(n - 1, generator=generator) * k).long()
    return undirected(torch.stack([parent, k]))


def grid_graph(rows: int, cols: int) -> Tensor:
    ids = torch.arange(rows * cols).view(rows, cols)
    right = torch.stack([ids[:, :-1].reshape(-1), ids[:, 1:].reshape(-1)])
    down = torch.stack([ids[:-1, :].reshape(-1), ids[1:, :].reshape(-1)])
    return undirected(torch.cat([right, down], dim=1))


FAMILIES = ("cycle", "tree", "grid")


def graph_families(n_graphs: int = 300, generator: torch.Generator | None = None) -> list[Graph]:
    """``n_graphs`` graphs, a third each of cycles (6–16 nodes), random trees (6–16 nodes) and
    grids (2–4 × 3–5); every node's feature is the constant 1, so only structure tells them apart.
    The label is the family index."""
    out = []
    sizes = torch.randint(6, 17, (n_graphs,), generator=generator).tolist()
    shapes = torch.randint(0, 3, (n_graphs, 2), generator=generator).tolist()
    for k in range(n_graphs):  # one small graph per item
        family = k % 3
        if family == 0:
            edges, n = cycle_graph(sizes[k]), sizes[k]
        elif family == 1:
            edges, n = random_tree(sizes[k], generator), sizes[k]
        else:
            r, c = shapes[k][0] + 2, shapes[k][1] + 3
            edges, n = grid_graph(r, c), r * c
        out.append(Graph(torch.ones(n, 1), edges, y=torch.tensor(family)))
    return out


@DATASETS.register("graph-families", task="graph", description="300 cycles / random trees / grids, 3 classes")
def graph_families_data(seed: int = 0, n_graphs: int = 300) -> DataSplits:
    train, val, test = split_dataset(GraphList(graph_families(n_graphs, make_generator(seed))), seed=seed)
    return DataSplits(train, val, test, in_shape=(1,), num_classes=3, task="graph")


def _link_data(graph: Graph, seed: int, embedding: int) -> DataSplits:
    parts = split_edges(graph, 0.1, 0.1, make_generator(seed))
    return DataSplits(*(GraphList([p]) for p in parts), in_shape=(graph.x.shape[1],), num_classes=embedding,
                      task="link")


@DATASETS.register("karate-link", task="link", description="karate club edges: 10% val / 10% test held out")
def karate_link(seed: int = 0) -> DataSplits:
    """Link prediction on the karate club (``num_classes`` is the embedding size, 16)."""
    return _link_data(karate(seed).train[0], seed, 16)


@DATASETS.register("sbm-link", task="link", description="3-block SBM (p_in 0.1), 10% val / 10% test edges held out")
def sbm_link(seed: int = 0) -> DataSplits:
    """Link prediction on a 3-block SBM of 300 nodes (p_in 0.1, p_out 0.005, feature signal 1);
    ``num_classes`` is the embedding size, 16."""
    x, edge_index, _, _ = sbm_node_data(seed, p_in=0.1, feature_signal=1.0)
    return _link_data(Graph(x, edge_index), seed, 16)
