"""Pins the project's edge direction: ``edge_index[0]`` is the source j, ``edge_index[1]`` the
target i, messages flow ``j -> i``. On the directed graph ``0 -> 1`` node 1 hears node 0 and
node 0 hears nobody, for every layer and both attention paths."""

from __future__ import annotations

import pytest
import torch

from graphrl.graphs import EntityGraph
from graphrl.nn import AttentionLayer, GCNLayer, GNNLayer, RGCNLayer

D = 4
EDGE_INDEX = torch.tensor([[0], [1]])  # the single edge 0 -> 1

LAYERS = {
    "gnn": lambda: GNNLayer(D, D),
    "gnn_mean": lambda: GNNLayer(D, D, aggr="mean"),
    "gcn_mean": lambda: GCNLayer(D, D),
    "gcn_symmetric": lambda: GCNLayer(D, D, norm="symmetric"),
    "rgcn": lambda: RGCNLayer(D, D, num_relations=1),
    "rgcn_relation_1_of_2": lambda: RGCNLayer(D, D, num_relations=2),
    "attention_dense": lambda: AttentionLayer(D, heads=2, path="dense"),
    "attention_sparse": lambda: AttentionLayer(D, heads=2, path="sparse"),
}


def directed_pair(x: torch.Tensor) -> EntityGraph:
    """One graph of two nodes with the edge ``0 -> 1`` as an edge list and as ``adj[i, j]``."""
    return EntityGraph(
        x=x,
        pos=torch.zeros(2, 2),
        mask=torch.ones(1, 2, dtype=torch.bool),
        num_graphs=1,
        edge_type=torch.tensor([1]),
        num_relations=2,
        topology="directed_pair",
        dense_adj=torch.tensor([[False, False], [True, False]]),  # adj[1, 0]: edge 0 -> 1
        _edge_index=EDGE_INDEX,
    )


@pytest.mark.parametrize("name", list(LAYERS))
def test_messages_flow_from_edge_index_0_to_edge_index_1(name: str) -> None:
    layer = LAYERS[name]()
    x = torch.randn(2, D, requires_grad=True)
    graph = directed_pair(x)
    if isinstance(layer, RGCNLayer) and layer.num_relations == 1:
        graph.edge_type, graph.num_relations = None, 1
    out = layer.forward_graph(graph, x)

    probe = torch.randn(D)  # not a plain sum: a layer-normed row always sums to the same value
    (grad_1,) = torch.autograd.grad(out[1] @ probe, x, retain_graph=True)
    (grad_0,) = torch.autograd.grad(out[0] @ probe, x)
    assert grad_1[0].abs().sum() > 0, "the target must depend on the source"
    assert torch.all(grad_0[1] == 0), "the source must not depend on the target"
