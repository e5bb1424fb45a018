"""The processor: K message-passing layers of one type, stacked from config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from graphrl.checks import check_positive
from graphrl.errors import BadArgument
from graphrl.graphs.batch import EntityGraph
from graphrl.graphs.edge_features import EDGE_FEATURES, edge_feature_dim
from graphrl.nn.attention import AttentionLayer
from graphrl.nn.gcn import GCNLayer
from graphrl.nn.gnn import GNNLayer
from graphrl.nn.rgcn import RGCNLayer
from graphrl.registry import Registry

LAYERS: Registry[nn.Module] = Registry("layer")
EDGE_LAYERS = ("gnn", "attention")  # the layers that take edge features


@LAYERS.register("gnn")
def _gnn(channels: int, num_relations: int, edge_dim: int, heads: int, **kw: Any) -> nn.Module:
    return GNNLayer(channels, channels, edge_dim=edge_dim, **kw)


@LAYERS.register("gcn")
def _gcn(channels: int, num_relations: int, edge_dim: int, heads: int, **kw: Any) -> nn.Module:
    return GCNLayer(channels, channels, **kw)


@LAYERS.register("rgcn")
def _rgcn(channels: int, num_relations: int, edge_dim: int, heads: int, **kw: Any) -> nn.Module:
    return RGCNLayer(channels, channels, num_relations=num_relations, **kw)


@LAYERS.register("attention")
def _attention(
    channels: int, num_relations: int, edge_dim: int, heads: int, **kw: Any
) -> nn.Module:
    return AttentionLayer(channels, heads=heads, edge_dim=edge_dim, **kw)


@dataclass
class ProcessorConfig:
    """What the processor is made of; every field can be set from the command line
    (``--model.processor.layer=gcn --model.processor.num_layers=3``).

    Args:
        layer: ``gnn``, ``gcn``, ``rgcn`` or ``attention``.
        num_layers: Number of message-passing iterations ``K``.
        heads: Attention heads (attention layer only).
        shared_weights: One layer applied ``K`` times (a recurrent GNN) instead of ``K`` layers.
        residual: ``x + layer(x)`` around non-attention layers (attention has its own).
        norm: LayerNorm after each non-attention layer.
        dropout: Dropout on each layer's output (and attention weights).
        edge_features: Geometric edge features from ``pos`` fed to layers that take them
            (gnn in its edge MLP, attention as a logit bias): ``none``, ``offset``,
            ``distance``, ``offset_distance``. Layers without edge inputs (gcn, rgcn) ignore
            it, so a config swaps its layer with one flag (``--model.processor.layer=gcn``).
        edge_values: Attention only: the edge features also enter the messages
            (``v_j + U e_ji``, as PyG's ``TransformerConv``); gnn messages always take them.
        layer_kwargs: Extra keyword arguments of the layer class (e.g. ``{norm: symmetric}`` for
            gcn, ``{aggr: mean}`` for gnn).
    """

    layer: str = "attention"
    num_layers: int = 2
    heads: int = 4
    shared_weights: bool = False
    residual: bool = True
    norm: bool = True
    dropout: float = 0.0
    edge_features: str = "none"
    edge_values: bool = False
    layer_kwargs: dict[str, Any] = field(default_factory=dict)


class Processor(nn.Module):
    """``K`` message-passing layers on an entity graph: ``graph -> x [B * N, D]``.

    Args:
        config: The layer type and stacking knobs.
        channels: Node width ``D`` (kept through every layer).
        num_relations: Edge types of the topology (R-GCN needs it).
        pos_dim: Width of node coordinates (sizes edge features).
    """

    def __init__(
        self, config: ProcessorConfig, channels: int, num_relations: int = 1, pos_dim: int = 2
    ) -> None:
        super().__init__()
        check_positive(channels=channels, **{"processor.heads": config.heads})
        if config.num_layers < 0:
            raise BadArgument(
                "processor.num_layers", f"num_layers must be >= 0, got {config.num_layers}"
            )
        if config.edge_features not in EDGE_FEATURES:
            raise ValueError(
                f"unknown edge_features {config.edge_features!r}; choose one of: "
                f"{', '.join(EDGE_FEATURES)}"
            )
        self.config = config
        self.channels = channels
        factory = LAYERS.get(config.layer)
        takes_edges = config.layer in EDGE_LAYERS
        self.edge_features = config.edge_features if takes_edges else "none"
        edge_dim = edge_feature_dim(self.edge_features, pos_dim)
        kwargs = dict(config.layer_kwargs)
        if config.layer == "attention" and config.edge_values and edge_dim:
            kwargs.setdefault("edge_values", True)

        def make() -> nn.Module:
            return factory(channels, num_relations, edge_dim, config.heads, **kwargs)

        if config.shared_weights and config.num_layers:
            shared = make()
            self.layers = nn.ModuleList([shared] * config.num_layers)
        else:
            self.layers = nn.ModuleList([make() for _ in range(config.num_layers)])
        self.is_attention = config.layer == "attention"
        wrap = not self.is_attention
        self.norms = nn.ModuleList(
            [
                nn.LayerNorm(channels) if (wrap and config.norm) else nn.Identity()
                for _ in range(config.num_layers)
            ]
        )
        self.act = nn.ReLU()
        self.drop = nn.Dropout(config.dropout)

    def forward(
        self, graph: EntityGraph, return_attention_weights: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Run the ``K`` layers on ``graph.x``.

        Returns:
            ``x: [B * N, D]``; with ``return_attention_weights`` (attention only) also the
            ``[B, heads, N, N]`` weights of every layer.
        """
        x = graph.x
        needs_sparse_attr = self.edge_features != "none" and not (
            self.is_attention and self.layers and self.layers[0].uses_dense_path(graph)
        )
        edge_attr = graph.edge_attr(self.edge_features) if needs_sparse_attr else None
        maps: list[Tensor] = []
        for layer, norm in zip(self.layers, self.norms):
            if self.is_attention:
                out = layer.forward_graph(
                    graph, x, edge_attr, return_attention_weights, self.edge_features
                )
                if return_attention_weights:
                    out, weights = out
                    maps.append(weights)
                x = out
                continue
            h = self.drop(self.act(layer.forward_graph(graph, x, edge_attr)))
            x = norm(x + h if self.config.residual else h)
        if return_attention_weights:
            if not self.is_attention:
                raise ValueError(f"layer {self.config.layer!r} has no attention weights")
            return x, maps
        return x
