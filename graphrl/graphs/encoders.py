"""Encoders: observations to entity graphs (one node per entity, no edges yet).

Every encoder maps an observation batch to an :class:`EntityGraph` with ``x: [B * N, D]``,
``pos``, ``mask`` and, for grid-shaped entity sets, ``grid_shape``. Topologies add the edges.

All encoders share one call signature, ``encoder(obs, mask=None, pos=None)``, so models call
them the same way whatever the data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from graphrl.checks import value_check_due
from graphrl.graphs.batch import EntityGraph, grid_positions
from graphrl.graphs.positional import GridPositional
from graphrl.registry import Registry

ENCODERS: Registry[nn.Module] = Registry("encoder")


def _check_grid_obs(obs: Tensor, channels: int, who: str) -> None:
    if obs.dim() != 4 or obs.shape[-1] != channels:
        raise ValueError(
            f"{who} expects observations [B, H, W, C={channels}]; got shape {tuple(obs.shape)} "
            "(add a batch dimension, or check the env's observation space)"
        )


class SymbolEmbedding(nn.Module):
    """Embeds integer symbol channels ``[..., C]`` and sums them: ``[..., C] -> [..., D]``.

    Summing one embedding per channel equals a linear map of the concatenated one-hots, so
    ``mode="onehot"`` (fixed one-hot features then a linear map) and ``mode="embed"`` differ
    only in parametrisation; ``onehot`` keeps the raw one-hot width when ``D`` is None.

    Args:
        symbol_counts: Number of distinct symbols per channel (e.g. env ``symbol_counts``).
        dim: Output width ``D``.
    """

    def __init__(self, symbol_counts: Sequence[int], dim: int) -> None:
        super().__init__()
        self.symbol_counts = tuple(int(c) for c in symbol_counts)
        offsets = torch.tensor([0, *self.symbol_counts[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("counts", torch.tensor(self.symbol_counts), persistent=False)
        self.table = nn.Embedding(sum(self.symbol_counts), dim)

    def forward(self, symbols: Tensor) -> Tensor:
        idx = symbols.long()
        if (
            idx.numel()
            and value_check_due(self, tuple(idx.shape))
            and (bool((idx < 0).any()) or bool((idx >= self.counts).any()))
        ):
            raise ValueError(
                f"observation symbols out of range for symbol_counts={self.symbol_counts} "
                f"(max seen {idx.amax(dim=tuple(range(idx.dim() - 1))).tolist()}); "
                "set symbol_counts from the env"
            )
        return self.table(idx + self.offsets).sum(dim=-2)


@ENCODERS.register("grid")
class GridEncoder(nn.Module):
    """One entity per grid cell: embedded symbols plus positional features.

    Args:
        symbol_counts: Distinct symbols per observation channel.
        out_channels: Entity width ``D``.
        positional: ``raw`` (append x, y then mix, Zambaldi et al.), ``sinusoidal``,
            ``learned`` or ``none``.

    Shapes:
        obs: ``[B, H, W, C]`` integer symbols -> graph with ``N = H * W`` nodes (row-major),
        ``pos = (row, col)``.
    """

    takes = "grid"  # the observation kind it reads: (H, W, C) grids
    every_cell_is_entity = True  # no padding slots: dense layers can skip the mask

    def __init__(
        self, symbol_counts: Sequence[int], out_channels: int = 64, positional: str = "raw"
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.embed = SymbolEmbedding(symbol_counts, out_channels)
        self.positional = GridPositional(positional, out_channels)

    def entity_mask(self, obs: Tensor) -> Tensor:
        """``[B, H, W]`` bool: which cells are entities (all of them here)."""
        return torch.ones(obs.shape[:3], dtype=torch.bool, device=obs.device)

    def forward(
        self, obs: Tensor, mask: Tensor | None = None, pos: Tensor | None = None
    ) -> EntityGraph:
        _check_grid_obs(obs, len(self.embed.symbol_counts), type(self).__name__)
        b, h, w, _ = obs.shape
        cell_pos = grid_positions(h, w, device=obs.device)  # [N, 2]
        x = self.embed(obs).view(b, h * w, self.out_channels)
        x = self.positional(x, cell_pos, (h, w))
        return EntityGraph(
            x=x.reshape(b * h * w, self.out_channels),
            pos=cell_pos.repeat(b, 1),
            mask=self.entity_mask(obs).view(b, h * w),
            num_graphs=b,
            grid_shape=(h, w),
            all_real=self.every_cell_is_entity,
        )


@ENCODERS.register("objects")
class ObjectEncoder(GridEncoder):
    """Like ``grid`` but only non-background cells are entities (masked, variable count).

    By default the node slots stay the ``H * W`` cells, so grid topologies still apply;
    background cells are padding: they get no edges and readouts ignore them. With
    ``compact=True`` the real entities are gathered to the front and the node slots shrink to
    the largest entity count in the batch (``N = max_b |objects_b|``): far cheaper when most
    cells are background (Box-World: ~10 objects among 64 cells); the entity set is no longer
    a grid, but grid topologies still work from the entities' cells (see ``topologies``).

    Args:
        background: Values of observation channel 0 that are not entities (e.g. 0 = floor).
        compact: Drop background cells from the node slots.
    """

    every_cell_is_entity = False

    def __init__(
        self,
        symbol_counts: Sequence[int],
        out_channels: int = 64,
        positional: str = "raw",
        background: Sequence[int] = (0,),
        compact: bool = False,
    ) -> None:
        super().__init__(symbol_counts, out_channels, positional)
        self.register_buffer("background", torch.tensor(list(background)), persistent=False)
        self.compact = compact
        self.fixed_slots: int | None = None  # set by fixed_slots_for(); None: per batch

    def slots_needed(self, obs: Tensor) -> int:
        """Node slots that fit every observation of ``obs: [..., H, W, C]`` (one host sync)."""
        return max(int(self.entity_mask(obs).flatten(-2).sum(-1).max()), 1)

    @contextmanager
    def fixed_slots_for(self, obs: Tensor) -> Iterator[int]:
        """Within the block, compact graphs have the node slots that fit all of ``obs``
        (e.g. a whole rollout) instead of each batch's own maximum: static shapes, no host
        sync per call, one ``torch.compile`` graph per rollout size class."""
        previous, self.fixed_slots = self.fixed_slots, self.slots_needed(obs)
        try:
            yield self.fixed_slots
        finally:
            self.fixed_slots = previous

    def entity_mask(self, obs: Tensor) -> Tensor:
        return ~torch.isin(obs[..., 0].long(), self.background)

    def forward(
        self, obs: Tensor, mask: Tensor | None = None, pos: Tensor | None = None
    ) -> EntityGraph:
        if not self.compact:
            return super().forward(obs, mask, pos)
        _check_grid_obs(obs, len(self.embed.symbol_counts), type(self).__name__)
        b, h, w, c = obs.shape
        cells = self.entity_mask(obs).view(b, h * w)
        counts = cells.sum(1)
        n = self.fixed_slots if self.fixed_slots is not None else max(int(counts.max()), 1)
        # Real cells first (row-major order kept by the stable sort), then cut to n slots.
        order = torch.argsort((~cells).to(torch.int8), dim=1, stable=True)[:, :n]  # [B, n]
        symbols = obs.reshape(b, h * w, c).gather(1, order.unsqueeze(-1).expand(-1, -1, c))
        cell_pos = grid_positions(h, w, device=obs.device)[order]  # [B, n, 2]
        x = self.positional(self.embed(symbols), cell_pos, (h, w))
        return EntityGraph(
            x=x.reshape(b * n, self.out_channels),
            pos=cell_pos.reshape(b * n, 2),
            mask=torch.arange(n, device=obs.device) < counts.unsqueeze(1),
            num_graphs=b,
        )


@ENCODERS.register("pixels")
class PixelEncoder(nn.Module):
    """A small CNN; every feature-map cell becomes an entity with its coordinates appended.

    This is Zambaldi et al.'s input module: ``conv -> relu -> conv -> relu`` then each of the
    ``h x w`` cells is an entity ``[features, x, y]``, projected to ``out_channels``.

    Args:
        in_channels: Image channels (3 for RGB).
        out_channels: Entity width ``D``.
        hidden_channels: Channels of the two conv layers.
        kernel_size: Conv kernel size; ``stride``: conv stride (each layer).
        positional: As for ``grid`` (``raw`` appends x, y as in the paper).

    Shapes:
        obs: ``[B, H, W, C]`` uint8 or float image -> graph with ``N = h * w`` nodes.
    """

    takes = "grid"

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 64,
        hidden_channels: Sequence[int] = (12, 24),
        kernel_size: int = 2,
        stride: int = 1,
        positional: str = "raw",
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        layers: list[nn.Module] = []
        c = in_channels
        for hc in hidden_channels:
            layers += [nn.Conv2d(c, hc, kernel_size, stride), nn.ReLU()]
            c = hc
        self.cnn = nn.Sequential(*layers)
        self.proj = nn.Linear(c, out_channels)
        self.positional = GridPositional(positional, out_channels)

    def forward(
        self, obs: Tensor, mask: Tensor | None = None, pos: Tensor | None = None
    ) -> EntityGraph:
        _check_grid_obs(obs, self.in_channels, type(self).__name__)
        img = obs.permute(0, 3, 1, 2).float()
        if obs.dtype == torch.uint8:
            img = img / 255.0
        fmap = self.cnn(img)  # [B, c, h, w]
        b, _, h, w = fmap.shape
        x = self.proj(fmap.flatten(2).transpose(1, 2))  # [B, h*w, D]
        cell_pos = grid_positions(h, w, device=obs.device)
        x = self.positional(x, cell_pos, (h, w))
        return EntityGraph(
            x=x.reshape(b * h * w, self.out_channels),
            pos=cell_pos.repeat(b, 1),
            mask=torch.ones(b, h * w, dtype=torch.bool, device=obs.device),
            num_graphs=b,
            grid_shape=(h, w),
            all_real=True,
        )


@dataclass
class EntitySet:
    """An entity-set observation batch in the one form the ``vectors`` encoder reads.

    Policies build it from their observation space (``Box (N, F)``, a ``Dict`` of an entity
    set plus globals, or a padded ``Graph``); supervised data passes plain tensors instead.

    Attributes:
        entities: ``[B, N, F]`` entity features.
        mask: ``[B, N]`` bool, entities that exist (None: decided by the encoder's presence).
        globals: ``[B, G]`` global features (held key, goal, time), or None.
        edge_links: ``[B, M, 2]`` the env's own edges ``(source, target)`` within each graph.
        edge_mask: ``[B, M]`` bool, real edges.
        edge_types: ``[B, M]`` long relation ids of the edges, or None (untyped).
    """

    entities: Tensor
    mask: Tensor | None = None
    globals: Tensor | None = None
    edge_links: Tensor | None = None
    edge_mask: Tensor | None = None
    edge_types: Tensor | None = None


PRESENCE_RULES = ("all", "nonzero")


@ENCODERS.register("vectors")
class VectorEncoder(nn.Module):
    """A set of vectors, one entity each, through a shared MLP.

    Absent entities (padding) are masked: they get no edges and readouts and pointer heads
    ignore them. Which entities are present is the caller's ``mask`` and, in config,
    ``presence``: a feature column whose value > 0.5 marks presence (highway-env's
    ``presence``), ``"nonzero"`` (all-zero rows are absent) or ``"all"``.

    Global features (an :class:`EntitySet` with ``globals``) enter as one extra node appended
    after the entity slots (``globals_as="node"``: entities attend to it and it is pooled), or
    condition the readout (``globals_as="readout"``: ``graph.context [B, D]``, added to the
    pooled vector by the model).

    Args:
        in_channels: Feature width ``F`` of each vector.
        out_channels: Entity width ``D``.
        hidden_channels: Width of the hidden layer (0 for a single linear map).
        presence: ``"all"``, ``"nonzero"`` or the index of a presence feature.
        global_channels: Width ``G`` of the global features (0: none).
        globals_as: ``"node"`` or ``"readout"``.

    Shapes:
        obs: ``[B, N, F]`` or an ``EntitySet``; mask: ``[B, N]`` bool (default all True); pos:
        ``[B, N, P]`` coordinates for distance topologies (default the vectors themselves).
        The graph has ``N`` node slots, ``N + 1`` with a global node (the last slot).
    """

    takes = "set"

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 64,
        hidden_channels: int = 0,
        presence: int | str = "all",
        global_channels: int = 0,
        globals_as: str = "node",
    ) -> None:
        super().__init__()
        if isinstance(presence, str) and presence not in PRESENCE_RULES:
            raise ValueError(
                f"presence must be a feature index or one of {PRESENCE_RULES}, got {presence!r}"
            )
        if isinstance(presence, int) and not 0 <= presence < in_channels:
            raise ValueError(
                f"presence feature {presence} is not a column of the {in_channels} features"
            )
        if globals_as not in ("node", "readout"):
            raise ValueError(f"globals_as must be 'node' or 'readout', got {globals_as!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.presence = presence
        self.globals_as = globals_as
        if hidden_channels:
            self.mlp: nn.Module = nn.Sequential(
                nn.Linear(in_channels, hidden_channels),
                nn.ReLU(),
                nn.Linear(hidden_channels, out_channels),
            )
        else:
            self.mlp = nn.Linear(in_channels, out_channels)
        self.global_proj = nn.Linear(global_channels, out_channels) if global_channels else None

    @property
    def global_node(self) -> bool:
        """True when the graph has one extra node (the last slot) for the global features."""
        return self.global_proj is not None and self.globals_as == "node"

    def present(self, entities: Tensor) -> Tensor:
        """``[B, N]`` bool: the entities that exist by the ``presence`` rule."""
        if self.presence == "all":
            return torch.ones(entities.shape[:2], dtype=torch.bool, device=entities.device)
        if self.presence == "nonzero":
            return (entities != 0).any(-1)
        return entities[..., self.presence] > 0.5

    def forward(
        self, obs: Tensor | EntitySet, mask: Tensor | None = None, pos: Tensor | None = None
    ) -> EntityGraph:
        items = obs if isinstance(obs, EntitySet) else EntitySet(obs, mask)
        entities = items.entities
        if entities.dim() != 3 or entities.shape[-1] != self.in_channels:
            raise ValueError(
                f"VectorEncoder expects [B, N, F={self.in_channels}] vectors; got shape "
                f"{tuple(entities.shape)} (set in_channels to the data's feature width)"
            )
        b, n, _ = entities.shape
        mask = self.present(entities)
        if items.mask is not None:
            if items.mask.shape != (b, n):
                raise ValueError(f"mask must be [B, N]={(b, n)}, got {tuple(items.mask.shape)}")
            mask = mask & items.mask.bool()
        if pos is None:
            pos = entities
        elif pos.dim() != 3 or pos.shape[:2] != (b, n):
            raise ValueError(f"pos must be [B, N, P] with B, N={(b, n)}, got {tuple(pos.shape)}")
        x = self.mlp(entities.float())
        pos = pos.float()
        context = None
        if (items.globals is None) != (self.global_proj is None):
            raise ValueError(
                "VectorEncoder: global features given but global_channels=0, or the reverse "
                "(set global_channels to the width of the globals)"
            )
        if self.global_proj is not None:
            glob = self.global_proj(items.globals.reshape(b, -1).float())  # [B, D]
            if self.global_node:
                x = torch.cat([x, glob.unsqueeze(1)], dim=1)
                pos = torch.cat([pos, pos.new_zeros(b, 1, pos.shape[-1])], dim=1)
                mask = torch.cat([mask, mask.new_ones(b, 1)], dim=1)
            else:
                context = glob
        slots = x.shape[1]
        given, given_type = _batch_edges(items, mask, slots)
        return EntityGraph(
            x=x.reshape(b * slots, self.out_channels),
            pos=pos.reshape(b * slots, pos.shape[-1]),
            mask=mask.bool(),
            num_graphs=b,
            given_edge_index=given,
            given_edge_type=given_type,
            context=context,
            all_real=self.presence == "all" and items.mask is None,
        )


def _batch_edges(items: EntitySet, mask: Tensor, slots: int) -> tuple[Tensor | None, Tensor | None]:
    """The env's per-graph edges as one ``[2, E]`` batch edge list (and ``[E]`` types).

    Edges whose ends are padding or absent entities are dropped.
    """
    if items.edge_links is None:
        return None, None
    b, m, _ = items.edge_links.shape
    links = items.edge_links.long()
    keep = torch.ones(b, m, dtype=torch.bool, device=links.device)
    if items.edge_mask is not None:
        keep = keep & items.edge_mask.bool()
    links = links.clamp(0, slots - 1)
    rows = torch.arange(b, device=links.device).unsqueeze(1).expand(b, m)
    keep = keep & mask[rows, links[..., 0]] & mask[rows, links[..., 1]]
    offset = (rows * slots).unsqueeze(-1)
    edge_index = (links + offset)[keep].t()  # [2, E] (source, target)
    types = None if items.edge_types is None else items.edge_types.long()[keep]
    return edge_index, types


def build_encoder(name: str, **kwargs) -> nn.Module:
    """Build the encoder registered as ``name`` (see ``ENCODERS.names()``)."""
    return ENCODERS.build(name, **kwargs)
