"""Shared fixtures: a fixed seed, and factories for entity graphs built without an encoder."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from graphrl.graphs import EntityGraph, grid_positions


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _grid_graph(features: torch.Tensor, mask: torch.Tensor | None = None) -> EntityGraph:
    """An edgeless graph with one node per cell of ``features: [B, H, W, C]`` (row-major)."""
    b, h, w, c = features.shape
    return EntityGraph(
        x=features.reshape(b * h * w, c),
        pos=grid_positions(h, w).repeat(b, 1),
        mask=torch.ones(b, h * w, dtype=torch.bool) if mask is None else mask.reshape(b, h * w),
        num_graphs=b,
        grid_shape=(h, w),
    )


def _set_graph(
    features: torch.Tensor, pos: torch.Tensor | None = None, mask: torch.Tensor | None = None
) -> EntityGraph:
    """An edgeless graph of ``features: [B, N, C]`` entities at ``pos: [B, N, P]``."""
    b, n, c = features.shape
    pos = torch.rand(b, n, 2) if pos is None else pos
    return EntityGraph(
        x=features.reshape(b * n, c),
        pos=pos.reshape(b * n, -1),
        mask=torch.ones(b, n, dtype=torch.bool) if mask is None else mask,
        num_graphs=b,
        all_real=mask is None,
    )


@pytest.fixture
def grid_graph() -> Callable[..., EntityGraph]:
    """Factory: ``grid_graph(features [B, H, W, C], mask [B, H, W] | None) -> EntityGraph``."""
    return _grid_graph


@pytest.fixture
def set_graph() -> Callable[..., EntityGraph]:
    """Factory: ``set_graph(features [B, N, C], pos [B, N, P] | None, mask [B, N] | None)``."""
    return _set_graph
