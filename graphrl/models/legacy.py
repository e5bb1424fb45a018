"""The agent classes of earlier releases, kept so that their configs and checkpoints load.

Each is an :class:`~graphrl.models.agent.ActorCritic` built from the arguments the old class
took, with the same parameters in the same order (so a seed gives the same initial agent).
New configs name ``graphrl.models.ActorCritic`` and its parts instead:

- ``graphrl.models.GraphActorCritic``: ``backbone: graphrl.models.RelationalBackbone``;
- ``graphrl.models.RecurrentActorCritic``: ``backbone: RelationalBackbone`` and
  ``core: graphrl.nn.LSTMCore`` or ``graphrl.nn.RelationalMemoryCore``;
- ``graphrl.models.MottAttentionAgent``: ``backbone: RelationalBackbone`` and
  ``core: graphrl.nn.MottQueryCore``;
- ``graphrl.rl.MLPPolicy``: ``backbone`` and ``critic: graphrl.models.FlatBackbone``,
  ``hidden: 0``;
- ``graphrl.rl.CNNPolicy``: ``backbone: graphrl.models.CNNBackbone``, ``hidden: 0``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from graphrl.models.agent import ActorCritic
from graphrl.models.policy_backbones import CNNBackbone, FlatBackbone, RelationalBackbone
from graphrl.nn import CORES, MottQueryCore, ProcessorConfig

__all__ = [
    "CNNPolicy",
    "GraphActorCritic",
    "MLPPolicy",
    "MottAttentionAgent",
    "RecurrentActorCritic",
]


_BACKBONE_ARGUMENTS = (
    "channels",
    "encoder",
    "encoder_kwargs",
    "topology",
    "topology_kwargs",
    "processor",
    "readout",
    "entities_key",
    "globals_as",
)


def _backbone(arguments: dict[str, Any]) -> functools.partial:
    """The :class:`RelationalBackbone` of an old class's arguments (those it shares with it)."""
    shared = {k: arguments[k] for k in _BACKBONE_ARGUMENTS if k in arguments}
    return functools.partial(RelationalBackbone, **shared)


def _action_space(actions: int | gym.Space) -> gym.Space:
    """An action space from the old ``num_actions`` (an int: ``Discrete(n)``) or a space."""
    return gym.spaces.Discrete(actions) if isinstance(actions, int) else actions


class GraphActorCritic(ActorCritic):
    """The relational agent: ``ActorCritic`` with a :class:`RelationalBackbone` (arguments as
    there), ``hidden`` and ``action_head``."""

    def __init__(
        self,
        observation_space: gym.Space,
        num_actions: int | gym.Space,
        channels: int = 64,
        encoder: str | None = None,
        encoder_kwargs: dict[str, Any] | None = None,
        topology: str | list[str] = "complete",
        topology_kwargs: dict[str, Any] | None = None,
        processor: ProcessorConfig = ProcessorConfig(),  # noqa: B008 (a dataclass)
        readout: str = "max",
        hidden: int = 128,
        action_head: str = "pooled",
        entities_key: str | None = None,
        globals_as: str = "node",
    ) -> None:
        backbone = _backbone(locals())
        super().__init__(
            observation_space,
            _action_space(num_actions),
            backbone=backbone,
            action_head=action_head,  # type: ignore[arg-type]
            hidden=hidden,
        )


class RecurrentActorCritic(ActorCritic):
    """A relational backbone per frame and a core across frames: ``ActorCritic`` with a
    :class:`RelationalBackbone` and the core named ``core`` (``lstm``, ``rmc``)."""

    def __init__(
        self,
        observation_space: gym.Space,
        num_actions: int | gym.Space,
        channels: int = 64,
        encoder: str = "objects",
        encoder_kwargs: dict[str, Any] | None = None,
        topology: str = "complete",
        topology_kwargs: dict[str, Any] | None = None,
        processor: ProcessorConfig = ProcessorConfig(num_layers=0),  # noqa: B008 (a dataclass)
        readout: str = "max",
        core: str = "lstm",
        core_kwargs: dict[str, Any] | None = None,
        core_input: str = "pooled",
        hidden: int = 128,
    ) -> None:
        backbone = _backbone(locals())
        super().__init__(
            observation_space,
            _action_space(num_actions),
            backbone=backbone,
            core=functools.partial(CORES.get(core), **(core_kwargs or {})),
            core_input=core_input,  # type: ignore[arg-type]
            hidden=hidden,
        )


class MottAttentionAgent(ActorCritic):
    """Mott et al.'s agent: ``ActorCritic`` with a :class:`RelationalBackbone` and a
    :class:`~graphrl.nn.MottQueryCore` reading its entities."""

    def __init__(
        self,
        observation_space: gym.Space,
        num_actions: int | gym.Space,
        channels: int = 64,
        encoder: str = "objects",
        encoder_kwargs: dict[str, Any] | None = None,
        processor: ProcessorConfig = ProcessorConfig(num_layers=0),  # noqa: B008 (a dataclass)
        num_queries: int = 4,
        key_size: int = 32,
        value_size: int = 32,
        basis_frequencies: int = 4,
        hidden_size: int = 128,
        hidden: int = 128,
        pooled_input: bool = False,
    ) -> None:
        backbone = _backbone(locals())
        core = functools.partial(
            MottQueryCore,
            num_queries=num_queries,
            key_size=key_size,
            value_size=value_size,
            basis_frequencies=basis_frequencies,
            hidden_size=hidden_size,
            pooled_input=pooled_input,
        )
        super().__init__(
            observation_space,
            _action_space(num_actions),
            backbone=backbone,
            core=core,
            core_input="entities",
            hidden=hidden,
        )


class MLPPolicy(ActorCritic):
    """Separate actor and critic MLPs on the flattened observation (SB3's ``MlpPolicy``):
    ``ActorCritic`` with :class:`FlatBackbone` as backbone and critic, ``hidden: 0``."""

    def __init__(
        self,
        observation_space: gym.Space,
        num_actions: int | gym.Space,
        hidden: int = 64,
        num_layers: int = 2,
    ) -> None:
        flat = functools.partial(FlatBackbone, hidden=hidden, num_layers=num_layers)
        super().__init__(
            observation_space, _action_space(num_actions), backbone=flat, hidden=0, critic=flat
        )


class CNNPolicy(ActorCritic):
    """Embedded symbols through a small CNN shared by actor and critic: ``ActorCritic`` with a
    :class:`CNNBackbone`, ``hidden: 0``."""

    def __init__(
        self,
        observation_space: gym.Space,
        num_actions: int | gym.Space,
        embedding_dim: int = 8,
        channels: Sequence[int] = (16, 32),
        hidden: int = 128,
        symbol_counts: Sequence[int] | None = None,
    ) -> None:
        cnn = functools.partial(
            CNNBackbone,
            embedding_dim=embedding_dim,
            channels=channels,
            hidden=hidden,
            symbol_counts=symbol_counts,
        )
        super().__init__(observation_space, _action_space(num_actions), backbone=cnn, hidden=0)
