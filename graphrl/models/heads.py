"""Heads: from backbone outputs to answers (class logits, pointers over entities)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrl.models.backbones import BackboneOutput


def mlp_head(in_channels: int, hidden_channels: int, out_channels: int) -> nn.Sequential:
    """``Linear -> ReLU -> Linear`` (a single ``Linear`` when ``hidden_channels == 0``)."""
    if hidden_channels == 0:
        return nn.Sequential(nn.Linear(in_channels, out_channels))
    return nn.Sequential(
        nn.Linear(in_channels, hidden_channels),
        nn.ReLU(),
        nn.Linear(hidden_channels, out_channels),
    )


class LabelHead(nn.Module):
    """Class logits from the pooled vector: ``[B, D] -> [B, num_classes]``."""

    def __init__(self, channels: int, num_classes: int, hidden_channels: int = 128) -> None:
        super().__init__()
        self.mlp = mlp_head(channels, hidden_channels, num_classes)

    def forward(self, out: BackboneOutput) -> Tensor:
        return self.mlp(out.pooled)


class PointerHead(nn.Module):
    """A logit per entity (Vinyals et al.'s pointer), so the answer set grows with the input.

    ``logit_i = mlp([node_i, pooled])``, padding entities get ``-inf``.

    Args:
        channels: Entity width ``D``.
        hidden_channels: Hidden width of the scoring MLP.
        context_channels: Width ``C`` of the vector read beside each entity (default ``D``).

    Shapes:
        nodes ``[B, N, D]``, pooled ``[B, C]`` -> ``[B, N]``.
    """

    def __init__(
        self, channels: int, hidden_channels: int = 128, context_channels: int | None = None
    ) -> None:
        super().__init__()
        self.mlp = mlp_head(channels + (context_channels or channels), hidden_channels, 1)

    def forward(self, out: BackboneOutput) -> Tensor:
        pooled = out.pooled.unsqueeze(1).expand(-1, out.nodes.shape[1], -1)
        logits = self.mlp(torch.cat([out.nodes, pooled], dim=-1)).squeeze(-1)
        return logits.masked_fill(~out.mask, float("-inf"))
