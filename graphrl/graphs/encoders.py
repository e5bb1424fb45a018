"""Encoders: observations to entity graphs (one node per entity, no edges yet).

Every encoder maps an observation batch to an :class:`EntityGraph` with ``x: [B * N, D]``,
``pos``, ``mask`` and, for grid-shaped entity sets, ``grid_shape``. Topologies add the edges.

All encoders share one call signature, ``encoder(obs, mask=None, pos=None)``, so models call
them the same way whatever the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

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
            not torch.jit.is_scripting()
            and idx.numel()
            and (
                bool((idx < 0).any())
                or bool((idx >= self.offsets.new_tensor(self.symbol_counts)).any())
            )
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
        n = max(int(counts.max()), 1)
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
        )


@ENCODERS.register("vectors")
class VectorEncoder(nn.Module):
    """A set of vectors, one entity each, through a shared MLP.

    Args:
        in_channels: Feature width ``F`` of each vector.
        out_channels: Entity width ``D``.
        hidden_channels: Width of the hidden layer (0 for a single linear map).

    Shapes:
        obs: ``[B, N, F]``; mask: ``[B, N]`` bool (default all True); pos: ``[B, N, P]``
        coordinates for distance topologies (default the vectors themselves).
    """

    def __init__(self, in_channels: int, out_channels: int = 64, hidden_channels: int = 0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        if hidden_channels:
            self.mlp: nn.Module = nn.Sequential(
                nn.Linear(in_channels, hidden_channels),
                nn.ReLU(),
                nn.Linear(hidden_channels, out_channels),
            )
        else:
            self.mlp = nn.Linear(in_channels, out_channels)

    def forward(
        self, obs: Tensor, mask: Tensor | None = None, pos: Tensor | None = None
    ) -> EntityGraph:
        if obs.dim() != 3 or obs.shape[-1] != self.in_channels:
            raise ValueError(
                f"VectorEncoder expects [B, N, F={self.in_channels}] vectors; got shape "
                f"{tuple(obs.shape)} (set in_channels to the data's feature width)"
            )
        b, n, _ = obs.shape
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=obs.device)
        elif mask.shape != (b, n):
            raise ValueError(f"mask must be [B, N]={(b, n)}, got {tuple(mask.shape)}")
        if pos is None:
            pos = obs
        elif pos.dim() != 3 or pos.shape[:2] != (b, n):
            raise ValueError(f"pos must be [B, N, P] with B, N={(b, n)}, got {tuple(pos.shape)}")
        x = self.mlp(obs.float())
        return EntityGraph(
            x=x.reshape(b * n, self.out_channels),
            pos=pos.reshape(b * n, pos.shape[-1]).float(),
            mask=mask.bool(),
            num_graphs=b,
        )


def build_encoder(name: str, **kwargs) -> nn.Module:
    """Build the encoder registered as ``name`` (see ``ENCODERS.names()``)."""
    return ENCODERS.build(name, **kwargs)
