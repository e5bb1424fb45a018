"""A recurrent core (RMC or LSTM) reading an entity set one entity per step.

The sequence form of a set task (Santoro et al.'s Nth-farthest): step ``i`` feeds entity ``i``;
per-entity features are the core's output after reading it, the pooled vector its output
after the last real entity. Same outputs as every backbone, so the same heads serve it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from graphrl.models.backbones import BackboneOutput, _check_set, _default_mask
from graphrl.nn import build_core

__all__ = ["RecurrentBackbone"]


class RecurrentBackbone(nn.Module):
    """``[B, K, F]`` entities read in order by a core, projected to ``D``.

    Args:
        in_channels: Entity feature width ``F``.
        channels: Output width ``D``.
        core: ``rmc`` or ``lstm``.
        core_kwargs: The core's own arguments.

    Shapes:
        obs ``[B, K, F]``, mask ``[B, K]`` (padding at the end) -> nodes ``[B, K, D]``,
        pooled ``[B, D]``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 64,
        core: str = "rmc",
        core_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.core = build_core(core, in_channels, **(core_kwargs or {}))
        self.out = nn.Linear(self.core.output_size, channels)

    def forward(
        self, obs: Tensor, mask: Tensor | None = None, pos: Tensor | None = None, **_: Any
    ) -> BackboneOutput:
        b, _, _ = _check_set(obs, self.in_channels, type(self).__name__)
        mask = _default_mask(obs, mask)
        state = self.core.initial_state(b, obs.device)
        outputs, _ = self.core.unroll(obs.float().transpose(0, 1), state)  # [K, B, S * D']
        nodes = self.out(outputs.transpose(0, 1))  # [B, K, D]
        last = mask.sum(1).clamp(min=1) - 1  # padding is at the end of each set
        pooled = nodes[torch.arange(b, device=obs.device), last]
        return BackboneOutput(nodes, pooled, mask)
