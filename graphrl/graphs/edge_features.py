"""Geometric edge features computed from node coordinates, for sparse and dense paths alike."""

from __future__ import annotations

import torch
from torch import Tensor

EDGE_FEATURES = ("none", "offset", "distance", "offset_distance")


def pairwise_edge_features(kind: str, pos_src: Tensor, pos_dst: Tensor) -> Tensor | None:
    """Geometric edge features from coordinates, shared by the sparse and the dense paths.

    Args:
        kind: ``"none"``, ``"offset"`` (``pos_j - pos_i``), ``"distance"`` (``|pos_j - pos_i|``)
            or ``"offset_distance"`` (both).
        pos_src: ``[..., P]`` sender coordinates.
        pos_dst: ``[..., P]`` receiver coordinates (broadcastable to ``pos_src``).

    Returns:
        ``[..., F]`` features (``F = P``, ``1`` or ``P + 1``), or None for ``"none"``.
    """
    if kind == "none":
        return None
    offset = pos_src - pos_dst
    dist = offset.norm(dim=-1, keepdim=True)
    if kind == "offset":
        return offset
    if kind == "distance":
        return dist
    if kind == "offset_distance":
        return torch.cat([offset, dist], dim=-1)
    raise ValueError(f"unknown edge_features {kind!r}; choose one of: {', '.join(EDGE_FEATURES)}")


def edge_feature_dim(kind: str, pos_dim: int) -> int:
    """Width ``F`` of :func:`pairwise_edge_features` for coordinates of width ``pos_dim``."""
    return {"none": 0, "offset": pos_dim, "distance": 1, "offset_distance": pos_dim + 1}[kind]
