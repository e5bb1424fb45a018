"""Backbones for supervised entity-set tasks, built from the sizes the data gives.

Every backbone here is built as ``backbone(spec)``, ``spec`` a :class:`SetSpec` holding the
data-given sizes (its own arguments bound in config), and maps a batch of entity sets
``x [B, N, F]`` (with ``mask [B, N]`` and ``pos [B, N, P]``) to a
:class:`~graphrl.models.backbones.BackboneOutput`. It declares what it gives, and
:class:`~graphrl.models.RelationalClassifier` reads only that:

- ``out_channels``: width of ``pooled [B, D]``;
- ``entity_channels``: width of ``nodes [B, N, D]``, or None when it gives no entities (then no
  pointer answer can name them);
- ``returns_attention``: ``forward(..., return_attention_weights=True)`` fills ``attention``.

:class:`SetBackbone` is the relational pipeline; :class:`MLPBackbone` and :class:`LSTMBackbone`
are the non-relational baselines; :class:`~graphrl.models.recurrent_backbone.RecurrentBackbone`
reads the entities one per step with any recurrent core. In YAML::

    backbone:
      class_path: graphrl.models.SetBackbone
      init_args: {channels: 64, topology: knn, topology_kwargs: {k: 3}}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from graphrl.checks import check_positive
from graphrl.models.backbones import BackboneOutput, GraphBackbone
from graphrl.nn import ProcessorConfig
from graphrl.registry import Registry

__all__ = [
    "SET_BACKBONES",
    "LSTMBackbone",
    "MLPBackbone",
    "SetBackbone",
    "SetBackboneFactory",
    "SetSpec",
]


@dataclass(frozen=True)
class SetSpec:
    """The sizes of a task's entity sets, as the data gives them (never written in YAML).

    Attributes:
        in_channels: Entity feature width ``F`` of the backbone's input (after the question
            input, when the question is a view of its own).
        pos_dim: Width ``P`` of the entity coordinates ``pos [B, N, P]``.
        max_entities: Largest entity count ``N`` the data produces.
    """

    in_channels: int
    pos_dim: int
    max_entities: int


SetBackboneFactory = Callable[[SetSpec], nn.Module]
"""``backbone(spec) -> nn.Module`` giving a ``BackboneOutput``."""

SET_BACKBONES: Registry[nn.Module] = Registry("set_backbone")
"""Backbone name -> class; each is built as ``backbone(spec, **its_arguments)``."""


@SET_BACKBONES.register("graph")
class SetBackbone(GraphBackbone):
    """``encoder -> topology -> processor -> readout`` on the data's entity sets.

    Args:
        spec: The data-given sizes (``in_channels`` feeds the encoder, ``pos_dim`` the
            geometric edge features).
        channels: Entity width ``D``.
        encoder: Encoder name or class path (``vectors`` for sets).
        encoder_kwargs: The encoder's own arguments (e.g. ``{hidden_channels: 128}``).
        topology: Topology name (``complete``, ``self`` = DeepSets, ``knn``, ``radius``, ...).
        topology_kwargs: The topology's arguments (``{k: 3}`` for knn, ``{r: 0.5}`` for radius).
        processor: Layer type, depth and edge features (``processor.layer=gcn``);
            ``edge_values: true`` lets attention messages carry edge features.
        readout: ``max``, ``mean``, ``sum`` or ``attention``.
        readout_kwargs: The readout's own arguments (e.g. ``heads`` of ``attention``).

    Shapes:
        x ``[B, N, F]``, mask ``[B, N]``, pos ``[B, N, P]`` -> nodes ``[B, N, D]``,
        pooled ``[B, D]``.
    """

    def __init__(
        self,
        spec: SetSpec,
        channels: int = 64,
        encoder: str = "vectors",
        encoder_kwargs: dict[str, Any] | None = None,
        topology: str = "complete",
        topology_kwargs: dict[str, Any] | None = None,
        processor: ProcessorConfig = ProcessorConfig(),  # noqa: B008 (a dataclass, not a module)
        readout: str = "max",
        readout_kwargs: dict[str, Any] | None = None,
    ) -> None:
        check_positive(channels=channels)
        kwargs = {"in_channels": spec.in_channels, **(encoder_kwargs or {})}
        super().__init__(
            encoder,
            kwargs,
            topology,
            topology_kwargs,
            processor,
            readout,
            channels,
            spec.pos_dim,
            readout_kwargs,
        )
        self.out_channels = self.entity_channels = channels


@SET_BACKBONES.register("mlp")
class MLPBackbone(nn.Module):
    """Non-relational baseline: an MLP on the concatenated entities (padded to ``max_entities``).

    Per-entity features are a shared linear map of each entity, so a pointer head still works.

    Args:
        spec: The data-given sizes (``in_channels`` and ``max_entities`` size the input).
        channels: Output width ``D``.
        hidden_channels: Hidden width of the MLP.
        num_layers: Hidden layers.

    Shapes:
        x ``[B, N <= max_entities, F]`` -> nodes ``[B, N, D]``, pooled ``[B, D]``.
    """

    returns_attention = False

    def __init__(
        self,
        spec: SetSpec,
        channels: int = 64,
        hidden_channels: int = 256,
        num_layers: int = 3,
    ) -> None:
        super().__init__()
        check_positive(channels=channels, hidden_channels=hidden_channels)
        self.in_channels = spec.in_channels
        self.max_entities = spec.max_entities
        layers: list[nn.Module] = []
        width = spec.in_channels * spec.max_entities
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_channels), nn.ReLU()]
            width = hidden_channels
        self.mlp = nn.Sequential(*layers, nn.Linear(width, channels))
        self.entity = nn.Linear(spec.in_channels, channels)
        self.out_channels = self.entity_channels = channels

    def forward(
        self, obs: Tensor, mask: Tensor | None = None, pos: Tensor | None = None, **_: Any
    ) -> BackboneOutput:
        b, n, _ = check_set(obs, self.in_channels, "MLPBackbone")
        if n > self.max_entities:
            raise ValueError(
                f"MLPBackbone was built for {self.max_entities} entities, got {n}: "
                "raise max_entities"
            )
        mask = default_mask(obs, mask)
        x = obs.float() * mask.unsqueeze(-1)
        flat = nn.functional.pad(x, (0, 0, 0, self.max_entities - n)).reshape(b, -1)
        return BackboneOutput(self.entity(x), self.mlp(flat), mask)


@SET_BACKBONES.register("lstm")
class LSTMBackbone(nn.Module):
    """Non-relational sequential baseline: an LSTM reads the entities one per step.

    Args:
        spec: The data-given sizes (``in_channels`` is the LSTM's input width).
        channels: Hidden width ``D``.
        num_layers: Stacked LSTM layers.

    Shapes:
        x ``[B, N, F]`` -> nodes ``[B, N, D]`` (each step's output), pooled ``[B, D]`` (the
        output after the last real entity).
    """

    returns_attention = False

    def __init__(self, spec: SetSpec, channels: int = 64, num_layers: int = 1) -> None:
        super().__init__()
        check_positive(channels=channels, num_layers=num_layers)
        self.in_channels = spec.in_channels
        self.lstm = nn.LSTM(spec.in_channels, channels, num_layers=num_layers, batch_first=True)
        self.out_channels = self.entity_channels = channels

    def forward(
        self, obs: Tensor, mask: Tensor | None = None, pos: Tensor | None = None, **_: Any
    ) -> BackboneOutput:
        check_set(obs, self.in_channels, "LSTMBackbone")
        mask = default_mask(obs, mask)
        lengths = mask.sum(1).clamp(min=1)
        outputs, _ = self.lstm(obs.float())  # [B, N, D]; padding is at the end of each set
        last = outputs[torch.arange(obs.shape[0], device=obs.device), lengths - 1]
        return BackboneOutput(outputs, last, mask)


def check_set(obs: Tensor, in_channels: int, who: str) -> tuple[int, int, int]:
    """``(B, N, F)`` of an entity-set batch, or a one-line error naming ``who`` and the shape."""
    if obs.dim() != 3 or obs.shape[-1] != in_channels:
        raise ValueError(
            f"{who} expects [B, N, F={in_channels}] entity sets; got {tuple(obs.shape)}"
        )
    return obs.shape  # type: ignore[return-value]


def default_mask(obs: Tensor, mask: Tensor | None) -> Tensor:
    """``mask [B, N]`` as bool, all True (every entity real) when None."""
    if mask is None:
        return torch.ones(obs.shape[:2], dtype=torch.bool, device=obs.device)
    return mask.bool()
