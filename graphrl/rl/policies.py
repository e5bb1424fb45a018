"""The interface every policy meets, and how the on-policy modules build one.

A policy is an ``nn.Module`` mapping a batch of raw observations to the parameters of its
action distribution and state values (see :mod:`graphrl.models.distributions` for how the
action space reads the parameters). The on-policy modules receive a *policy factory*,
``policy(observation_space, action_space) -> nn.Module``, because both spaces come from the
environment. In YAML a factory is written like a class with its own knobs only::

    policy:
      class_path: graphrl.models.ActorCritic
      init_args: {hidden: 64}

so every policy's ``__init__`` takes ``observation_space`` and ``action_space`` first.
:class:`graphrl.models.ActorCritic` is the one agent graphrl ships. For envs that expose
``symbol_counts`` (``graphrl.envs``), the observation space handed over has
``high[..., c] = symbol_counts[c] - 1``, so symbol vocabularies can be read from it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

import gymnasium as gym
from torch import Tensor, nn

from graphrl.models.layers import layer_init, mlp_trunk
from graphrl.models.legacy import CNNPolicy, MLPPolicy

__all__ = [
    "ActorCriticPolicy",
    "CNNPolicy",
    "MLPPolicy",
    "PolicyFactory",
    "layer_init",
    "mlp_trunk",
    "static_shapes",
]


class ActorCriticPolicy(Protocol):
    """What the on-policy modules need from a feed-forward policy: an ``nn.Module`` with this
    ``forward`` (recurrent policies: see :mod:`graphrl.rl.recurrent`)."""

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Map observations ``[B, *obs_shape]`` (dtype as the env gives it, e.g. uint8) to
        ``(params [B, P], value [B])``: logits ``[B, n]`` for ``Discrete(n)`` actions."""
        ...


PolicyFactory = Callable[[gym.Space, gym.Space], nn.Module]
"""``policy(observation_space, action_space) -> nn.Module``: how the modules build a policy."""


def static_shapes(policy: nn.Module, obs: object) -> AbstractContextManager:
    """The policy's own ``static_shapes(obs)`` context, if it declares one, else a no-op.

    Inside it, every forward on observations drawn from ``obs`` (e.g. a whole rollout's
    minibatches) has the same graph size: no host sync per call, one ``torch.compile`` graph.
    """
    declared = getattr(policy, "static_shapes", None)
    return declared(obs) if declared is not None else nullcontext()
