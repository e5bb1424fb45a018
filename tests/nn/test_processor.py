"""The processor: K layers of one type from config, on every topology they are meant for."""

from __future__ import annotations

import pytest
import torch

from graphrl.graphs import build_topology
from graphrl.nn import LAYERS, Processor, ProcessorConfig

D = 8


@pytest.mark.parametrize(
    ("layer", "topology", "kwargs"),
    [
        ("gnn", "grid8", {}),
        ("gcn", "grid4", {}),
        ("rgcn", "relative", {"kernel_size": 3}),
        ("attention", "complete", {}),
        ("attention", "criss_cross", {}),
    ],
)
def test_shapes_and_gradients_on_a_masked_grid(grid_graph, layer, topology, kwargs) -> None:
    mask = torch.rand(2, 3, 4) > 0.3
    graph = build_topology(topology, **kwargs)(grid_graph(torch.randn(2, 3, 4, D), mask))
    processor = Processor(
        ProcessorConfig(layer=layer, num_layers=3, heads=2), D, num_relations=graph.num_relations
    )
    x = processor(graph)
    assert x.shape == (24, D) and torch.isfinite(x).all()
    x[graph.node_mask].sum().backward()
    assert all(p.grad is not None for p in processor.parameters() if p.requires_grad)


def test_shared_weights_apply_one_layer_k_times(set_graph) -> None:
    processor = Processor(ProcessorConfig(layer="gnn", num_layers=3, shared_weights=True), D)
    assert len({id(layer) for layer in processor.layers}) == 1
    separate = Processor(ProcessorConfig(layer="gnn", num_layers=3), D)
    assert sum(p.numel() for p in separate.parameters()) > sum(
        p.numel() for p in processor.parameters()
    )


def test_no_layers_is_the_identity(set_graph) -> None:
    graph = build_topology("complete")(set_graph(torch.randn(2, 3, D)))
    torch.testing.assert_close(Processor(ProcessorConfig(num_layers=0), D)(graph), graph.x)


def test_residual_and_norm_wrap_non_attention_layers(set_graph) -> None:
    """``x' = LN(x + relu(layer(x)))``, one step of the processor written out."""
    graph = build_topology("knn", k=2)(set_graph(torch.randn(2, 5, D)))
    processor = Processor(ProcessorConfig(layer="gcn", num_layers=1), D)
    layer, norm = processor.layers[0], processor.norms[0]
    expected = norm(graph.x + torch.relu(layer(graph.x, graph.edge_index)))
    torch.testing.assert_close(processor(graph), expected)


def test_attention_weights_of_every_layer(set_graph) -> None:
    graph = build_topology("complete")(set_graph(torch.randn(2, 5, D)))
    x, maps = Processor(ProcessorConfig(num_layers=2, heads=2), D)(
        graph, return_attention_weights=True
    )
    assert x.shape == (10, D) and [m.shape for m in maps] == [(2, 2, 5, 5)] * 2


def test_bad_config_is_rejected(set_graph) -> None:
    with pytest.raises(ValueError, match="unknown layer 'gat'; choose one of: attention, gcn"):
        Processor(ProcessorConfig(layer="gat"), D)
    assert LAYERS.names() == ["attention", "gcn", "gnn", "rgcn"]
    with pytest.raises(ValueError, match="unknown edge_features 'angle'"):
        Processor(ProcessorConfig(edge_features="angle"), D)
    # layers without edge inputs ignore edge features: a config swaps its layer with one flag
    swapped = Processor(ProcessorConfig(layer="gcn", edge_features="offset", edge_values=True), D)
    assert swapped.edge_features == "none"
    with pytest.raises(ValueError, match="num_layers must be >= 0"):
        Processor(ProcessorConfig(num_layers=-1), D)
    graph = build_topology("complete")(set_graph(torch.randn(1, 3, D)))
    with pytest.raises(ValueError, match="layer 'gnn' returns no attention weights"):
        Processor(ProcessorConfig(layer="gnn"), D)(graph, return_attention_weights=True)
    with pytest.raises(ValueError, match="has 9 relations but the topology gives no edge_type"):
        Processor(ProcessorConfig(layer="rgcn"), D, num_relations=9)(graph)


@pytest.mark.parametrize("layer", ["attention", "gnn"])
def test_dropout_reaches_every_layer_kind(set_graph, layer) -> None:
    """``processor.dropout`` acts in training (two calls differ) and not in eval, also for
    layers that hold their own residual branch (attention applies it inside)."""
    graph = build_topology("complete")(set_graph(torch.randn(2, 5, D)))
    processor = Processor(ProcessorConfig(layer=layer, num_layers=2, heads=2, dropout=0.5), D)
    processor.train()
    assert not torch.allclose(processor(graph), processor(graph))
    processor.eval()
    torch.testing.assert_close(processor(graph), processor(graph))
    if layer == "attention":
        assert all(lyr.dropout == 0.5 for lyr in processor.layers)
