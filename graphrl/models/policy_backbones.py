"""Backbones built from an env's observation space: what an agent sees, as features.

Every backbone here is built as ``backbone(observation_space)`` (its own arguments bound in
config) and maps an observation batch to a :class:`~graphrl.models.backbones.BackboneOutput`.
It declares what it gives, and :class:`~graphrl.models.agent.ActorCritic` reads only that:

- ``out_channels``: width of ``pooled [B, D]``;
- ``entity_channels``: width of ``nodes [B, N, D]``, or None when it gives no entities (then no
  core can read entity sets and no pointer head can name them);
- ``returns_attention``: ``forward(obs, return_attention_weights=True)`` fills ``attention``;
- ``global_node``: the last node is a global node, not an entity (``Dict`` globals).

:class:`RelationalBackbone` is the entity-graph pipeline, for every observation kind;
:class:`FlatBackbone` and :class:`CNNBackbone` are the non-relational baselines.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from graphrl.checks import check_positive
from graphrl.graphs import ENCODERS, EntitySet
from graphrl.graphs.observations import GraphObs, ObsDict, Observation
from graphrl.graphs.positional import normalized_coordinates
from graphrl.models.backbones import BackboneOutput, GraphBackbone
from graphrl.models.layers import layer_init
from graphrl.nn import ProcessorConfig
from graphrl.registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")
"""Backbone name -> class; each is built as ``backbone(observation_space, **its_arguments)``."""

__all__ = [
    "BACKBONES",
    "CNNBackbone",
    "FlatBackbone",
    "ObservationLayout",
    "RelationalBackbone",
    "symbol_counts_from_space",
]


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
                f"RelationalBackbone cannot read observation space {space}; accepted: "
                f"{self.ACCEPTED}"
            )

    def _read_dict(self, space: gym.spaces.Dict) -> None:
        sets = [k for k, s in space.spaces.items() if len(s.shape) == 2]
        key = self.entities_key
        if key is None:
            if len(sets) != 1:
                raise ValueError(
                    f"Dict observation space has {len(sets)} entity sets (2-D Box) {sets}: "
                    "name one with the backbone's entities_key"
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


@BACKBONES.register("relational")
class RelationalBackbone(GraphBackbone):
    """``encoder -> topology -> processor -> readout`` on any observation kind.

    The encoder input follows from the observation space (:class:`ObservationLayout`): grids
    (symbols or RGB), entity sets ``Box (N, F)``, ``Dict`` (an entity set plus globals) and
    ``Graph`` (the env's own edges for ``topology: given``). The graph for the whole batch is
    built here with tensor ops, once per forward.

    Args:
        observation_space: The env's single observation space.
        channels: Entity width ``D``.
        encoder: ``grid`` (one entity per cell), ``objects`` (non-background cells), ``pixels``
            (a CNN over RGB frames, Zambaldi's input module) for grids; ``vectors`` for sets.
            Default: ``grid`` for grids, ``vectors`` for sets. An encoder of the other kind
            is replaced by that kind's default (with a warning), so one config serves both.
        encoder_kwargs: The encoder's own arguments (``symbol_counts`` / ``in_channels`` /
            ``global_channels`` are read from the space unless given; ``presence`` picks which
            entities of a set exist, e.g. highway-env's presence column ``0``).
        topology: A topology name (``complete``, ``self``, ``grid4``, ``relative``, ``knn``,
            ``given``, ...), a class path, or a list combined as typed relations.
        topology_kwargs: The topology's arguments (for a list: ``{name: {arg: value}}``).
        processor: Layer type and depth.
        readout: ``max`` (Zambaldi), ``mean``, ``sum``, ``attention`` or ``own_node`` (the first
            entity: ego-attention), or a class path.
        readout_kwargs: The readout's own arguments (e.g. ``heads`` of ``attention``).
        entities_key: ``Dict`` spaces: the key of the entity set.
        globals_as: ``Dict`` globals enter as an extra ``node`` or condition the ``readout``.

    Shapes:
        obs ``[B, H, W, C]``, ``[B, N, F]``, ``ObsDict`` or ``GraphObs`` -> nodes ``[B, N', D]``,
        pooled ``[B, D]``, positions ``[B, N', 2]`` in ``[-1, 1]`` (grids only).
    """

    def __init__(
        self,
        observation_space: gym.Space,
        channels: int = 64,
        encoder: str | None = None,
        encoder_kwargs: dict[str, Any] | None = None,
        topology: str | list[str] = "complete",
        topology_kwargs: dict[str, Any] | None = None,
        processor: ProcessorConfig = ProcessorConfig(),  # noqa: B008 (a dataclass)
        readout: str = "max",
        readout_kwargs: dict[str, Any] | None = None,
        entities_key: str | None = None,
        globals_as: str = "node",
    ) -> None:
        check_positive(channels=channels)
        layout = ObservationLayout(observation_space, entities_key)
        encoder, encoder_kwargs = _encoder_for(layout, encoder, encoder_kwargs)
        kwargs = dict(encoder_kwargs or {})
        if encoder == "pixels":
            kwargs.setdefault("in_channels", observation_space.shape[-1])
        elif layout.kind == "grid":
            kwargs.setdefault("symbol_counts", symbol_counts_from_space(observation_space))
        else:
            kwargs.setdefault("in_channels", layout.in_channels)
            kwargs.setdefault("global_channels", layout.global_channels)
            kwargs.setdefault("globals_as", globals_as)
        topology_kwargs = _given_relations(topology, dict(topology_kwargs or {}), layout)
        pos_dim = 2 if layout.kind == "grid" else layout.in_channels
        super().__init__(
            encoder,
            kwargs,
            topology,
            topology_kwargs,
            processor,
            readout,
            channels,
            pos_dim,
            readout_kwargs,
        )
        self.layout = layout
        self.out_channels = self.entity_channels = channels
        self.max_entities = layout.max_entities  # entity slots of a set space (None: grids)
        self.grid_hw = tuple(observation_space.shape[:2]) if layout.kind == "grid" else None

    @property
    def global_node(self) -> bool:
        """Whether the encoder appends a global node after the entities."""
        return bool(getattr(self.encoder, "global_node", False))

    def forward(  # type: ignore[override]
        self, obs: Observation, return_attention_weights: bool = False
    ) -> BackboneOutput:
        out = super().forward(self.layout(obs), return_attention_weights=return_attention_weights)
        graph = out.graph
        assert graph is not None
        if graph.context is not None:
            out.pooled = out.pooled + graph.context
        if self.grid_hw is not None:
            coords = normalized_coordinates(graph.pos, self.grid_hw)
            out.positions = coords.view(*out.mask.shape, 2)
        return out

    def static_shapes(self, obs: Observation) -> AbstractContextManager:
        """Within the block, graphs of observations from ``obs`` (e.g. a rollout ``[T, B, ...]``)
        all have the node slots that fit the largest of them, when the encoder compacts entity
        sets (``objects`` with ``compact``); a no-op otherwise."""
        fixed = getattr(self.encoder, "fixed_slots_for", None)
        if fixed is None or not getattr(self.encoder, "compact", False):
            return nullcontext()
        return fixed(obs)


DEFAULT_ENCODERS = {"grid": "grid", "set": "vectors"}


def _encoder_for(
    layout: ObservationLayout, encoder: str | None, encoder_kwargs: dict[str, Any] | None
) -> tuple[str, dict[str, Any] | None]:
    """The encoder (and its arguments) for the layout's observation kind.

    An encoder that declares it reads the *other* kind (``objects`` given an entity set) is
    replaced by that kind's default, without its arguments, and a warning says so: one config
    serves grid envs and entity-set envs (swap the env id, keep the agent).
    """
    if encoder is None:
        return DEFAULT_ENCODERS[layout.kind], encoder_kwargs
    takes = getattr(ENCODERS.get(encoder), "takes", None)
    if takes is None or takes == layout.kind:
        return encoder, encoder_kwargs
    default = DEFAULT_ENCODERS[layout.kind]
    warnings.warn(
        f"encoder {encoder!r} reads {takes} observations but {layout.space} is a "
        f"{layout.kind}: using the {default!r} encoder without encoder_kwargs (set encoder "
        "to silence this)",
        stacklevel=3,
    )
    return default, None


def _given_relations(
    topology: str | list[str], kwargs: dict[str, Any], layout: ObservationLayout
) -> dict[str, Any]:
    """Fill ``given``'s ``num_relations`` from the space (typed edges of a Graph env)."""
    names = topology if isinstance(topology, (list, tuple)) else [topology]
    if "given" not in names or layout.num_relations == 1:
        return kwargs
    if isinstance(topology, (list, tuple)):
        kwargs["given"] = {"num_relations": layout.num_relations, **kwargs.get("given", {})}
    else:
        kwargs.setdefault("num_relations", layout.num_relations)
    return kwargs


def _require_box(space: gym.Space, who: str) -> gym.spaces.Box:
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(
            f"{who} needs a Box observation space, got {space}; use RelationalBackbone for "
            "Dict and Graph observations"
        )
    return space


@BACKBONES.register("flat")
class FlatBackbone(nn.Module):
    """The flattened observation through an MLP (Stable-Baselines3's ``MlpPolicy`` network).

    ``num_layers`` x (``Linear(hidden)`` + tanh), orthogonal init with gain sqrt(2). Integer
    observations (grid symbols, pixels) are divided by the space's upper bound so that they lie
    in ``[0, 1]``; float observations pass through unchanged. It gives no entities.

    Args:
        observation_space: A ``Box`` of any shape.
        hidden: Width of every hidden layer.
        num_layers: Hidden layers.

    Shapes:
        obs ``[B, *shape]`` -> pooled ``[B, hidden]``.
    """

    entity_channels = None
    returns_attention = False

    def __init__(self, observation_space: gym.Space, hidden: int = 64, num_layers: int = 2) -> None:
        super().__init__()
        check_positive(hidden=hidden, num_layers=num_layers)
        space = _require_box(observation_space, "FlatBackbone")
        self.obs_shape = tuple(space.shape)
        width = int(np.prod(self.obs_shape))
        scale = np.ones(self.obs_shape, dtype=np.float32)
        if np.issubdtype(space.dtype, np.integer):
            high = np.broadcast_to(space.high, self.obs_shape).astype(np.float32)
            scale = np.where(high > 0, 1.0 / np.maximum(high, 1.0), 1.0).astype(np.float32)
        self.register_buffer("obs_scale", torch.from_numpy(scale).flatten(), persistent=False)
        layers: list[nn.Module] = []
        for _ in range(num_layers):
            layers += [layer_init(nn.Linear(width, hidden)), nn.Tanh()]
            width = hidden
        self.mlp = nn.Sequential(*layers)
        self.out_channels = hidden

    def forward(self, obs: Tensor, return_attention_weights: bool = False) -> BackboneOutput:
        x = obs.reshape(obs.shape[0], -1).float() * self.obs_scale
        pooled = self.mlp(x)
        return BackboneOutput(None, pooled, None)


@BACKBONES.register("cnn")
class CNNBackbone(nn.Module):
    """Embedded grid symbols through a small convolutional network (the CNN baseline).

    Each channel's symbol is embedded, the ``C`` embeddings of a cell are concatenated, and
    ``len(channels)`` 3x3 convolutions (padding 1, ReLU) keep the grid size; the flattened map
    goes through ``Linear(hidden)`` + ReLU. It gives no entities, and needs the grid size it was
    built for.

    Args:
        observation_space: ``Box (H, W, C)`` of integer symbols.
        embedding_dim: Size of each channel's symbol embedding.
        channels: Output channels of the successive convolutions.
        hidden: Output width.
        symbol_counts: Symbols per channel; by default ``high + 1`` of the space.

    Shapes:
        obs ``[B, H, W, C]`` -> pooled ``[B, hidden]``.
    """

    entity_channels = None
    returns_attention = False

    def __init__(
        self,
        observation_space: gym.Space,
        embedding_dim: int = 8,
        channels: Sequence[int] = (16, 32),
        hidden: int = 128,
        symbol_counts: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_positive(embedding_dim=embedding_dim, hidden=hidden)
        space = _require_box(observation_space, "CNNBackbone")
        if len(space.shape) != 3 or not np.issubdtype(space.dtype, np.integer):
            raise ValueError(
                "CNNBackbone needs an integer (H, W, C) grid of symbols, got shape "
                f"{space.shape} and dtype {space.dtype}; use FlatBackbone for other observations"
            )
        if not channels:
            raise ValueError("CNNBackbone needs at least one convolution in `channels`")
        height, width, num_channels = space.shape
        symbol_counts = symbol_counts or symbol_counts_from_space(space)
        if len(symbol_counts) != num_channels:
            raise ValueError(
                f"symbol_counts has {len(symbol_counts)} entries but the grid has "
                f"{num_channels} channels"
            )
        self.symbol_counts = tuple(int(n) for n in symbol_counts)
        offsets = np.concatenate([[0], np.cumsum(self.symbol_counts)[:-1]])
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.long), False)
        self.embedding = nn.Embedding(sum(self.symbol_counts), embedding_dim)
        convs: list[nn.Module] = []
        in_channels = num_channels * embedding_dim
        for out_channels in channels:
            convs += [layer_init(nn.Conv2d(in_channels, out_channels, 3, padding=1)), nn.ReLU()]
            in_channels = out_channels
        self.net = nn.Sequential(
            *convs,
            nn.Flatten(),
            layer_init(nn.Linear(in_channels * height * width, hidden)),
            nn.ReLU(),
        )
        self.out_channels = hidden

    def forward(self, obs: Tensor, return_attention_weights: bool = False) -> BackboneOutput:
        x = self.embedding(obs.long() + self.offsets)  # [B, H, W, C, E]
        x = x.flatten(3).permute(0, 3, 1, 2)  # [B, C * E, H, W]
        return BackboneOutput(None, self.net(x), None)

    def extra_repr(self) -> str:
        return f"symbol_counts={self.symbol_counts}"
