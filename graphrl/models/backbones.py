"""Backbones: observation -> per-entity features and a per-graph vector.

``GraphBackbone`` is the project's pipeline, ``encoder -> topology -> processor -> readout``,
each part chosen by name. ``MLPBackbone`` and ``LSTMBackbone`` are the non-relational
baselines, with the same outputs so that the same heads and the same harness serve them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
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
                f"{processor.layer!r} ({exc}): clear them (--model.processor.layer_kwargs='{{}}') "
                "or pass that layer's own arguments"
            ) from exc
        self.readout = build_readout(readout, channels, **(readout_kwargs or {}))

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


class MLPBackbone(nn.Module):
    """Non-relational baseline: an MLP on the concatenated entities (padded to ``max_entities``).

    Per-entity features are a shared linear map of each entity, so a pointer head still works.

    Args:
        in_channels: Entity feature width ``F``.
        max_entities: Entity slots of the flattened input (shorter sets are zero-padded).
        channels: Output width ``D``.
        hidden_channels: Hidden width of the MLP.
        num_layers: Hidden layers.
    """

    def __init__(
        self,
        in_channels: int,
        max_entities: int,
        channels: int = 64,
        hidden_channels: int = 256,
        num_layers: int = 3,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.max_entities = max_entities
        layers: list[nn.Module] = []
        width = in_channels * max_entities
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_channels), nn.ReLU()]
            width = hidden_channels
        self.mlp = nn.Sequential(*layers, nn.Linear(width, channels))
        self.entity = nn.Linear(in_channels, channels)

    def forward(
        self, obs: Tensor, mask: Tensor | None = None, pos: Tensor | None = None, **_: Any
    ) -> BackboneOutput:
        b, n, _ = _check_set(obs, self.in_channels, "MLPBackbone")
        if n > self.max_entities:
            raise ValueError(
                f"MLPBackbone was built for {self.max_entities} entities, got {n}: "
                "raise max_entities"
            )
        mask = _default_mask(obs, mask)
        x = obs.float() * mask.unsqueeze(-1)
        flat = nn.functional.pad(x, (0, 0, 0, self.max_entities - n)).reshape(b, -1)
        return BackboneOutput(self.entity(x), self.mlp(flat), mask)


class LSTMBackbone(nn.Module):
    """Non-relational sequential baseline: an LSTM reads the entities one per step.

    Args:
        in_channels: Entity feature width ``F``.
        channels: Hidden width ``D``.
        num_layers: Stacked LSTM layers.
    """

    def __init__(self, in_channels: int, channels: int = 64, num_layers: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.lstm = nn.LSTM(in_channels, channels, num_layers=num_layers, batch_first=True)

    def forward(
        self, obs: Tensor, mask: Tensor | None = None, pos: Tensor | None = None, **_: Any
    ) -> BackboneOutput:
        _check_set(obs, self.in_channels, "LSTMBackbone")
        mask = _default_mask(obs, mask)
        lengths = mask.sum(1).clamp(min=1)
        outputs, _ = self.lstm(obs.float())  # [B, N, D]; padding is at the end of each set
        last = outputs[torch.arange(obs.shape[0], device=obs.device), lengths - 1]
        return BackboneOutput(outputs, last, mask)


def _check_set(obs: Tensor, in_channels: int, who: str) -> tuple[int, int, int]:
    if obs.dim() != 3 or obs.shape[-1] != in_channels:
        raise ValueError(
            f"{who} expects [B, N, F={in_channels}] entity sets; got {tuple(obs.shape)}"
        )
    return obs.shape  # type: ignore[return-value]


def _default_mask(obs: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return torch.ones(obs.shape[:2], dtype=torch.bool, device=obs.device)
    return mask.bool()
