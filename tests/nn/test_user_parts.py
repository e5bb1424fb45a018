"""Parts a user writes in their own module: a layer that declares what it takes, plugged in by
registered name or by class path, and a topology by class path; unknown names say both forms."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from graphrl.graphs import TOPOLOGIES, build_topology
from graphrl.graphs.topologies import Topology
from graphrl.models.backbones import GraphBackbone
from graphrl.nn import LAYERS, Processor, ProcessorConfig
from graphrl.nn.base import GraphLayerMixin


class EdgeGateLayer(GraphLayerMixin, MessagePassing):
    """Mean of neighbours, each message scaled by a learned gate of its edge features."""

    uses_edge_attr = True
    seen_edge_attr: ClassVar[list[Tensor | None]] = []

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int = 0) -> None:
        super().__init__(aggr="mean")
        self.edge_dim = edge_dim
        self.lin = nn.Linear(in_channels, out_channels)
        self.gate = nn.Linear(edge_dim, 1) if edge_dim else None

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        EdgeGateLayer.seen_edge_attr.append(edge_attr)
        return self.propagate(edge_index, x=self.lin(x), edge_attr=edge_attr)

    def message(self, x_j: Tensor, edge_attr: Tensor | None) -> Tensor:
        if self.gate is None or edge_attr is None:
            return x_j
        return torch.sigmoid(self.gate(edge_attr)) * x_j


class Ring(Topology):
    """Entity ``i`` receives from ``i - 1`` and ``i + 1`` (mod N): a user's topology."""

    name = "ring"

    def __init__(self, hops: int = 1) -> None:
        super().__init__()
        self.hops = hops

    def template(self, n: int, grid_shape: tuple[int, int] | None) -> tuple[Tensor, None]:
        dst = torch.arange(n).repeat(2 * self.hops)
        shifts = torch.cat([torch.arange(1, self.hops + 1), -torch.arange(1, self.hops + 1)])
        src = (dst + shifts.repeat_interleave(n)) % n
        return torch.stack([src, dst]), None


@pytest.fixture
def registered_layer():
    LAYERS.register("edge_gate")(EdgeGateLayer)
    yield "edge_gate"
    del LAYERS._entries["edge_gate"]


def test_a_registered_user_layer_gets_what_it_declares(registered_layer, set_graph) -> None:
    graph = build_topology("complete")(set_graph(torch.randn(2, 5, 8)))
    EdgeGateLayer.seen_edge_attr.clear()
    config = ProcessorConfig(layer=registered_layer, num_layers=2, edge_features="distance")
    processor = Processor(config, channels=8)
    assert all(isinstance(layer, EdgeGateLayer) for layer in processor.layers)
    assert processor.layers[0].edge_dim == 1 and not processor.returns_attention
    out = processor(graph)
    assert out.shape == (10, 8)
    (attr, _) = EdgeGateLayer.seen_edge_attr
    assert attr.shape == (graph.edge_index.shape[1], 1)  # distance: one feature per edge
    out.sum().backward()
    assert processor.layers[0].gate.weight.grad.abs().sum() > 0  # the edge input is used
    with pytest.raises(ValueError, match="'edge_gate' returns no attention weights"):
        processor(graph, return_attention_weights=True)


def test_a_layer_that_declares_no_edge_input_gets_none(set_graph) -> None:
    class NoEdges(EdgeGateLayer):
        uses_edge_attr = False

    LAYERS.register("no_edges")(NoEdges)
    try:
        EdgeGateLayer.seen_edge_attr.clear()
        config = ProcessorConfig(layer="no_edges", num_layers=1, edge_features="distance")
        processor = Processor(config, channels=4)
        processor(build_topology("complete")(set_graph(torch.randn(1, 3, 4))))
        assert processor.layers[0].edge_dim == 0 and EdgeGateLayer.seen_edge_attr == [None]
    finally:
        del LAYERS._entries["no_edges"]


def test_parts_by_class_path_build_a_backbone() -> None:
    backbone = GraphBackbone(
        encoder="vectors",
        encoder_kwargs={"in_channels": 3},
        topology=f"{__name__}.Ring",
        topology_kwargs={"hops": 2},
        processor=ProcessorConfig(layer=f"{__name__}.EdgeGateLayer", edge_features="offset"),
        channels=8,
        pos_dim=3,
    )
    assert isinstance(backbone.topology, Ring) and backbone.topology.hops == 2
    assert isinstance(backbone.processor.layers[0], EdgeGateLayer)
    assert backbone.processor.layers[0].edge_dim == 3  # offset of 3-d positions
    out = backbone(torch.randn(2, 6, 3))
    assert out.pooled.shape == (2, 8)
    # Ring edges: each of the 6 entities receives from 4 others, in each of the 2 graphs.
    assert out.graph.edge_index.shape == (2, 2 * 6 * 4)


def test_unknown_names_say_both_forms() -> None:
    with pytest.raises(ValueError) as info:
        TOPOLOGIES.get("nope")
    message = str(info.value)
    assert message.startswith("unknown topology 'nope'; choose one of: complete, criss_cross")
    assert message.endswith("or give a class path package.module.Class")
    with pytest.raises(ValueError, match="cannot import 'no_such_pkg'"):
        LAYERS.get("no_such_pkg.Layer")
    with pytest.raises(ValueError, match=f"module '{__name__}' has no class 'Missing'"):
        TOPOLOGIES.get(f"{__name__}.Missing")
