"""The processor: K message-passing layers of one type, stacked from config.

The processor never tests a layer's name: each layer class declares what it takes and gives
(``uses_edge_attr``, ``uses_edge_type``, ``uses_heads``, ``uses_edge_values``,
``returns_attention``, ``includes_residual``, ``same_channels``; see
:class:`~graphrl.nn.base.GraphLayerMixin`) and :func:`build_layer` and :class:`Processor` read
those declarations. A new layer is one class with its ``@LAYERS.register(name)`` decorator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from graphrl.checks import check_positive
from graphrl.errors import BadArgument
from graphrl.graphs.batch import EntityGraph
from graphrl.graphs.edge_features import EDGE_FEATURES, edge_feature_dim

# The built-in layers register themselves in LAYERS when their modules are imported.
from graphrl.nn.attention import AttentionLayer  # noqa: F401
from graphrl.nn.base import LAYERS
from graphrl.nn.gcn import GCNLayer  # noqa: F401
from graphrl.nn.gnn import GNNLayer  # noqa: F401
from graphrl.nn.rgcn import RGCNLayer  # noqa: F401


def _declares(layer_cls: type, flag: str) -> bool:
    """A layer's declaration (class attribute); absent means False (see ``GraphLayerMixin``)."""
    return bool(getattr(layer_cls, flag, False))


def build_layer(
    layer_cls: type[nn.Module],
    channels: int,
    num_relations: int = 1,
    edge_dim: int = 0,
    heads: int = 1,
    edge_values: bool = False,
    layer_kwargs: dict[str, Any] | None = None,
    dropout: float = 0.0,
) -> nn.Module:
    """Instantiate a layer class from what it declares it takes.

    ``(channels, channels)`` (or ``(channels,)`` when it declares ``same_channels``), plus
    ``num_relations`` if it ``uses_edge_type``, ``edge_dim`` if it ``uses_edge_attr``, ``heads``
    if it ``uses_heads``, ``edge_values`` if it ``uses_edge_values`` and ``dropout`` if it
    ``includes_residual`` (such a layer applies it on its own branches, where the processor
    cannot), then ``layer_kwargs`` (the layer's own arguments).

    Raises:
        TypeError: if ``layer_kwargs`` repeats an argument the processor gives (``heads``, ...).
    """
    kwargs = dict(layer_kwargs or {})
    args = (channels,) if _declares(layer_cls, "same_channels") else (channels, channels)
    given = {
        "num_relations": (num_relations, "uses_edge_type", "the topology"),
        "edge_dim": (edge_dim, "uses_edge_attr", "processor.edge_features"),
        "heads": (heads, "uses_heads", "processor.heads"),
        "dropout": (dropout, "includes_residual", "processor.dropout"),
    }
    for name, (value, flag, knob) in given.items():
        if not _declares(layer_cls, flag):
            continue
        if name in kwargs:
            raise TypeError(f"{name!r} is set by {knob}, not by layer_kwargs")
        kwargs[name] = value
    if edge_values and edge_dim and _declares(layer_cls, "uses_edge_values"):
        kwargs.setdefault("edge_values", True)
    return layer_cls(*args, **kwargs)


@dataclass
class ProcessorConfig:
    """What the processor is made of; every field can be set from the command line
    (``--model.backbone.processor.layer=gcn --model.backbone.processor.num_layers=3``).

    Args:
        layer: ``gnn``, ``gcn``, ``rgcn``, ``attention`` (or any name in ``LAYERS``, or a class
            path ``my_pkg.MyLayer`` of a class that declares what it takes, as
            :class:`~graphrl.nn.base.GraphLayerMixin` does).
        num_layers: Number of message-passing iterations ``K``.
        heads: Attention heads (layers that declare ``uses_heads``).
        shared_weights: One layer applied ``K`` times (a recurrent GNN) instead of ``K`` layers.
        residual: ``x + layer(x)`` around layers that do not declare ``includes_residual``
            (attention has its own).
        norm: LayerNorm after each of those layers.
        dropout: Dropout on each layer's output (and attention weights).
        edge_features: Geometric edge features from ``pos`` fed to layers that declare
            ``uses_edge_attr`` (gnn in its edge MLP, attention as a logit bias): ``none``,
            ``offset``, ``distance``, ``offset_distance``. Other layers (gcn, rgcn) ignore it,
            so a config swaps its layer with one flag (``--model.backbone.processor.layer=gcn``).
        edge_values: Layers that declare ``uses_edge_values`` (attention): the edge features
            also enter the messages (``v_j + U e_ji``, as PyG's ``TransformerConv``); gnn
            messages always take them.
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


# A plain dataclass of numbers and names: checkpoints whose hparams hold one (a policy built in
# Python) load with torch's default weights_only=True, as Lightning's resume does.
torch.serialization.add_safe_globals([ProcessorConfig])


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
        layer_cls = LAYERS.get(config.layer)
        self.returns_attention = _declares(layer_cls, "returns_attention")
        self.includes_residual = _declares(layer_cls, "includes_residual")
        takes_edges = _declares(layer_cls, "uses_edge_attr")
        self.edge_features = config.edge_features if takes_edges else "none"
        edge_dim = edge_feature_dim(self.edge_features, pos_dim)

        def make() -> nn.Module:
            return build_layer(
                layer_cls,
                channels,
                num_relations=num_relations,
                edge_dim=edge_dim,
                heads=config.heads,
                edge_values=config.edge_values,
                layer_kwargs=config.layer_kwargs,
                dropout=config.dropout,
            )

        if config.shared_weights and config.num_layers:
            shared = make()
            self.layers = nn.ModuleList([shared] * config.num_layers)
        else:
            self.layers = nn.ModuleList([make() for _ in range(config.num_layers)])
        wrap = not self.includes_residual
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
            ``x: [B * N, D]``; with ``return_attention_weights`` (layers that declare
            ``returns_attention``) also the ``[B, heads, N, N]`` weights of every layer.
        """
        x = graph.x
        dense = getattr(self.layers[0], "uses_dense_path", None) if self.layers else None
        needs_sparse_attr = self.edge_features != "none" and not (dense and dense(graph))
        edge_attr = graph.edge_attr(self.edge_features) if needs_sparse_attr else None
        if return_attention_weights and not self.returns_attention:
            raise ValueError(
                f"layer {self.config.layer!r} returns no attention weights (it does not declare "
                "returns_attention)"
            )
        maps: list[Tensor] = []
        for layer, norm in zip(self.layers, self.norms):
            if self.returns_attention:
                out = layer.forward_graph(
                    graph, x, edge_attr, return_attention_weights, self.edge_features
                )
                if return_attention_weights:
                    out, weights = out
                    maps.append(weights)
            else:
                out = layer.forward_graph(graph, x, edge_attr)
            if self.includes_residual:
                x = out
                continue
            h = self.drop(self.act(out))
            x = norm(x + h if self.config.residual else h)
        if return_attention_weights:
            return x, maps
        return x
