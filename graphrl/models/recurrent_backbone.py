"""A recurrent core reading an entity set one entity per step.

The sequence form of a set task (Santoro et al.'s Nth-farthest): step ``i`` feeds entity ``i``;
per-entity features are the core's output after reading it, projected to ``D``, the pooled vector
the projected output after the last real entity. Same outputs as every backbone, so the same
heads serve it. The core is injected (``core(input_size)``): ``graphrl.nn.LSTMCore``,
``graphrl.nn.RelationalMemoryCore`` or any core that reads one vector per step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from graphrl.checks import check_positive
from graphrl.models.agent import CoreFactory
from graphrl.models.backbones import BackboneOutput
from graphrl.models.set_backbones import SET_BACKBONES, SetSpec, check_set, default_mask

__all__ = ["RecurrentBackbone"]


@SET_BACKBONES.register("recurrent")
class RecurrentBackbone(nn.Module):
    """``[B, K, F]`` entities read in order by a core, projected to ``D``.

    Args:
        spec: The data-given sizes (``in_channels`` is the core's input width).
        core: ``core(input_size)``: a recurrent core that reads one vector per step
            (``graphrl.nn.LSTMCore``, ``graphrl.nn.RelationalMemoryCore``, a class path of your
            own), its own arguments bound in config.
        channels: Output width ``D``.

    Shapes:
        obs ``[B, K, F]``, mask ``[B, K]`` (padding at the end) -> nodes ``[B, K, D]``,
        pooled ``[B, D]``.
    """

    returns_attention = False

    def __init__(self, spec: SetSpec, core: CoreFactory, channels: int = 64) -> None:
        super().__init__()
        check_positive(channels=channels)
        self.in_channels = spec.in_channels
        self.core = core(spec.in_channels)
        if not self.core.takes_vectors:
            raise ValueError(
                f"RecurrentBackbone feeds one entity vector per step, but core "
                f"{type(self.core).__name__} reads only entity sets: use graphrl.nn.LSTMCore or "
                "graphrl.nn.RelationalMemoryCore"
            )
        self.out = nn.Linear(self.core.output_size, channels)
        self.out_channels = self.entity_channels = channels

    def forward(
        self, obs: Tensor, mask: Tensor | None = None, pos: Tensor | None = None, **_: Any
    ) -> BackboneOutput:
        b, _, _ = check_set(obs, self.in_channels, type(self).__name__)
        mask = default_mask(obs, mask)
        state = self.core.initial_state(b, obs.device)
        outputs, _ = self.core.unroll(obs.float().transpose(0, 1), state)  # [K, B, S * D']
        nodes = self.out(outputs.transpose(0, 1))  # [B, K, D]
        last = mask.sum(1).clamp(min=1) - 1  # padding is at the end of each set
        pooled = nodes[torch.arange(b, device=obs.device), last]
        return BackboneOutput(nodes, pooled, mask)
