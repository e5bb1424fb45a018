"""Positional features for grid entities: raw coordinates, sinusoidal, or learned.

Attention and message passing are permutation-equivariant: without positional features an
entity does not know where it is. Zambaldi et al. append the (x, y) coordinates to every
feature-map cell; Vaswani et al. add sinusoids; a learned table is the third usual choice.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

POSITIONAL = ("none", "raw", "sinusoidal", "learned")


def normalized_coordinates(pos: Tensor, grid_shape: tuple[int, int]) -> Tensor:
    """Map ``(row, col)`` cell coordinates ``[..., 2]`` to ``[-1, 1]`` (Zambaldi's x, y)."""
    scale = pos.new_tensor([max(grid_shape[0] - 1, 1), max(grid_shape[1] - 1, 1)])
    return pos / scale * 2.0 - 1.0


def sinusoidal_features(pos: Tensor, dim: int, max_period: float = 64.0) -> Tensor:
    """Transformer-style sinusoids of each coordinate, ``[..., P] -> [..., dim]``.

    ``dim`` is split evenly across the ``P`` coordinates (sin and cos per frequency); a
    remainder is zero-padded.
    """
    p = pos.shape[-1]
    per_coord = dim // p
    half = per_coord // 2
    if half == 0:
        raise ValueError(f"sinusoidal positions need dim >= {2 * p}, got {dim}")
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=pos.device, dtype=pos.dtype) / half
    )
    angles = pos.unsqueeze(-1) * freqs  # [..., P, half]
    feats = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # [..., P * 2 * half]
    pad = dim - feats.shape[-1]
    return nn.functional.pad(feats, (0, pad)) if pad else feats


class GridPositional(nn.Module):
    """Adds positional information to grid entities.

    ``raw`` concatenates the normalised coordinates and projects back to ``dim`` (a linear map
    of ``[features, x, y]``, as appending then mixing in Zambaldi et al.); ``sinusoidal`` adds
    fixed sinusoids; ``learned`` adds a learned row embedding plus a learned column embedding
    (``max_size`` rows/columns at most); ``none`` leaves features unchanged.

    Args:
        kind: One of ``none``, ``raw``, ``sinusoidal``, ``learned``.
        dim: Feature width ``D`` (unchanged by this module).
        max_size: Largest grid side for ``learned``.

    Shapes:
        x: ``[B, N, D]``, pos: ``[N, 2]`` (shared) or ``[B, N, 2]`` integer cell coordinates
        -> ``[B, N, D]``.
    """

    def __init__(self, kind: str, dim: int, max_size: int = 64) -> None:
        super().__init__()
        if kind not in POSITIONAL:
            raise ValueError(f"unknown positional {kind!r}; choose one of: {', '.join(POSITIONAL)}")
        self.kind = kind
        self.dim = dim
        self.max_size = max_size
        if kind == "raw":
            self.proj = nn.Linear(dim + 2, dim)
        elif kind == "learned":
            self.rows = nn.Embedding(max_size, dim)
            self.cols = nn.Embedding(max_size, dim)

    def forward(self, x: Tensor, pos: Tensor, grid_shape: tuple[int, int]) -> Tensor:
        if self.kind == "none":
            return x
        if self.kind == "raw":
            coords = normalized_coordinates(pos, grid_shape).to(x.dtype)
            return self.proj(torch.cat([x, coords.expand(x.shape[0], -1, -1)], dim=-1))
        if self.kind == "sinusoidal":
            return x + sinusoidal_features(pos.to(x.dtype), self.dim)
        if max(grid_shape) > self.max_size:
            raise ValueError(
                f"learned positions were built for grids up to {self.max_size}; got {grid_shape}: "
                "raise max_size"
            )
        idx = pos.long()
        return x + self.rows(idx[..., 0]) + self.cols(idx[..., 1])

    def extra_repr(self) -> str:
        return f"{self.kind!r}, dim={self.dim}"
