"""Relational actor-critic (Zambaldi et al., 2019): an entity-graph backbone with policy and
value heads, built from the env's observation space and the same parts as supervised models."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from graphrl.checks import check_non_negative, check_positive
from graphrl.graphs import ENCODERS, EntitySet
from graphrl.models.backbones import BackboneOutput, GraphBackbone
from graphrl.models.heads import PointerHead
from graphrl.nn import ProcessorConfig
from graphrl.rl.observations import GraphObs, ObsDict, Observation
from graphrl.rl.policies import layer_init, mlp_trunk


def symbol_counts_from_space(space: gym.spaces.Box) -> list[int]:
    """Symbols per channel of an integer ``(H, W, C)`` grid: ``high + 1`` per channel."""
    high = np.broadcast_to(space.high, space.shape).reshape(-1, space.shape[-1])
    return [int(h) + 1 for h in high.max(axis=0)]


class ObservationLayout:
    """How an observation space reads as the input of an encoder (one place for every kind).

    Kinds: ``grid`` (a ``Box (H, W, C)``: symbol grids, RGB frames) passes the tensor through;
    ``set`` (a ``Box (N, F)`` entity set, a ``Dict`` of one entity set plus ``Box`` globals, or
    a ``Graph``) becomes an :class:`~graphrl.graphs.EntitySet`.

    Args:
        space: The env's single observation space.
        entities_key: For a ``Dict`` space, the key of the entity set (default: its only
            2-D ``Box``); every other key is a global feature.

    Raises:
        ValueError: one line naming the space and the kinds accepted, for any other space.
    """

    ACCEPTED = (
        "Box (H, W, C) grid or image, Box (N, F) entity set, Dict of an entity set Box (N, F) "
        "plus Box globals, Graph with Box nodes"
    )

    def __init__(self, space: gym.Space, entities_key: str | None = None) -> None:
        self.space = space
        self.entities_key = entities_key
        self.global_keys: list[str] = []
        self.global_channels = 0
        self.num_relations = 1
        self.max_entities: int | None = None
        box = gym.spaces.Box
        if isinstance(space, box) and len(space.shape) == 3:
            self.kind, self.in_channels = "grid", int(space.shape[-1])
        elif isinstance(space, box) and len(space.shape) == 2:
            self.kind, self.in_channels = "set", int(space.shape[-1])
            self.max_entities = int(space.shape[0])
        elif isinstance(space, gym.spaces.Dict) and all(
            isinstance(s, box) for s in space.spaces.values()
        ):
            self._read_dict(space)
        elif isinstance(space, gym.spaces.Graph) and isinstance(space.node_space, box):
            self.kind = "set"
            self.in_channels = int(np.prod(space.node_space.shape))
            if isinstance(space.edge_space, gym.spaces.Discrete):
                self.num_relations = int(space.edge_space.n)
        else:
            raise ValueError(
                f"GraphActorCritic cannot read observation space {space}; accepted: {self.ACCEPTED}"
            )

    def _read_dict(self, space: gym.spaces.Dict) -> None:
        sets = [k for k, s in space.spaces.items() if len(s.shape) == 2]
        key = self.entities_key
        if key is None:
            if len(sets) != 1:
                raise ValueError(
                    f"Dict observation space has {len(sets)} entity sets (2-D Box) {sets}: "
                    "name one with the policy's entities_key"
                )
            key = sets[0]
        if key not in space.spaces or len(space.spaces[key].shape) != 2:
            raise ValueError(
                f"entities_key {key!r} is not a 2-D Box (N, F) of the Dict space "
                f"(keys: {list(space.spaces)})"
            )
        self.kind, self.entities_key = "set", key
        entity_space = space.spaces[key]
        self.in_channels = int(entity_space.shape[-1])
        self.max_entities = int(entity_space.shape[0])
        self.global_keys = [k for k in space.spaces if k != key]
        self.global_channels = sum(int(np.prod(space.spaces[k].shape)) for k in self.global_keys)

    def __call__(self, obs: Observation) -> Tensor | EntitySet:
        """The encoder input of an observation batch ``[B, ...]``."""
        if isinstance(obs, GraphObs):
            types = None
            if self.num_relations > 1 and obs.edges is not None:
                types = obs.edges[..., 0].long()
            return EntitySet(
                obs.nodes.flatten(2), obs.node_mask, None, obs.edge_links, obs.edge_mask, types
            )
        if isinstance(obs, ObsDict):
            b = obs.shape[0]
            glob = None
            if self.global_keys:
                glob = torch.cat([obs[k].reshape(b, -1).float() for k in self.global_keys], -1)
            return EntitySet(obs[self.entities_key], globals=glob)
        if self.kind == "set":
            return EntitySet(obs)
        return obs


class GraphActorCritic(nn.Module):
    """``encoder -> topology -> processor -> readout -> MLP -> (policy logits, value)``.

    The env steps raw observation arrays; the graph for the whole vector of envs is built here,
    once per forward, with tensor ops (``[num_envs, H, W, C]`` in, one batch of graphs). The
    encoder follows from the observation space (see :class:`ObservationLayout`).

    Args:
        observation_space: The env's single observation space: ``Box (H, W, C)`` (a grid),
            ``Box (N, F)`` (an entity set), ``Dict`` (entity set plus globals) or ``Graph``.
        num_actions: Size of the discrete action space.
        channels: Entity width ``D``.
        encoder: ``grid`` (one entity per cell), ``objects`` (non-background cells only),
            ``pixels`` (a CNN over an RGB observation, Zambaldi's input module) for grids;
            ``vectors`` for entity sets. Default: ``grid`` for grids, ``vectors`` for sets.
        encoder_kwargs: Extra encoder arguments (``symbol_counts`` / ``in_channels`` /
            ``global_channels`` are taken from the space unless given; ``presence`` picks
            which entities of a set exist, e.g. highway-env's presence column ``0``).
        topology: Topology name (``complete`` = the relational agent; ``self`` = the same agent
            without relations; ``grid4``, ``relative``, ``knn``, ``given`` = a Graph env's own
            edges, ...), or a list of names combined as typed relations (``[given, complete]``).
        topology_kwargs: The topology's arguments (for a list: ``{name: {arg: value}}``).
        processor: Layer type and depth (``attention`` with 2 layers by default).
        readout: ``max`` (Zambaldi), ``mean``, ``sum``, ``attention`` or ``own_node`` (the
            first entity, the agent itself: ego-attention).
        hidden: Width of the MLP between readout and heads (0: heads on the readout).
        action_head: ``pooled`` (logits from the pooled vector) or ``pointer`` (one logit per
            entity from its own node embedding: ``Discrete(N)`` actions that name an entity;
            absent entities get ``-inf``, so the policy is permutation-equivariant).
        entities_key: ``Dict`` spaces: the key of the entity set.
        globals_as: ``Dict`` globals enter as an extra ``node`` or condition the ``readout``.

    Shapes:
        obs: ``[B, H, W, C]``, ``[B, N, F]``, ``ObsDict`` or ``GraphObs`` -> logits
        ``[B, num_actions]``, value ``[B]``.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        num_actions: int,
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
        super().__init__()
        check_positive(channels=channels)
        check_non_negative(hidden=hidden)
        self.layout = ObservationLayout(observation_space, entities_key)
        self.obs_shape = tuple(observation_space.shape or ())
        self.num_actions = num_actions
        encoder = encoder or ("grid" if self.layout.kind == "grid" else "vectors")
        takes = getattr(ENCODERS.get(encoder), "takes", None)
        if takes is not None and takes != self.layout.kind:
            raise ValueError(
                f"encoder {encoder!r} reads {takes} observations but {observation_space} is a "
                f"{self.layout.kind}: set encoder to one that takes it (grid, objects, pixels "
                "for grids; vectors for entity sets)"
            )
        if action_head not in ("pooled", "pointer"):
            raise ValueError(f"action_head must be 'pooled' or 'pointer', got {action_head!r}")
        if action_head == "pointer":
            self._check_pointer(num_actions)
        self.action_head = action_head
        kwargs = dict(encoder_kwargs or {})
        if encoder == "pixels":
            kwargs.setdefault("in_channels", self.obs_shape[-1])
        elif self.layout.kind == "grid":
            kwargs.setdefault("symbol_counts", symbol_counts_from_space(observation_space))
        else:
            kwargs.setdefault("in_channels", self.layout.in_channels)
            kwargs.setdefault("global_channels", self.layout.global_channels)
            kwargs.setdefault("globals_as", globals_as)
        topology_kwargs = self._given_relations(topology, dict(topology_kwargs or {}))
        pos_dim = 2 if self.layout.kind == "grid" else self.layout.in_channels
        self.backbone = GraphBackbone(
            encoder, kwargs, topology, topology_kwargs, processor, readout, channels, pos_dim
        )
        self.trunk, width = mlp_trunk(channels, hidden)
        if action_head == "pointer":
            self.pi: nn.Module = PointerHead(channels, hidden or channels)
        else:
            self.pi = layer_init(nn.Linear(width, num_actions), gain=0.01)
        self.vf = layer_init(nn.Linear(width, 1), gain=1.0)

    def _check_pointer(self, num_actions: int) -> None:
        if self.layout.kind != "set":
            raise ValueError(
                "action_head=pointer needs an entity-set or Graph observation space (one logit "
                f"per entity), got {self.layout.space}: use action_head=pooled"
            )
        if self.layout.max_entities is not None and self.layout.max_entities != num_actions:
            raise ValueError(
                f"action_head=pointer needs Discrete(N) actions over the N="
                f"{self.layout.max_entities} entities, got {num_actions} actions: "
                "use action_head=pooled"
            )

    def _given_relations(self, topology: str | list[str], kwargs: dict[str, Any]) -> dict:
        """Fill ``given``'s ``num_relations`` from the space (typed edges of a Graph env)."""
        names = topology if isinstance(topology, (list, tuple)) else [topology]
        if "given" not in names or self.layout.num_relations == 1:
            return kwargs
        if isinstance(topology, (list, tuple)):
            kwargs["given"] = {
                "num_relations": self.layout.num_relations,
                **kwargs.get("given", {}),
            }
        else:
            kwargs.setdefault("num_relations", self.layout.num_relations)
        return kwargs

    def forward(self, obs: Observation) -> tuple[Tensor, Tensor]:
        """``obs [B, ...] -> (logits [B, num_actions], value [B])``.

        Any grid size works (entities are cells; positions are normalised), so an agent trained
        on one room size can be evaluated on another.
        """
        out = self.backbone(self.layout(obs))
        pooled = out.pooled
        if out.graph is not None and out.graph.context is not None:
            pooled = pooled + out.graph.context
        features = self.trunk(pooled)
        if self.action_head == "pooled":
            return self.pi(features), self.vf(features).squeeze(-1)
        return self._pointer_logits(out, pooled), self.vf(features).squeeze(-1)

    def _pointer_logits(self, out: BackboneOutput, pooled: Tensor) -> Tensor:
        """``[B, num_actions]``: one logit per entity slot, ``-inf`` for absent entities and
        for action ids past this batch's largest graph."""
        b = pooled.shape[0]
        nodes, mask = out.nodes, out.mask
        global_node = getattr(self.backbone.encoder, "global_node", False)
        entity_slots = nodes.shape[1] - int(global_node)
        if entity_slots > self.num_actions:
            raise ValueError(
                f"pointer head: {entity_slots} entities but only {self.num_actions} actions"
            )
        head_in = BackboneOutput(nodes[:, :entity_slots], pooled, mask[:, :entity_slots])
        logits = self.pi(head_in)  # [B, n], -inf where absent
        logits = logits.masked_fill(~head_in.mask.any(1, keepdim=True), 0.0)  # no entity at all
        pad = logits.new_full((b, self.num_actions - entity_slots), float("-inf"))
        return torch.cat([logits, pad], dim=1)

    def static_shapes(self, obs: Observation) -> AbstractContextManager:
        """Within the block, graphs of observations from ``obs`` (e.g. a rollout ``[T, B, ...]``)
        all have the node slots that fit the largest of them, when the encoder compacts entity
        sets (``objects`` with ``compact``); a no-op otherwise."""
        fixed = getattr(self.backbone.encoder, "fixed_slots_for", None)
        if fixed is None or not getattr(self.backbone.encoder, "compact", False):
            return nullcontext()
        return fixed(obs)

    @torch.no_grad()
    def attention_maps(self, obs: Observation) -> list[Tensor]:
        """Per-layer attention ``[B, heads, N, N]`` (``[b, h, i, j]``: ``i`` attends to ``j``)."""
        out = self.backbone(self.layout(obs), return_attention_weights=True)
        return out.attention or []

    def extra_repr(self) -> str:
        return f"obs_shape={self.obs_shape}, num_actions={self.num_actions}"


__all__ = ["GraphActorCritic", "ObservationLayout", "symbol_counts_from_space"]
