"""Action distributions, one per kind of gymnasium action space.

A policy's head gives a flat tensor of distribution parameters ``params [B, P]``; the action
space alone says how to read it (:class:`ActionSpec`), so rollouts, updates, evaluation and
pictures treat every action space alike:

=====================  ====================================  ==========================
action space           ``params [B, P]``                      action ``[B, ...]``
=====================  ====================================  ==========================
``Discrete(n)``        logits ``[B, n]`` (a pointer head:     ``[B]`` int64
                       one logit per entity)
``MultiDiscrete(v)``   logits of every dimension,             ``[B, len(v)]`` int64
                       concatenated ``[B, sum(v)]``
``Box(d,)``            mean and log-std ``[B, 2 d]``          ``[B, d]`` float32
=====================  ====================================  ==========================

``Box`` actions follow CleanRL's ``ppo_continuous_action.py``: a diagonal Gaussian, the sample
stored and scored unclipped, clipped to the space's bounds only when handed to the env.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor
from torch.distributions import Categorical, Normal

__all__ = [
    "ActionDistribution",
    "ActionSpec",
    "CategoricalActions",
    "GaussianActions",
    "MultiCategoricalActions",
]


class ActionDistribution(ABC):
    """A batch of action distributions: sample, mode, log-probability and entropy per row."""

    @abstractmethod
    def sample(self) -> Tensor:
        """One action per row, ``[B, *action_shape]``."""

    @abstractmethod
    def mode(self) -> Tensor:
        """The most likely action per row (greedy evaluation), ``[B, *action_shape]``."""

    @abstractmethod
    def log_prob(self, actions: Tensor) -> Tensor:
        """``[B]``: log-probability of ``actions [B, *action_shape]``."""

    @abstractmethod
    def entropy(self) -> Tensor:
        """``[B]``: entropy of each row's distribution."""


class CategoricalActions(ActionDistribution):
    """``Discrete`` actions from logits ``[B, n]``."""

    def __init__(self, logits: Tensor) -> None:
        self.dist = Categorical(logits=logits, validate_args=False)

    def sample(self) -> Tensor:
        return self.dist.sample()

    def mode(self) -> Tensor:
        return self.dist.logits.argmax(-1)

    def log_prob(self, actions: Tensor) -> Tensor:
        return self.dist.log_prob(actions)

    def entropy(self) -> Tensor:
        return self.dist.entropy()


class MultiCategoricalActions(ActionDistribution):
    """``MultiDiscrete(nvec)`` actions: one categorical per dimension, independent.

    Args:
        logits: ``[B, sum(nvec)]``, the dimensions' logits one after another.
        nvec: Choices per dimension.
    """

    def __init__(self, logits: Tensor, nvec: tuple[int, ...]) -> None:
        self.dists = [
            Categorical(logits=part, validate_args=False) for part in logits.split(nvec, dim=-1)
        ]

    def sample(self) -> Tensor:
        return torch.stack([d.sample() for d in self.dists], dim=-1)

    def mode(self) -> Tensor:
        return torch.stack([d.logits.argmax(-1) for d in self.dists], dim=-1)

    def log_prob(self, actions: Tensor) -> Tensor:
        return sum(d.log_prob(a) for d, a in zip(self.dists, actions.unbind(-1)))  # type: ignore[return-value]

    def entropy(self) -> Tensor:
        return sum(d.entropy() for d in self.dists)  # type: ignore[return-value]


class GaussianActions(ActionDistribution):
    """``Box(d,)`` actions: a diagonal Gaussian from ``params [B, 2 d]`` = ``[mean, log_std]``."""

    def __init__(self, params: Tensor) -> None:
        mean, log_std = params.chunk(2, dim=-1)
        self.dist = Normal(mean, log_std.exp(), validate_args=False)

    def sample(self) -> Tensor:
        return self.dist.sample()

    def mode(self) -> Tensor:
        return self.dist.mean

    def log_prob(self, actions: Tensor) -> Tensor:
        return self.dist.log_prob(actions).sum(-1)

    def entropy(self) -> Tensor:
        return self.dist.entropy().sum(-1)


ACCEPTED = "Discrete(n), MultiDiscrete(nvec) (one dimension) or Box(d,) (float)"


@dataclass(frozen=True)
class ActionSpec:
    """How to read a policy's ``params`` for one gymnasium action space, store its actions and
    hand them to the env.

    Attributes:
        space: The env's single action space.
        shape: Shape of one action (``()`` for ``Discrete``).
        dtype: Torch dtype of stored actions (int64 or float32).
        param_size: Width ``P`` of ``params`` a head must give.
    """

    space: gym.Space
    shape: tuple[int, ...]
    dtype: torch.dtype
    param_size: int

    @classmethod
    def from_space(cls, space: gym.Space, who: str = "on-policy modules") -> ActionSpec:
        """The spec of ``space``.

        Raises:
            TypeError: one line naming the space and the kinds accepted, for any other space.
        """
        if isinstance(space, gym.spaces.Discrete):
            return cls(space, (), torch.long, int(space.n))
        if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1:
            return cls(space, tuple(space.shape), torch.long, int(space.nvec.sum()))
        if (
            isinstance(space, gym.spaces.Box)
            and len(space.shape) == 1
            and np.issubdtype(space.dtype, np.floating)
        ):
            return cls(space, tuple(space.shape), torch.float32, 2 * int(space.shape[0]))
        raise TypeError(f"{who} cannot take action space {space}; accepted: {ACCEPTED}")

    @property
    def kind(self) -> str:
        """``discrete``, ``multi_discrete`` or ``box``."""
        if isinstance(self.space, gym.spaces.Discrete):
            return "discrete"
        if isinstance(self.space, gym.spaces.MultiDiscrete):
            return "multi_discrete"
        return "box"

    def distribution(self, params: Tensor) -> ActionDistribution:
        """The distributions of ``params [B, P]`` (``[B, n]`` of any ``n`` for ``Discrete``)."""
        if self.kind == "discrete":
            return CategoricalActions(params)
        if self.kind == "multi_discrete":
            nvec = tuple(int(n) for n in self.space.nvec)  # type: ignore[attr-defined]
            return MultiCategoricalActions(params, nvec)
        return GaussianActions(params)

    def to_env(self, actions: Tensor) -> np.ndarray:
        """Actions ``[B, *shape]`` as the vector env takes them: offset by the space's
        ``start`` for discrete spaces, clipped to the bounds for ``Box``."""
        array = actions.detach().cpu().numpy()
        if self.kind == "box":
            low, high = self.space.low, self.space.high  # type: ignore[attr-defined]
            return np.clip(array, low, high).astype(self.space.dtype)
        return array + self._start if self._start is not None else array

    @functools.cached_property
    def _start(self) -> np.ndarray | None:
        """The discrete space's ``start`` offset, or None when it is 0 (read once, not per
        step)."""
        start = np.asarray(self.space.start)  # type: ignore[attr-defined]
        return start if start.any() else None

    def check_params(self, params: Tensor, batch: int) -> None:
        """Raise one line unless ``params`` is ``[batch, param_size]``."""
        expected = (batch, self.param_size)
        if tuple(params.shape) != expected:
            raise ValueError(
                f"policy must return action parameters {list(expected)} for {self.space}, got "
                f"{list(params.shape)}"
            )
