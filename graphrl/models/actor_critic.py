"""Relational actor-critic (Zambaldi et al., 2019): an entity-graph backbone with policy and
value heads, built from the env's observation space and the same parts as supervised models."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from graphrl.checks import check_non_negative, check_positive
from graphrl.models.backbones import GraphBackbone
from graphrl.nn import ProcessorConfig
from graphrl.rl.policies import layer_init


def symbol_counts_from_space(space: gym.spaces.Box) -> list[int]:
    """Symbols per channel of an integer ``(H, W, C)`` grid: ``high + 1`` per channel."""
    high = np.broadcast_to(space.high, space.shape).reshape(-1, space.shape[-1])
    return [int(h) + 1 for h in high.max(axis=0)]


class GraphActorCritic(nn.Module):
    """``encoder -> topology -> processor -> readout -> MLP -> (policy logits, value)``.

    The env steps raw observation arrays; the graph for the whole vector of envs is built here,
    once per forward, with tensor ops (``[num_envs, H, W, C]`` in, one batch of graphs).

    Args:
        observation_space: The env's single observation space, ``Box (H, W, C)``.
        num_actions: Size of the discrete action space.
        channels: Entity width ``D``.
        encoder: ``grid`` (one entity per cell), ``objects`` (non-background cells only),
            or ``pixels`` (a CNN over an RGB observation, Zambaldi's input module).
        encoder_kwargs: Extra encoder arguments (``symbol_counts`` / ``in_channels`` are taken
            from the space unless given).
        topology: Topology name (``complete`` = the relational agent; ``self`` = the same agent
            without relations; ``grid4``, ``relative``, ``knn``, ...).
        topology_kwargs: The topology's arguments.
        processor: Layer type and depth (``attention`` with 2 layers by default).
        readout: ``max`` (Zambaldi), ``mean``, ``sum`` or ``attention``.
        hidden: Width of the MLP between readout and heads (0: heads on the readout).

    Shapes:
        obs: ``[B, H, W, C]`` -> logits ``[B, num_actions]``, value ``[B]``.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        num_actions: int,
        channels: int = 64,
        encoder: str = "grid",
        encoder_kwargs: dict[str, Any] | None = None,
        topology: str = "complete",
        topology_kwargs: dict[str, Any] | None = None,
        processor: ProcessorConfig = ProcessorConfig(),  # noqa: B008 (a dataclass)
        readout: str = "max",
        hidden: int = 128,
    ) -> None:
        super().__init__()
        check_positive(channels=channels)
        check_non_negative(hidden=hidden)
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 3:
            raise ValueError(
                f"GraphActorCritic needs a Box (H, W, C) observation space, got {observation_space}"
            )
        self.obs_shape = tuple(observation_space.shape)
        self.num_actions = num_actions
        kwargs = dict(encoder_kwargs or {})
        if encoder == "pixels":
            kwargs.setdefault("in_channels", self.obs_shape[-1])
        else:
            kwargs.setdefault("symbol_counts", symbol_counts_from_space(observation_space))
        self.backbone = GraphBackbone(
            encoder, kwargs, topology, topology_kwargs, processor, readout, channels, pos_dim=2
        )
        trunk: list[nn.Module] = []
        width = channels
        if hidden:
            trunk = [layer_init(nn.Linear(channels, hidden)), nn.ReLU()]
            width = hidden
        self.trunk = nn.Sequential(*trunk)
        self.pi = layer_init(nn.Linear(width, num_actions), gain=0.01)
        self.vf = layer_init(nn.Linear(width, 1), gain=1.0)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``obs: [B, H, W, C] -> (logits [B, num_actions], value [B])``.

        Any grid size works (entities are cells; positions are normalised), so an agent trained
        on one room size can be evaluated on another.
        """
        features = self.trunk(self.backbone(obs).pooled)
        return self.pi(features), self.vf(features).squeeze(-1)

    @torch.no_grad()
    def attention_maps(self, obs: Tensor) -> list[Tensor]:
        """Per-layer attention ``[B, heads, N, N]`` (``[b, h, i, j]``: ``i`` attends to ``j``)."""
        out = self.backbone(obs, return_attention_weights=True)
        return out.attention or []

    def extra_repr(self) -> str:
        return f"obs_shape={self.obs_shape}, num_actions={self.num_actions}"


__all__ = ["GraphActorCritic", "symbol_counts_from_space"]
