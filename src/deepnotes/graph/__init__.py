"""Graph neural networks: message passing, GCN, GAT, GraphSAGE, GIN, readouts, sampling."""

from deepnotes.graph import datasets, models  # noqa: F401  (register the datasets and models)
from deepnotes.graph.checks import check_edge_index, check_edge_weight, check_node_features
from deepnotes.graph.gat import GATConv
from deepnotes.graph.gcn import GCNConv
from deepnotes.graph.gin import GINConv
from deepnotes.graph.loops import (
    add_remaining_self_loops,
    add_self_loops,
    gcn_norm,
    remove_self_loops,
)
from deepnotes.graph.message_passing import MessagePassing
from deepnotes.graph.readout import global_add_pool, global_max_pool, global_mean_pool
from deepnotes.graph.sage import LSTMAggregation, SAGEConv
from deepnotes.graph.sampling import SampledSubgraph, neighbor_batches, sample_neighbors
from deepnotes.graph.scatter import degree, scatter, segment_softmax
from deepnotes.graph.simple import GraphNetworkLayer, SimpleGNNLayer

__all__ = [
    "GATConv",
    "GCNConv",
    "GINConv",
    "GraphNetworkLayer",
    "LSTMAggregation",
    "MessagePassing",
    "SAGEConv",
    "SampledSubgraph",
    "SimpleGNNLayer",
    "add_remaining_self_loops",
    "add_self_loops",
    "check_edge_index",
    "check_edge_weight",
    "check_node_features",
    "degree",
    "gcn_norm",
    "global_add_pool",
    "global_max_pool",
    "global_mean_pool",
    "neighbor_batches",
    "remove_self_loops",
    "sample_neighbors",
    "scatter",
    "segment_softmax",
]
