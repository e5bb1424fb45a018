"""Batching: every graph of a (masked, variable-size) batch comes out as if it ran alone."""

from __future__ import annotations

import pytest
import torch

from graphrl.graphs import ObjectEncoder, VectorEncoder, build_topology
from graphrl.nn import (
    AttentionLayer,
    GCNLayer,
    GNNLayer,
    Processor,
    ProcessorConfig,
    RGCNLayer,
    build_readout,
)

D, B = 8, 4

# (layer, topology, topology kwargs): each layer on a topology it is meant for.
CASES = {
    "gnn_grid4": (lambda: GNNLayer(D, D, edge_dim=2), "grid4", {}),
    "gcn_mean_grid8": (lambda: GCNLayer(D, D), "grid8", {}),
    "gcn_symmetric_criss_cross": (lambda: GCNLayer(D, D, norm="symmetric"), "criss_cross", {}),
    "rgcn_relative": (lambda: RGCNLayer(D, D, num_relations=9), "relative", {"kernel_size": 3}),
    "attention_dense_complete": (lambda: AttentionLayer(D, 2, path="dense"), "complete", {}),
    "attention_sparse_complete": (lambda: AttentionLayer(D, 2, path="sparse"), "complete", {}),
    "attention_dense_grid4": (lambda: AttentionLayer(D, 2, edge_dim=2, path="dense"), "grid4", {}),
    "attention_sparse_knn": (lambda: AttentionLayer(D, 2, path="sparse"), "knn", {"k": 3}),
}


def object_batch() -> tuple[ObjectEncoder, torch.Tensor]:
    """Grid observations whose non-floor cells are the entities: 0 to 20 per graph."""
    encoder = ObjectEncoder(symbol_counts=(4, 3), out_channels=D)
    obs = torch.stack([torch.randint(0, 4, (B, 4, 5)), torch.randint(0, 3, (B, 4, 5))], dim=-1)
    obs[0, ..., 0] = torch.randint(1, 4, (4, 5))  # all entities
    obs[1, ..., 0] = 0
    obs[1, 2, 3, 0] = 2  # a single entity
    return encoder, obs


@pytest.mark.parametrize("case", list(CASES))
def test_each_graph_of_a_batch_comes_out_as_if_alone(case: str) -> None:
    make_layer, topology_name, kwargs = CASES[case]
    layer, topology = make_layer().eval(), build_topology(topology_name, **kwargs)
    encoder, obs = object_batch()
    edge_features = "offset" if getattr(layer, "edge_dim", 0) else "none"
    if getattr(layer, "edge_bias", None) is not None:  # zero at init: make edge features count
        torch.nn.init.normal_(layer.edge_bias.weight)

    def run(observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        graph = topology(encoder(observations))
        if isinstance(layer, AttentionLayer):
            out = layer.forward_graph(
                graph, graph.x, graph.edge_attr(edge_features), edge_features=edge_features
            )
        else:
            out = layer.forward_graph(graph, graph.x, graph.edge_attr(edge_features))
        return graph.dense_x(out), graph.mask

    batched, mask = run(obs)
    assert mask.sum(1).unique().numel() > 2  # variable sizes, some masked
    for b in range(B):
        alone, mask_b = run(obs[b : b + 1])
        real = mask_b[0]
        torch.testing.assert_close(batched[b][real], alone[0][real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("readout", ["max", "mean", "sum", "attention"])
@pytest.mark.parametrize("layer", ["gnn", "gcn", "rgcn", "attention"])
def test_processor_and_readout_batch_like_single_graphs(layer: str, readout: str) -> None:
    encoder = VectorEncoder(3, D)
    obs, mask = torch.randn(B, 6, 3), torch.rand(B, 6) > 0.3
    mask[:, 0] = True
    mask[2, 1:] = False  # a graph with one entity
    topology = build_topology("knn", k=2)
    processor = Processor(ProcessorConfig(layer=layer, num_layers=2, heads=2), D).eval()
    pool = build_readout(readout, D)

    graph = topology(encoder(obs, mask=mask))
    batched = pool(graph, processor(graph))
    for b in range(B):
        alone = topology(encoder(obs[b : b + 1], mask=mask[b : b + 1]))
        torch.testing.assert_close(
            batched[b : b + 1], pool(alone, processor(alone)), atol=1e-5, rtol=1e-5
        )
