"""Small building blocks shared by the agents' parts: the PPO initialisation and the MLP trunk."""

from __future__ import annotations

import math
from typing import TypeVar

from torch import nn

__all__ = ["layer_init", "mlp_trunk"]

LayerT = TypeVar("LayerT", nn.Linear, nn.Conv2d)


def layer_init(layer: LayerT, gain: float = math.sqrt(2), bias: float = 0.0) -> LayerT:
    """Orthogonal weights with ``gain`` and a constant bias (the PPO / CleanRL initialisation).

    Returns the layer, so it can wrap a constructor call.
    """
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.constant_(layer.bias, bias)
    return layer


def mlp_trunk(width: int, hidden: int) -> tuple[nn.Sequential, int]:
    """The shared layer between an agent's features and its heads: ``Linear(hidden)`` + ReLU
    (orthogonal init), or the identity when ``hidden`` is 0. Returns ``(trunk, out_width)``."""
    if not hidden:
        return nn.Sequential(), width
    return nn.Sequential(layer_init(nn.Linear(width, hidden)), nn.ReLU()), hidden
