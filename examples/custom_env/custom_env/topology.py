"""A user topology: each entity hears from its ``k`` nearest entities in the plane."""

from __future__ import annotations

import torch
from torch import Tensor

from graphrl.graphs import TOPOLOGIES, EntityGraph, Topology


@TOPOLOGIES.register("nearest_in_plane")
class NearestInPlane(Topology):
    """Edges ``j -> i`` from the ``k`` entities nearest to ``i`` in ``(x, y)``, itself included.

    The entities' coordinates are columns ``xy`` of their features (the ``vectors`` encoder's
    ``pos`` is the raw feature row), so this also works when other columns (presence) differ.

    Args:
        k: Neighbours per entity (fewer when a scene has fewer entities).
        xy: The two feature columns holding the coordinates.
    """

    name = "nearest_in_plane"

    def __init__(self, k: int = 3, xy: tuple[int, int] = (1, 2)) -> None:
        super().__init__(self_loops=True)
        self.k, self.xy = k, tuple(xy)

    def dense_adjacency(self, graph: EntityGraph) -> Tensor:
        pos = graph.dense_pos()[..., list(self.xy)]  # [B, N, 2]
        dist = torch.cdist(pos, pos)
        real = graph.mask[:, :, None] & graph.mask[:, None, :]
        dist = dist.masked_fill(~real, float("inf"))
        values, idx = dist.topk(min(self.k, graph.nodes_per_graph), dim=-1, largest=False)
        adj = torch.zeros_like(real)
        return adj.scatter_(-1, idx, torch.isfinite(values))  # adj[b, i, j]: edge j -> i
