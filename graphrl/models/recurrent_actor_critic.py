"""A recurrent actor-critic: the entity backbone per frame, a recurrent core across frames.

``obs -> GraphBackbone -> (pooled vector | entity set) -> core (LSTM or RMC) -> MLP -> heads``.
The core reads one vector per step (``core_input="pooled"``, any core) or the frame's whole
entity set (``"entities"``, cores that take sets: the RMC's slots attend over the entities).
It follows the recurrent policy interface of :mod:`graphrl.rl.recurrent`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
from torch import Tensor, nn

from graphrl.models.backbones import GraphBackbone
from graphrl.models.frame_attention import FrameAttention
from graphrl.nn import ProcessorConfig, build_core
from graphrl.nn.recurrent import State
from graphrl.rl.policies import layer_init, mlp_trunk

CORE_INPUTS = ("pooled", "entities")

__all__ = ["CORE_INPUTS", "RecurrentActorCritic", "grid_backbone"]


def grid_backbone(
    observation_space: gym.spaces.Box,
    channels: int,
    encoder: str,
    encoder_kwargs: dict[str, Any] | None,
    topology: str,
    topology_kwargs: dict[str, Any] | None,
    processor: ProcessorConfig,
    readout: str,
) -> GraphBackbone:
    """The :class:`GraphBackbone` of an ``(H, W, C)`` symbol-grid (or pixel) observation."""
    from graphrl.models.actor_critic import symbol_counts_from_space

    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 3:
        raise ValueError(f"needs a Box (H, W, C) observation space, got {observation_space}")
    kwargs = dict(encoder_kwargs or {})
    if encoder == "pixels":
        kwargs.setdefault("in_channels", observation_space.shape[-1])
    else:
        kwargs.setdefault("symbol_counts", symbol_counts_from_space(observation_space))
    return GraphBackbone(
        encoder, kwargs, topology, topology_kwargs, processor, readout, channels, pos_dim=2
    )


class RecurrentActorCritic(nn.Module):
    """Entity backbone + recurrent core + policy and value heads.

    Args:
        observation_space: The env's single observation space, ``Box (H, W, C)``.
        num_actions: Size of the discrete action space.
        channels: Entity width ``D`` (and the core's input width).
        encoder: ``grid``, ``objects`` or ``pixels`` (see ``GraphActorCritic``).
        encoder_kwargs: Extra encoder arguments.
        topology: Topology of the per-frame processor.
        topology_kwargs: The topology's arguments.
        processor: Per-frame message passing (0 layers: entities go to the core as encoded).
        readout: Pooling for ``core_input="pooled"``.
        core: ``lstm`` or ``rmc``.
        core_kwargs: The core's own arguments (``hidden_size``; ``mem_slots``, ``heads``, ...).
        core_input: ``pooled`` (one vector per frame) or ``entities`` (the set; RMC only).
        hidden: Width of the MLP between core and heads (0: heads on the core output).

    Shapes:
        step: obs ``[B, H, W, C]`` -> logits ``[B, A]``, value ``[B]``;
        unroll: obs ``[T, B, H, W, C]`` -> logits ``[T, B, A]``, values ``[T, B]``.
    """

    is_recurrent: ClassVar[bool] = True

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        num_actions: int,
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
        super().__init__()
        if core_input not in CORE_INPUTS:
            raise ValueError(
                f"unknown core_input {core_input!r}; choose one of: {', '.join(CORE_INPUTS)}"
            )
        self.obs_shape = tuple(observation_space.shape)
        self.num_actions = num_actions
        self.backbone = grid_backbone(
            observation_space,
            channels,
            encoder,
            encoder_kwargs,
            topology,
            topology_kwargs,
            processor,
            readout,
        )
        self.core = build_core(core, channels, **(core_kwargs or {}))
        if core_input == "entities" and not self.core.takes_sets:
            raise ValueError(
                f"core {core!r} reads one vector per step; use core_input='pooled' "
                "(or core='rmc' for entity sets)"
            )
        self.core_input = core_input
        self.trunk, width = mlp_trunk(self.core.output_size, hidden)
        self.pi = layer_init(nn.Linear(width, num_actions), gain=0.01)
        self.vf = layer_init(nn.Linear(width, 1), gain=1.0)

    def initial_state(self, batch_size: int, device: Any = None) -> State:
        """The core's initial state for ``batch_size`` envs."""
        return self.core.initial_state(batch_size, device)

    def _inputs(self, obs: Tensor) -> tuple[Tensor, Tensor | None]:
        """Core inputs of ``obs [B, H, W, C]``: ``[B, D]`` or ``([B, N, D], mask [B, N])``."""
        out = self.backbone(obs)
        if self.core_input == "pooled":
            return out.pooled, None
        return out.nodes, out.mask

    def _heads(self, features: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(features)
        return self.pi(h), self.vf(h).squeeze(-1)

    @property
    def returns_attention(self) -> bool:
        """Whether :meth:`forward` can return a :class:`FrameAttention`: the last relational
        layer's attention between entities when the processor has attention layers, else what
        the core's memory slots attend to in the frame's entities (an RMC reading the set)."""
        return self._processor_attends or self._slots_attend

    @property
    def _processor_attends(self) -> bool:
        processor = self.backbone.processor
        return bool(getattr(processor, "returns_attention", False)) and len(processor.layers) > 0

    @property
    def _slots_attend(self) -> bool:
        return self.core_input == "entities" and getattr(self.core, "returns_attention", False)

    def forward(
        self, obs: Tensor, state: State, starts: Tensor, return_attention: bool = False
    ) -> tuple[Tensor, ...]:
        """One step: ``(logits [B, A], value [B], next state)``; rows with ``starts`` reset.

        With ``return_attention`` (see :attr:`returns_attention`) also a
        :class:`FrameAttention`: ``[B, heads, N, N]`` of the last processor layer, or
        ``[B, S, N]``, slot ``s``'s attention on each entity (the last block's, averaged
        over heads; the rest of its weight is on the slots).
        """
        if not return_attention:
            x, mask = self._inputs(obs)
            out, state = self.core.step(x, self.core.reset(state, starts), mask)
            logits, value = self._heads(out)
            return logits, value, state
        if not self.returns_attention:
            raise ValueError(
                "this RecurrentActorCritic computes no attention over entities (no attention "
                "processor layers, and no RMC core reading the entity set)"
            )
        frame = self.backbone(obs, return_attention_weights=self._processor_attends)
        state = self.core.reset(state, starts)
        x, mask = (frame.pooled, None) if self.core_input == "pooled" else (frame.nodes, frame.mask)
        if self._processor_attends:
            out, state = self.core.step(x, state, mask)
            weights = frame.attention[-1]
            titles = tuple(f"head {h + 1}: agent attends to" for h in range(weights.shape[1]))
        else:
            out, state, slots = self.core.step_with_attention(x, state, mask)
            s = slots.shape[-2]
            weights = slots[:, -1, :, :, s:].mean(1)  # [B, S, N]: last block, mean of heads
            titles = tuple(f"slot {k + 1} (mean of heads)" for k in range(s))
        logits, value = self._heads(out)
        return logits, value, state, FrameAttention.of_backbone(frame, weights, titles)

    def unroll(self, obs: Tensor, state: State, starts: Tensor) -> tuple[Tensor, Tensor, State]:
        """Over a sequence: the backbone on all ``T * B`` frames at once, then the core."""
        t, b = obs.shape[:2]
        x, mask = self._inputs(obs.flatten(0, 1))
        x = x.unflatten(0, (t, b))
        mask = None if mask is None else mask.unflatten(0, (t, b))
        out, state = self.core.unroll(x, state, starts, mask)
        logits, values = self._heads(out)
        return logits, values, state

    def extra_repr(self) -> str:
        return f"obs_shape={self.obs_shape}, num_actions={self.num_actions}"
