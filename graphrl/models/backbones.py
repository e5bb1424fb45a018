"""Backbones: observation -> per-entity features and a per-graph vector.

``GraphBackbone`` is the project's pipeline, ``encoder -> topology -> processor -> readout``,
each part chosen by name. Every backbone gives a :class:`BackboneOutput`, so the same heads
serve them all: the agents' backbones are built from an observation space
(:mod:`graphrl.models.policy_backbones`), the supervised ones from a task's set sizes
(:mod:`graphrl.models.set_backbones`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from graphrl.graphs import EntityGraph, build_encoder, build_topology
from graphrl.nn import Processor, ProcessorConfig, build_readout


@dataclass
class BackboneOutput:
    """What every backbone returns.

    Attributes:
        nodes: ``[B, N, D]`` per-entity features (pointer heads score them), or None for a
            backbone without entities (a flat MLP, a CNN).
        pooled: ``[B, D]`` per-graph vector (label, policy and value heads read it).
        mask: ``[B, N]`` bool, real entities (None without entities).
        attention: Per-layer ``[B, heads, N, N]`` weights when asked for (attention only).
        graph: The entity graph (graph backbones), for inspection.
        positions: ``[B, N, 2]`` each entity's board position in ``[-1, 1]``, when the
            entities lie on a grid.
    """

    nodes: Tensor | None
    pooled: Tensor
    mask: Tensor | None
    attention: list[Tensor] | None = None
    graph: EntityGraph | None = None
    positions: Tensor | None = None


class GraphBackbone(nn.Module):
    """``encoder -> topology -> processor -> readout``.

    Args:
        encoder: Encoder name (``grid``, ``objects``, ``pixels``, ``vectors``).
        encoder_kwargs: The encoder's own arguments (data-given sizes included).
        topology: Topology name (``complete``, ``self``, ``grid4``, ``grid8``, ``criss_cross``,
            ``knn``, ``radius``, ``relative``, ``memory``).
        topology_kwargs: The topology's arguments (``k`` for knn, ``r`` for radius, ...).
        processor: Layer type and stacking.
        readout: ``max``, ``mean``, ``sum`` or ``attention``.
        channels: Entity width ``D`` everywhere.
        pos_dim: Width of entity coordinates (2 on grids; the data's for vectors).
        readout_kwargs: The readout's own arguments (e.g. ``heads`` of ``attention``).
    """

    def __init__(
        self,
        encoder: str,
        encoder_kwargs: dict[str, Any],
        topology: str = "complete",
        topology_kwargs: dict[str, Any] | None = None,
        processor: ProcessorConfig | None = None,
        readout: str = "max",
        channels: int = 64,
        pos_dim: int = 2,
        readout_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = build_encoder(encoder, out_channels=channels, **encoder_kwargs)
        self.topology = build_topology(topology, **(topology_kwargs or {}))
        processor = processor or ProcessorConfig()
        try:
            self.processor = Processor(
                processor, channels, num_relations=self.topology.num_relations, pos_dim=pos_dim
            )
        except TypeError as exc:  # layer_kwargs meant for another layer type
            if not processor.layer_kwargs:
                raise
            raise ValueError(
                f"processor.layer_kwargs {processor.layer_kwargs} do not fit layer "
                f"{processor.layer!r} ({exc}): clear them (processor.layer_kwargs: {{}} in the "
                "backbone's init_args) or pass that layer's own arguments"
            ) from exc
        self.readout = build_readout(readout, channels, **(readout_kwargs or {}))

    @property
    def returns_attention(self) -> bool:
        """Whether the processor has layers that give attention weights."""
        return bool(getattr(self.processor, "returns_attention", False)) and bool(
            len(self.processor.layers)
        )

    def forward(
        self,
        obs: Tensor,
        mask: Tensor | None = None,
        pos: Tensor | None = None,
        return_attention_weights: bool = False,
    ) -> BackboneOutput:
        graph = self.topology(self.encoder(obs, mask=mask, pos=pos))
        maps = None
        if return_attention_weights:
            x, maps = self.processor(graph, return_attention_weights=True)
        else:
            x = self.processor(graph)
        pooled = self.readout(graph, x)
        return BackboneOutput(graph.dense_x(x), pooled, graph.mask, maps, graph)
