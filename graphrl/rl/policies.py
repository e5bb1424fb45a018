"""Baseline actor-critic policies and the interface every policy (graph ones included) meets.

A policy is an ``nn.Module`` mapping a batch of raw observations to action logits and state
values. The on-policy modules receive a *policy factory*, ``policy(observation_space,
num_actions) -> nn.Module``, because those two sizes come from the environment. In YAML a
factory is written like a class with its own knobs only::

    policy:
      class_path: graphrl.rl.MLPPolicy
      init_args: {hidden: 64}

so every policy's ``__init__`` takes ``observation_space`` and ``num_actions`` first. For envs
that expose ``symbol_counts`` (``graphrl.envs``), the space handed over has
``high[..., c] = symbol_counts[c] - 1``, so symbol vocabularies can be read from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol, TypeVar

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from graphrl.checks import check_positive

__all__ = [
    "ActorCriticPolicy",
    "CNNPolicy",
    "MLPPolicy",
    "PolicyFactory",
    "layer_init",
    "mlp_trunk",
]


class ActorCriticPolicy(Protocol):
    """What the on-policy modules need from a policy: an ``nn.Module`` with this ``forward``."""

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Map observations ``[B, *obs_shape]`` (dtype as the env gives it, e.g. uint8) to
        ``(logits [B, num_actions], value [B])``."""
        ...


PolicyFactory = Callable[[gym.spaces.Box, int], nn.Module]
"""``policy(observation_space, num_actions) -> nn.Module``: how the modules build a policy."""


LayerT = TypeVar("LayerT", nn.Linear, nn.Conv2d)


def layer_init(layer: LayerT, gain: float = math.sqrt(2), bias: float = 0.0) -> LayerT:
    """Orthogonal weights with ``gain`` and a constant bias (the PPO / CleanRL initialisation).

    Returns the layer, so it can wrap a constructor call.
    """
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.constant_(layer.bias, bias)
    return layer


def static_shapes(policy: nn.Module, obs: object) -> AbstractContextManager:
    """The policy's own ``static_shapes(obs)`` context, if it declares one, else a no-op.

    Inside it, every forward on observations drawn from ``obs`` (e.g. a whole rollout's
    minibatches) has the same graph size: no host sync per call, one ``torch.compile`` graph.
    """
    declared = getattr(policy, "static_shapes", None)
    return declared(obs) if declared is not None else nullcontext()


def mlp_trunk(width: int, hidden: int) -> tuple[nn.Sequential, int]:
    """The shared layer between a policy's features and its heads: ``Linear(hidden)`` + ReLU
    (orthogonal init), or the identity when ``hidden`` is 0. Returns ``(trunk, out_width)``."""
    if not hidden:
        return nn.Sequential(), width
    return nn.Sequential(layer_init(nn.Linear(width, hidden)), nn.ReLU()), hidden


def _require_box(observation_space: gym.Space, policy: str) -> gym.spaces.Box:
    if not isinstance(observation_space, gym.spaces.Box):
        raise TypeError(
            f"{policy} needs a Box observation space, got {observation_space}; "
            "wrap the env so it returns an array (e.g. minigrid.wrappers.ImgObsWrapper)"
        )
    return observation_space


def _require_num_actions(num_actions: int, policy: str) -> None:
    if num_actions < 1:
        raise ValueError(f"{policy} needs num_actions >= 1, got {num_actions}")


class MLPPolicy(nn.Module):
    """Flattened observations through separate actor and critic MLPs (SB3's ``MlpPolicy``).

    Each network is ``num_layers`` x (``Linear(hidden)`` + tanh), then a linear head: the
    actor's gives ``num_actions`` logits, the critic's one value. Weights are orthogonal with
    gain sqrt(2), 0.01 for the logits and 1 for the value, as in SB3 and CleanRL.

    Integer observations (grid symbols, pixels) are divided by the space's upper bound so
    that they lie in ``[0, 1]``; float observations pass through unchanged.

    Args:
        observation_space: The env's single observation space (a ``Box`` of any shape).
        num_actions: Size of the discrete action space.
        hidden: Width of every hidden layer.
        num_layers: Number of hidden layers in each of the two networks.

    Shapes:
        obs ``[B, *observation_space.shape]`` -> logits ``[B, num_actions]``, value ``[B]``.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        num_actions: int,
        hidden: int = 64,
        num_layers: int = 2,
    ) -> None:
        super().__init__()
        check_positive(hidden=hidden, num_layers=num_layers)
        space = _require_box(observation_space, "MLPPolicy")
        _require_num_actions(num_actions, "MLPPolicy")
        if num_layers < 1:
            raise ValueError(f"MLPPolicy needs num_layers >= 1, got {num_layers}")
        self.obs_shape = tuple(space.shape)
        self.in_features = int(np.prod(self.obs_shape))
        self.num_actions = num_actions
        scale = np.ones(self.obs_shape, dtype=np.float32)
        if np.issubdtype(space.dtype, np.integer):
            high = np.broadcast_to(space.high, self.obs_shape).astype(np.float32)
            scale = np.where(high > 0, 1.0 / np.maximum(high, 1.0), 1.0).astype(np.float32)
        self.register_buffer("obs_scale", torch.from_numpy(scale).flatten(), persistent=False)
        self.pi = self._mlp(hidden, num_layers, num_actions, head_gain=0.01)
        self.vf = self._mlp(hidden, num_layers, 1, head_gain=1.0)

    def _mlp(self, hidden: int, num_layers: int, out: int, head_gain: float) -> nn.Sequential:
        layers: list[nn.Module] = []
        width = self.in_features
        for _ in range(num_layers):
            layers += [layer_init(nn.Linear(width, hidden)), nn.Tanh()]
            width = hidden
        layers.append(layer_init(nn.Linear(width, out), gain=head_gain))
        return nn.Sequential(*layers)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(logits [B, num_actions], value [B])`` for ``obs [B, *obs_shape]``."""
        x = obs.reshape(obs.shape[0], -1).float() * self.obs_scale
        return self.pi(x), self.vf(x).squeeze(-1)

    def extra_repr(self) -> str:
        return f"obs_shape={self.obs_shape}, num_actions={self.num_actions}"


class CNNPolicy(nn.Module):
    """Embedded grid symbols through a small convolutional trunk shared by actor and critic.

    The observation is an ``(H, W, C)`` grid of integer symbols (channel ``c`` holds values in
    ``[0, symbol_counts[c])``). Each channel's symbol is embedded, the ``C`` embeddings of a
    cell are concatenated, and ``len(channels)`` 3x3 convolutions (padding 1, ReLU) keep the
    grid size; the flattened map goes through ``Linear(hidden)`` + ReLU to two linear heads.

    Args:
        observation_space: ``Box`` of shape ``(H, W, C)`` with an integer dtype.
        num_actions: Size of the discrete action space.
        embedding_dim: Size of each channel's symbol embedding.
        channels: Output channels of the successive convolutions.
        hidden: Width of the fully connected layer before the heads.
        symbol_counts: Number of symbols per channel; by default ``high + 1`` of the space
            (the maximum over the grid), so give it when the space's bound is loose.

    Shapes:
        obs ``[B, H, W, C]`` -> logits ``[B, num_actions]``, value ``[B]``.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        num_actions: int,
        embedding_dim: int = 8,
        channels: Sequence[int] = (16, 32),
        hidden: int = 128,
        symbol_counts: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_positive(embedding_dim=embedding_dim, hidden=hidden)
        space = _require_box(observation_space, "CNNPolicy")
        _require_num_actions(num_actions, "CNNPolicy")
        if len(space.shape) != 3 or not np.issubdtype(space.dtype, np.integer):
            raise ValueError(
                "CNNPolicy needs an integer (H, W, C) grid of symbols, got shape "
                f"{space.shape} and dtype {space.dtype}; use MLPPolicy for other observations"
            )
        if not channels:
            raise ValueError("CNNPolicy needs at least one convolution in `channels`")
        height, width, num_channels = space.shape
        if symbol_counts is None:
            high = np.broadcast_to(space.high, space.shape).reshape(-1, num_channels)
            symbol_counts = [int(h) + 1 for h in high.max(axis=0)]
        if len(symbol_counts) != num_channels:
            raise ValueError(
                f"symbol_counts has {len(symbol_counts)} entries but the grid has "
                f"{num_channels} channels"
            )
        self.obs_shape = tuple(space.shape)
        self.num_actions = num_actions
        self.symbol_counts = tuple(int(n) for n in symbol_counts)
        offsets = np.concatenate([[0], np.cumsum(self.symbol_counts)[:-1]])
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.long), False)
        self.embedding = nn.Embedding(sum(self.symbol_counts), embedding_dim)
        convs: list[nn.Module] = []
        in_channels = num_channels * embedding_dim
        for out_channels in channels:
            convs += [layer_init(nn.Conv2d(in_channels, out_channels, 3, padding=1)), nn.ReLU()]
            in_channels = out_channels
        self.trunk = nn.Sequential(
            *convs,
            nn.Flatten(),
            layer_init(nn.Linear(in_channels * height * width, hidden)),
            nn.ReLU(),
        )
        self.pi = layer_init(nn.Linear(hidden, num_actions), gain=0.01)
        self.vf = layer_init(nn.Linear(hidden, 1), gain=1.0)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(logits [B, num_actions], value [B])`` for ``obs [B, H, W, C]``."""
        x = self.embedding(obs.long() + self.offsets)  # [B, H, W, C, E]
        x = x.flatten(3).permute(0, 3, 1, 2)  # [B, C * E, H, W]
        features = self.trunk(x)
        return self.pi(features), self.vf(features).squeeze(-1)

    def extra_repr(self) -> str:
        return (
            f"obs_shape={self.obs_shape}, num_actions={self.num_actions}, "
            f"symbol_counts={self.symbol_counts}"
        )
