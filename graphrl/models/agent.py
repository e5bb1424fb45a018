"""The one actor-critic agent: ``backbone -> [core] -> head``, each part injected.

Every RL agent of graphrl is an :class:`ActorCritic`. Its three parts are built from the env:

- the **backbone** from the observation space (``backbone(observation_space)``): the
  relational pipeline (:class:`~graphrl.models.policy_backbones.RelationalBackbone`, every
  observation kind) or a flat MLP / CNN baseline;
- the optional recurrent **core** from the width it reads (``core(input_size)``): an LSTM, the
  Relational Memory Core or Mott et al.'s queries, reading the backbone's pooled vector or its
  entity set per step;
- the **head** from the action space, with no flag (:mod:`graphrl.models.action_heads`):
  categorical logits, a pointer over entities when asked, one categorical per ``MultiDiscrete``
  dimension, or a diagonal Gaussian for ``Box``.

In YAML the parts are class paths with their own ``init_args``::

    policy:
      class_path: graphrl.models.ActorCritic
      init_args:
        backbone:
          class_path: graphrl.models.RelationalBackbone
          init_args: {encoder: objects, processor: {layer: attention, num_layers: 2}}
        core:
          class_path: graphrl.nn.LSTMCore
          init_args: {hidden_size: 128}

The agent's output is ``(params [B, P], value [B])`` (plus the next state when it has a core),
``params`` the parameters of its action distribution, which
:class:`~graphrl.models.distributions.ActionSpec` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

import gymnasium as gym
import torch
from torch import Tensor, nn

from graphrl.checks import check_non_negative
from graphrl.graphs.observations import Observation
from graphrl.models.action_heads import build_action_head
from graphrl.models.backbones import BackboneOutput
from graphrl.models.distributions import ActionSpec
from graphrl.models.frame_attention import FrameAttention
from graphrl.models.layers import layer_init, mlp_trunk
from graphrl.models.policy_backbones import RelationalBackbone
from graphrl.nn.recurrent import RecurrentCore, State
from graphrl.registry import factory_class

__all__ = ["ActorCritic", "BackboneFactory", "CoreFactory", "HeadFactory"]

BackboneFactory = Callable[[gym.Space], nn.Module]
"""``backbone(observation_space) -> nn.Module`` giving a ``BackboneOutput``."""

CoreFactory = Callable[[int], RecurrentCore]
"""``core(input_size) -> RecurrentCore``."""

HeadFactory = Callable[[ActionSpec, int], nn.Module]
"""``head(spec, in_channels) -> nn.Module`` giving ``spec``'s parameters ``[B, P]``."""


class ActorCritic(nn.Module):
    """``backbone -> [core] -> MLP -> (action distribution parameters, value)``.

    Args:
        observation_space: The env's single observation space.
        action_space: The env's single action space: ``Discrete``, ``MultiDiscrete`` or
            ``Box(d,)``; the head follows from it.
        backbone: ``backbone(observation_space)``: what reads the observation
            (:class:`~graphrl.models.policy_backbones.RelationalBackbone` by default).
        core: ``core(input_size)``: a recurrent core (``graphrl.nn.LSTMCore``,
            ``graphrl.nn.RelationalMemoryCore``, ``graphrl.nn.MottQueryCore``), or None for a
            feed-forward agent.
        core_input: What the core reads per step: the backbone's ``pooled`` vector, or its
            ``entities`` (a set, for cores that take sets; default for cores that take only
            sets).
        action_head: ``pooled`` (the head the action space implies) or ``pointer``
            (``Discrete`` actions that name an entity: one logit per entity, any entity count).
        hidden: Width of the MLP between features and heads (0: heads on the features).
        head: ``head(spec, in_channels)``: a head of your own, called as ``head(features [B, W],
            out)`` (``out`` the backbone's output) and giving the parameters ``[B, P]`` that
            ``spec`` (:class:`~graphrl.models.distributions.ActionSpec`) reads; None: the head
            the action space implies (see ``action_head``).
        critic: A separate backbone for the value (Stable-Baselines3's ``MlpPolicy`` keeps
            actor and critic apart); None: the value shares the backbone (and core).

    Shapes:
        feed-forward: obs ``[B, ...]`` -> params ``[B, P]``, value ``[B]``;
        with a core: ``forward(obs, state, starts)`` -> params, value, next state;
        ``unroll(obs [T, B, ...], state, starts [T, B])`` -> ``[T, B, P]``, ``[T, B]``, state.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        backbone: BackboneFactory = RelationalBackbone,
        core: CoreFactory | None = None,
        core_input: Literal["pooled", "entities"] | None = None,
        action_head: Literal["pooled", "pointer"] = "pooled",
        hidden: int = 128,
        head: HeadFactory | None = None,
        critic: BackboneFactory | None = None,
    ) -> None:
        super().__init__()
        check_non_negative(hidden=hidden)
        if action_head not in ("pooled", "pointer"):
            raise ValueError(f"action_head must be 'pooled' or 'pointer', got {action_head!r}")
        if core_input not in (None, "pooled", "entities"):
            raise ValueError(f"core_input must be 'pooled' or 'entities', got {core_input!r}")
        self.spec = ActionSpec.from_space(action_space, "ActorCritic")
        self.observation_space = observation_space
        self.obs_shape = tuple(observation_space.shape or ())
        self.backbone = backbone(observation_space)
        entity_channels = getattr(self.backbone, "entity_channels", None)
        if action_head == "pointer":
            self._check_pointer(entity_channels)
        width = self.backbone.out_channels
        self.core: RecurrentCore | None = None
        self.core_input = core_input
        if core is not None:
            self.core, width = self._build_core(core, core_input, width, entity_channels)
        self.trunk, trunk_width = mlp_trunk(width, hidden)
        self.action_head = action_head
        if head is not None:  # a head of the user's own, for this action space
            self.pi: nn.Module = head(self.spec, trunk_width)
        else:
            self.pi = build_action_head(
                self.spec,
                trunk_width,
                pointer=action_head == "pointer",
                entity_channels=entity_channels,
                context_channels=width,
                hidden=hidden or entity_channels or width,
                skip_last_node=bool(getattr(self.backbone, "global_node", False)),
            )
        self.critic = None if critic is None else critic(observation_space)
        value_width = trunk_width if self.critic is None else self.critic.out_channels
        self.vf = layer_init(nn.Linear(value_width, 1), gain=1.0)

    def _check_pointer(self, entity_channels: int | None) -> None:
        """A pointer names one of the entities: they must exist, one action per entity."""
        if entity_channels is None:
            raise ValueError(
                f"action_head=pointer needs a backbone that gives entities; "
                f"{type(self.backbone).__name__} gives none: use RelationalBackbone"
            )
        entities = getattr(self.backbone, "max_entities", None)
        one_per_entity = entities is None or entities == self.spec.param_size
        if self.spec.kind != "discrete" or not one_per_entity:
            raise ValueError(
                f"action_head=pointer needs Discrete(N) actions over the N={entities} entities, "
                f"got {self.spec.space}: use action_head=pooled"
            )

    def _build_core(
        self, core: CoreFactory, core_input: str | None, width: int, entity_channels: int | None
    ) -> tuple[RecurrentCore, int]:
        """The core and its output width, checked against what the backbone gives."""
        if core_input is None:  # a core that reads only sets reads the entities
            takes_vectors = getattr(factory_class(core), "takes_vectors", True)
            core_input = "pooled" if takes_vectors else "entities"
            self.core_input = core_input
        if core_input == "entities" and entity_channels is None:
            raise ValueError(
                f"core_input=entities needs a backbone that gives entities; "
                f"{type(self.backbone).__name__} gives none: use core_input=pooled"
            )
        built = core(width if core_input == "pooled" else entity_channels)
        name = type(built).__name__
        if core_input == "entities" and not built.takes_sets:
            raise ValueError(
                f"core {name} reads one vector per step; use core_input=pooled (or a core that "
                "takes sets, e.g. graphrl.nn.RelationalMemoryCore)"
            )
        if core_input == "pooled" and not built.takes_vectors:
            raise ValueError(f"core {name} reads entity sets; use core_input=entities")
        return built, built.output_size

    # ------------------------------------------------------------------ declarations

    @property
    def is_recurrent(self) -> bool:
        """Whether the agent carries a state (it has a core); see :mod:`graphrl.rl.recurrent`."""
        return self.core is not None

    @property
    def variable_action_width(self) -> bool:
        """Whether the number of logits follows the entity count (a pointer head)."""
        return self.action_head == "pointer"

    @property
    def returns_attention(self) -> bool:
        """Whether ``forward(..., return_attention=True)`` can add a :class:`FrameAttention`:
        the last relational layer's heads when the backbone has attention layers, else what
        the core's queries or memory slots attend to in the entity set."""
        return self._backbone_attends or self._core_attends

    @property
    def _backbone_attends(self) -> bool:
        return bool(getattr(self.backbone, "returns_attention", False))

    @property
    def _core_attends(self) -> bool:
        return (
            self.core is not None
            and self.core_input == "entities"
            and bool(getattr(self.core, "returns_attention", False))
        )

    def check_action_space(self, space: gym.Space) -> None:
        """Raise one line unless the agent can act in ``space`` (another env at evaluation):
        the same space, or any ``Discrete`` for a pointer head (one logit per entity)."""
        other = ActionSpec.from_space(space, "ActorCritic")
        if self.variable_action_width and other.kind == "discrete":
            return
        if other.kind != self.spec.kind or other.param_size != self.spec.param_size:
            raise ValueError(f"the agent acts in {self.spec.space}, not in {space}")

    def initial_state(self, batch_size: int, device: Any = None) -> State:
        """The core's initial state for ``batch_size`` envs (``()`` without a core)."""
        return () if self.core is None else self.core.initial_state(batch_size, device)

    def static_shapes(self, obs: Observation) -> AbstractContextManager:
        """The backbone's ``static_shapes(obs)`` (one graph size for a whole rollout), if any."""
        declared = getattr(self.backbone, "static_shapes", None)
        return declared(obs) if declared is not None else nullcontext()

    # ------------------------------------------------------------------ computation

    def _core_inputs(self, out: BackboneOutput) -> tuple[Tensor, dict[str, Tensor | None]]:
        """What the core reads from a backbone output: ``(x, keyword inputs)``."""
        if self.core_input == "pooled":
            return out.pooled, {"mask": None}
        inputs: dict[str, Tensor | None] = {"mask": out.mask}
        if self.core is not None and self.core.uses_positions:
            inputs["pos"] = out.positions
        return out.nodes, inputs  # type: ignore[return-value]

    def _heads(self, summary: Tensor, out: BackboneOutput, obs: Observation) -> tuple[Tensor, ...]:
        """``(params, value)`` from the summary ``[B, W]`` (pooled vector or core output)."""
        features = self.trunk(summary)
        head_in = out if self.core is None else BackboneOutput(out.nodes, summary, out.mask)
        params = self.pi(features, head_in)
        value_in = features if self.critic is None else self.critic(obs).pooled
        return params, self.vf(value_in).squeeze(-1)

    def forward(
        self,
        obs: Observation,
        state: State | None = None,
        starts: Tensor | None = None,
        return_attention: bool = False,
    ) -> tuple[Any, ...]:
        """One step.

        Args:
            obs: Observations ``[B, ...]``.
            state: The core's state (agents with a core only).
            starts: ``[B]`` bool, rows whose observation opens an episode (their state is
                reset first; agents with a core only).
            return_attention: Also return a :class:`FrameAttention` (see
                :attr:`returns_attention`).

        Returns:
            ``(params [B, P], value [B])``, then the next state with a core, then the attention
            when asked.
        """
        attend = return_attention and self._backbone_attends
        if return_attention and not self.returns_attention:
            raise ValueError(
                "this agent computes no attention over entities (no attention layers in its "
                "backbone, and no core reading the entity set with attention)"
            )
        out = self.backbone(obs, return_attention_weights=attend)
        if self.core is None:
            params, value = self._heads(out.pooled, out, obs)
            if not return_attention:
                return params, value
            return params, value, self._backbone_attention(out)
        if state is None or starts is None:
            raise ValueError("an agent with a core steps with (obs, state, starts)")
        state = self.core.reset(state, starts)
        x, inputs = self._core_inputs(out)
        if return_attention and not attend:
            summary, state, weights, titles = self.core.frame_attention(x, state, **inputs)
            attention = FrameAttention.of_backbone(out, weights, titles)
        else:
            summary, state = self.core.step(x, state, **inputs)
            attention = self._backbone_attention(out) if attend else None
        params, value = self._heads(summary, out, obs)
        if not return_attention:
            return params, value, state
        return params, value, state, attention

    @staticmethod
    def _backbone_attention(out: BackboneOutput) -> FrameAttention:
        """The last processor layer's heads ``[B, heads, N, N]`` as a :class:`FrameAttention`."""
        assert out.attention
        weights = out.attention[-1]
        titles = tuple(f"head {h + 1}: agent attends to" for h in range(weights.shape[1]))
        return FrameAttention.of_backbone(out, weights, titles)

    def unroll(
        self, obs: Observation, state: State, starts: Tensor
    ) -> tuple[Tensor, Tensor, State]:
        """Over env sequences ``obs [T, B, ...]`` from ``state``, resetting where ``starts
        [T, B]`` is set: the backbone on all ``T * B`` frames at once, then the core.

        Returns:
            ``(params [T, B, P], values [T, B], state after the last step)``.
        """
        if self.core is None:
            raise ValueError("unroll needs an agent with a core")
        t, b = starts.shape
        frames = obs.flatten(0, 1)
        out = self.backbone(frames)
        x, inputs = self._core_inputs(out)
        per_step = {k: None if v is None else v.unflatten(0, (t, b)) for k, v in inputs.items()}
        summary, state = self.core.unroll(x.unflatten(0, (t, b)), state, starts, **per_step)
        params, values = self._heads(summary.flatten(0, 1), out, frames)
        return params.unflatten(0, (t, b)), values.unflatten(0, (t, b)), state

    @torch.no_grad()
    def attention_maps(self, obs: Observation) -> list[Tensor]:
        """Per-layer attention of the backbone ``[B, heads, N, N]`` (``[b, h, i, j]``: ``i``
        attends to ``j``); empty without attention layers."""
        return self.backbone(obs, return_attention_weights=True).attention or []

    def extra_repr(self) -> str:
        return f"obs_shape={self.obs_shape}, actions={self.spec.space}"
