"""Topologies: which entities exchange messages, chosen by name in config.

A topology takes an :class:`EntityGraph` without edges and returns it with edges. Fixed
topologies (``complete``, ``self``, ``grid4``, ``grid8``, ``criss_cross``, ``relative``,
``memory``) are built from a per-size template ``[2, E0]`` that is cached and offset by graph
index (``b * N``) for the whole batch: no Python loop per sample. Data-dependent topologies
(``knn``, ``radius``) compute one batched distance matrix. Masked (padded) entity sets get
edges only between real entities. Grid topologies (``grid4``, ``grid8``, ``criss_cross``,
``relative``) also run on entity sets that are not a whole grid but sit on integer cells
(``objects`` with ``compact=True``): their edges then come from the entities' ``(row, col)``
offsets, one batched ``[B, N, N]`` comparison, and equal the grid edges among those cells.

Edge direction: ``edge_index[0]`` is the source j, ``edge_index[1]`` the target i (j -> i).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from graphrl.checks import value_check_due
from graphrl.graphs.batch import EntityGraph
from graphrl.registry import Registry

TOPOLOGIES: Registry[Topology] = Registry("topology")


class Topology(nn.Module):
    """Base class: ``topology(graph) -> graph`` with edges (and edge types for typed ones).

    Subclasses implement :meth:`template` (fixed topologies) or :meth:`dense_adjacency`
    (data-dependent ones). A topology has no parameters; it is an ``nn.Module`` only so that
    models can hold it as a submodule and print it.

    Class attributes declare what a topology gives (layers read them from the graph):
    ``num_relations`` edge types, ``needs_grid``, ``complete`` (every real pair connected) and
    ``one_edge_per_relation`` (on a whole grid, every node receives and sends at most one edge
    of each relation, so R-GCN runs as im2col).

    Args:
        self_loops: Add the edge ``i -> i`` for every real node.
    """

    name: str = "topology"
    num_relations: int = 1
    needs_grid: bool = False
    complete: bool = False
    one_edge_per_relation: bool = False
    batch_cache_size: int = 4  # whole-batch edge lists kept, per (B, N, grid, device)

    def __init__(self, self_loops: bool = False) -> None:
        super().__init__()
        self.self_loops = self_loops
        self._cache: dict[tuple, tuple[Tensor, Tensor, Tensor | None]] = {}
        self._batch_cache: dict[tuple, tuple[Tensor, Tensor | None]] = {}

    # -- to override ------------------------------------------------------------------------
    def template(self, n: int, grid_shape: tuple[int, int] | None) -> tuple[Tensor, Tensor | None]:
        """Edges of one graph of ``n`` nodes: ``([2, E0] (src, dst), [E0] types or None)``."""
        raise NotImplementedError(f"{type(self).__name__} defines no template")

    def dense_adjacency(self, graph: EntityGraph) -> Tensor:
        """``[B, N, N]`` bool, ``adj[b, i, j]``: edge ``j -> i`` (data-dependent topologies)."""
        raise NotImplementedError(f"{type(self).__name__} has no data-dependent adjacency")

    @property
    def data_dependent(self) -> bool:
        return type(self).dense_adjacency is not Topology.dense_adjacency

    def offset_relation(self, offset: Tensor) -> Tensor:
        """Grid topologies on entities at cells: relation id of edge ``j -> i`` from
        ``offset = pos_j - pos_i`` (``[..., 2]`` long, ``(d_row, d_col)``), ``-1`` for no edge.

        Must give the same edges (and types) as :meth:`template` on a whole grid.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no offset relation")

    # -- shared machinery -------------------------------------------------------------------
    def _check(self, graph: EntityGraph) -> None:
        """Grid topologies need a grid or entities at cells (a value check: first call per
        shape, every call under ``--debug``)."""
        if not self.needs_grid or graph.grid_shape is not None:
            return
        if value_check_due(self, ("cells", tuple(graph.pos.shape))) and not _on_cells(graph):
            raise ValueError(
                f"topology {self.name!r} needs grid-shaped entities (encoders grid, objects or "
                "pixels) or entities at integer (row, col) cells; this entity set has neither: "
                "use complete, knn or radius"
            )

    def _from_cells(self, graph: EntityGraph) -> EntityGraph:
        """Edges among entities at cells, from their pairwise offsets (no grid needed)."""
        n = graph.nodes_per_graph
        cells = graph.dense_pos().round().long()  # [B, N, 2]
        relation = self.offset_relation(cells[:, None, :, :] - cells[:, :, None, :])  # [B, i, j]
        real = graph.mask[:, :, None] & graph.mask[:, None, :]
        if self.self_loops:  # only untyped topologies offer the option
            eye = torch.eye(n, dtype=torch.bool, device=relation.device)
            relation = relation.masked_fill(eye, 0)
        relation = relation.masked_fill(~real, -1)
        adj = relation >= 0  # adj[b, i, j]: edge j -> i
        typed = self.num_relations > 1

        def build() -> tuple[Tensor, Tensor | None]:
            graph_idx, dst, src = adj.nonzero(as_tuple=True)
            edge_type = relation[graph_idx, dst, src] if typed else None
            return torch.stack([src + graph_idx * n, dst + graph_idx * n]), edge_type

        return replace(
            graph,
            topology=self.name,
            num_relations=self.num_relations,
            edge_type=None,
            dense_adj=adj,
            complete=False,
            one_edge_per_relation=False,  # two entities may share a cell
            _edge_index=None,
            _edge_builder=build,
        )

    def _cached_template(
        self, n: int, grid_shape: tuple[int, int] | None, device: torch.device
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(edge_index0 [2, E0], dense_adj0 [N, N], edge_type0 [E0] | None)`` on ``device``."""
        key = (n, grid_shape, str(device))
        if key not in self._cache:
            edge_index, edge_type = self.template(n, grid_shape)
            if self.self_loops:  # only untyped topologies offer the option
                edge_index = torch.cat([edge_index, torch.arange(n).expand(2, n)], dim=1)
            adj = torch.zeros(n, n, dtype=torch.bool)
            adj[edge_index[1], edge_index[0]] = True
            self._cache[key] = (
                edge_index.to(device),
                adj.to(device),
                None if edge_type is None else edge_type.to(device),
            )
        return self._cache[key]

    def _batch_edges(
        self, b: int, n: int, grid_shape: tuple[int, int] | None, device: torch.device
    ) -> tuple[Tensor, Tensor | None]:
        """The template offset by ``g * n`` for each of the ``b`` graphs: ``([2, b * E0],
        [b * E0] | None)``, cached per ``(b, n, grid_shape, device)`` (it depends on shapes
        alone; padding is dropped afterwards). Callers must not modify the returned tensors.
        """
        key = (b, n, grid_shape, str(device))
        cached = self._batch_cache.get(key)
        if cached is None:
            edge_index0, _, edge_type0 = self._cached_template(n, grid_shape, device)
            offsets = torch.arange(b, device=device).view(1, b, 1) * n
            edge_index = (edge_index0.unsqueeze(1) + offsets).reshape(2, -1)
            edge_type = None if edge_type0 is None else edge_type0.repeat(b)
            if len(self._batch_cache) >= self.batch_cache_size:
                self._batch_cache.pop(next(iter(self._batch_cache)))  # the oldest
            cached = self._batch_cache[key] = (edge_index, edge_type)
        return cached

    def forward(self, graph: EntityGraph) -> EntityGraph:
        """Return ``graph`` with this topology's edges (built lazily, on first use).

        No host sync here: whether padding must be dropped from the edge list is decided when
        the list is built, which the dense attention path never asks for.
        """
        self._check(graph)
        if self.needs_grid and graph.grid_shape is None:
            return self._from_cells(graph)
        b, n = graph.mask.shape
        device = graph.x.device

        if self.data_dependent:
            adj = self.dense_adjacency(graph)  # [B, N, N]

            def build() -> tuple[Tensor, Tensor | None]:
                graph_idx, dst, src = adj.nonzero(as_tuple=True)
                return torch.stack([src + graph_idx * n, dst + graph_idx * n]), None

            return replace(
                graph,
                topology=self.name,
                num_relations=1,
                edge_type=None,
                dense_adj=adj,
                complete=False,
                one_edge_per_relation=False,
                _edge_index=None,
                _edge_builder=build,
            )

        _, adj0, _ = self._cached_template(n, graph.grid_shape, device)
        grid_shape, mask = graph.grid_shape, graph.mask

        def build() -> tuple[Tensor, Tensor | None]:
            edge_index, edge_type = self._batch_edges(b, n, grid_shape, device)
            # all_real is known from shapes; otherwise one host sync per edge-list build
            if not graph.all_real and not bool(mask.all()):
                node_mask = mask.reshape(-1)
                keep = node_mask[edge_index[0]] & node_mask[edge_index[1]]
                edge_index = edge_index[:, keep]
                edge_type = None if edge_type is None else edge_type[keep]
            return edge_index, edge_type

        return replace(
            graph,
            topology=self.name,
            num_relations=self.num_relations,
            edge_type=None,
            dense_adj=adj0,
            complete=self.complete,
            one_edge_per_relation=self.one_edge_per_relation,
            _edge_index=None,
            _edge_builder=build,
        )

    def extra_repr(self) -> str:
        return f"self_loops={self.self_loops}" if self.self_loops else ""


def _on_cells(graph: EntityGraph) -> bool:
    """True when every entity coordinate is an integer ``(row, col)`` pair."""
    pos = graph.pos
    return pos.shape[-1] == 2 and bool(torch.equal(pos, pos.round()))


def _offset_edges(height: int, width: int, offsets: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
    """Edges ``(r + dr, c + dc) -> (r, c)`` inside an ``H x W`` grid, typed by offset index.

    Returns:
        ``([2, E0] edge_index, [E0] edge_type)`` where ``edge_type`` indexes ``offsets``.
    """
    rows = torch.arange(height).repeat_interleave(width)
    cols = torch.arange(width).repeat(height)
    srcs, dsts, types = [], [], []
    for t, (dr, dc) in enumerate(offsets):  # loop over the k*k offsets, once per template
        r, c = rows + dr, cols + dc
        ok = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        dst = torch.nonzero(ok).squeeze(1)
        srcs.append(r[ok] * width + c[ok])
        dsts.append(dst)
        types.append(torch.full_like(dst, t))
    return torch.stack([torch.cat(srcs), torch.cat(dsts)]), torch.cat(types)


@TOPOLOGIES.register("complete")
class Complete(Topology):
    """Every real entity receives from every real entity, itself included (attention's graph)."""

    name = "complete"

    def __init__(self, self_loops: bool = True) -> None:
        super().__init__(self_loops=self_loops)

    @property
    def complete(self) -> bool:  # without self-loops it is "all but the diagonal"
        return self.self_loops

    def template(self, n: int, grid_shape: tuple[int, int] | None) -> tuple[Tensor, None]:
        src = torch.arange(n).repeat(n)
        dst = torch.arange(n).repeat_interleave(n)
        keep = src != dst
        return torch.stack([src[keep], dst[keep]]), None


@TOPOLOGIES.register("self")
class SelfOnly(Topology):
    """Each entity only receives from itself: no relations (the DeepSets baseline)."""

    name = "self"
    one_edge_per_relation = True

    def __init__(self) -> None:
        super().__init__(self_loops=False)

    def template(self, n: int, grid_shape: tuple[int, int] | None) -> tuple[Tensor, None]:
        return torch.arange(n).expand(2, n).clone(), None


class _GridOffsets(Topology):
    """Untyped edges from a fixed set of grid offsets."""

    needs_grid = True
    offsets: tuple[tuple[int, int], ...] = ()

    def template(self, n: int, grid_shape: tuple[int, int] | None) -> tuple[Tensor, None]:
        assert grid_shape is not None
        edge_index, _ = _offset_edges(*grid_shape, list(self.offsets))
        return edge_index, None

    def offset_relation(self, offset: Tensor) -> Tensor:
        table = offset.new_tensor(self.offsets)  # [K, 2]
        hit = (offset.unsqueeze(-2) == table).all(-1).any(-1)
        return torch.where(hit, 0, -1)


@TOPOLOGIES.register("grid4")
class Grid4(_GridOffsets):
    """4-neighbourhood (von Neumann) on a grid."""

    name = "grid4"
    offsets = ((-1, 0), (1, 0), (0, -1), (0, 1))


@TOPOLOGIES.register("grid8")
class Grid8(_GridOffsets):
    """8-neighbourhood (Moore) on a grid."""

    name = "grid8"
    offsets = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))


@TOPOLOGIES.register("criss_cross")
class CrissCross(Topology):
    """Every cell receives from every other cell in its row or its column (CCNet, 2019)."""

    name = "criss_cross"
    needs_grid = True

    def template(self, n: int, grid_shape: tuple[int, int] | None) -> tuple[Tensor, None]:
        assert grid_shape is not None
        h, w = grid_shape
        offsets = [(0, dc) for dc in range(-w + 1, w) if dc] + [
            (dr, 0) for dr in range(-h + 1, h) if dr
        ]
        edge_index, _ = _offset_edges(h, w, offsets)
        return edge_index, None

    def offset_relation(self, offset: Tensor) -> Tensor:
        same_row, same_col = offset[..., 0] == 0, offset[..., 1] == 0
        return torch.where(same_row ^ same_col, 0, -1)


@TOPOLOGIES.register("relative")
class Relative(Topology):
    """Typed edges: one relation per relative offset in a ``k x k`` window (centre included).

    Relation ``t = (dr + k//2) * k + (dc + k//2)`` carries ``(r + dr, c + dc) -> (r, c)``, so an
    R-GCN on this topology with relation weights equal to a kernel's taps *is* ``Conv2d``
    (kernel ``k``, padding ``k // 2``): missing neighbours at the border are zero padding.

    Args:
        kernel_size: Odd window size ``k``; ``num_relations = k * k``.
    """

    name = "relative"
    needs_grid = True
    one_edge_per_relation = True  # offset t: at most one sender and one receiver per cell

    def __init__(self, kernel_size: int = 3) -> None:
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"relative topology needs an odd kernel_size >= 1, got {kernel_size}")
        super().__init__(self_loops=False)
        self.kernel_size = kernel_size
        self.num_relations = kernel_size * kernel_size

    def template(self, n: int, grid_shape: tuple[int, int] | None) -> tuple[Tensor, Tensor]:
        assert grid_shape is not None
        p = self.kernel_size // 2
        offsets = [(dr, dc) for dr in range(-p, p + 1) for dc in range(-p, p + 1)]
        return _offset_edges(*grid_shape, offsets)

    def offset_relation(self, offset: Tensor) -> Tensor:
        p = self.kernel_size // 2
        inside = (offset.abs() <= p).all(-1)
        relation = (offset[..., 0] + p) * self.kernel_size + (offset[..., 1] + p)
        return torch.where(inside, relation, -1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


@TOPOLOGIES.register("memory")
class Memory(Topology):
    """Relational-memory topology: the first ``num_slots`` nodes are memory slots, which
    receive from every slot and every input; inputs receive nothing (Santoro et al. 2018).

    Args:
        num_slots: Number of memory slots at the start of each graph's node list.
    """

    name = "memory"

    def __init__(self, num_slots: int = 1) -> None:
        if num_slots < 1:
            raise ValueError(f"memory topology needs num_slots >= 1, got {num_slots}")
        super().__init__(self_loops=False)
        self.num_slots = num_slots

    def template(self, n: int, grid_shape: tuple[int, int] | None) -> tuple[Tensor, None]:
        if n < self.num_slots:
            raise ValueError(f"memory topology: {n} nodes but num_slots={self.num_slots}")
        src = torch.arange(n).repeat(self.num_slots)
        dst = torch.arange(self.num_slots).repeat_interleave(n)
        return torch.stack([src, dst]), None

    def extra_repr(self) -> str:
        return f"num_slots={self.num_slots}"


class _DistanceTopology(Topology):
    """Shared code of ``knn`` and ``radius``: a batched ``[B, N, N]`` distance on ``pos``."""

    def _distances(self, graph: EntityGraph) -> Tensor:
        pos = graph.dense_pos()
        dist = torch.cdist(pos, pos)  # [B, N, N], dist[b, i, j] = |pos_i - pos_j|
        valid = graph.mask[:, :, None] & graph.mask[:, None, :]
        if not self.self_loops:
            valid = valid & ~torch.eye(graph.nodes_per_graph, dtype=torch.bool, device=pos.device)
        return dist.masked_fill(~valid, float("inf"))


@TOPOLOGIES.register("knn")
class KNN(_DistanceTopology):
    """Each entity receives from its ``k`` nearest real entities in ``pos`` space.

    Args:
        k: Number of neighbours (fewer when a graph has fewer real entities).
        self_loops: Count the entity itself among its neighbours.
    """

    name = "knn"

    def __init__(self, k: int = 4, self_loops: bool = False) -> None:
        if k < 1:
            raise ValueError(f"knn topology needs k >= 1, got {k}")
        super().__init__(self_loops=self_loops)
        self.k = k

    def dense_adjacency(self, graph: EntityGraph) -> Tensor:
        dist = self._distances(graph)
        k = min(self.k, graph.nodes_per_graph)
        values, idx = dist.topk(k, dim=-1, largest=False)
        adj = torch.zeros_like(dist, dtype=torch.bool)
        adj.scatter_(-1, idx, torch.isfinite(values))
        return adj

    def extra_repr(self) -> str:
        return f"k={self.k}, self_loops={self.self_loops}"


@TOPOLOGIES.register("radius")
class Radius(_DistanceTopology):
    """Each entity receives from every real entity within distance ``r`` in ``pos`` space.

    Args:
        r: Radius (inclusive).
        self_loops: Include the entity itself.
    """

    name = "radius"

    def __init__(self, r: float = 1.5, self_loops: bool = False) -> None:
        if r <= 0:
            raise ValueError(f"radius topology needs r > 0, got {r}")
        super().__init__(self_loops=self_loops)
        self.r = r

    def dense_adjacency(self, graph: EntityGraph) -> Tensor:
        return self._distances(graph) <= self.r

    def extra_repr(self) -> str:
        return f"r={self.r}, self_loops={self.self_loops}"


@TOPOLOGIES.register("given")
class Given(Topology):
    """The env's own edges (a ``Graph`` observation's ``edge_links``), as it gave them.

    Args:
        num_relations: Edge types of the env's edges (a ``Discrete(k)`` edge space: ``k``);
            1 for untyped edges. Policies fill it in from the observation space.
    """

    name = "given"

    def __init__(self, num_relations: int = 1) -> None:
        if num_relations < 1:
            raise ValueError(f"given topology needs num_relations >= 1, got {num_relations}")
        super().__init__(self_loops=False)
        self.num_relations = num_relations

    def forward(self, graph: EntityGraph) -> EntityGraph:
        if graph.given_edge_index is None:
            raise ValueError(
                "topology 'given' needs the env's edges: use it with a Graph observation space, "
                "or pick another topology (complete, knn, radius)"
            )
        b, n = graph.mask.shape
        edge_index = graph.given_edge_index
        edge_type = graph.given_edge_type if self.num_relations > 1 else None
        src, dst = edge_index
        adj = torch.zeros(b, n, n, dtype=torch.bool, device=graph.x.device)
        adj[dst // n, dst % n, src % n] = True
        return replace(
            graph,
            topology=self.name,
            num_relations=self.num_relations,
            edge_type=None,
            dense_adj=adj,
            complete=False,
            one_edge_per_relation=False,
            _edge_index=None,
            _edge_builder=lambda: (edge_index, edge_type),
        )

    def extra_repr(self) -> str:
        return f"num_relations={self.num_relations}"


class Relations(Topology):
    """Several topologies at once, each a relation type of its own (e.g. ``[given, complete]``).

    Edge types are offset per part (part ``p``'s relations follow those of parts ``< p``), so
    an R-GCN gives each its own weights; untyped layers see the union of the edges.

    Args:
        parts: The topologies, in relation order.
    """

    def __init__(self, parts: list[Topology]) -> None:
        if len(parts) < 2:
            raise ValueError("combining topologies needs at least two of them")
        super().__init__(self_loops=False)
        self.parts = nn.ModuleList(parts)
        self.name = "+".join(p.name for p in parts)
        self.num_relations = sum(p.num_relations for p in parts)

    def forward(self, graph: EntityGraph) -> EntityGraph:
        outs = [part(graph) for part in self.parts]

        def build() -> tuple[Tensor, Tensor]:
            edges, types, offset = [], [], 0
            for out, part in zip(outs, self.parts):
                edge_index = out.edge_index
                edge_type = out.edge_types()
                if edge_type is None:
                    edge_type = torch.zeros_like(edge_index[0])
                edges.append(edge_index)
                types.append(edge_type + offset)
                offset += part.num_relations
            return torch.cat(edges, dim=1), torch.cat(types)

        dense_adj = None
        complete = any(out.complete for out in outs)
        if not complete and all(out.dense_adj is not None for out in outs):
            b, n = graph.mask.shape
            dense_adj = torch.zeros(b, n, n, dtype=torch.bool, device=graph.x.device)
            for out in outs:
                dense_adj = dense_adj | out.dense_adj
        return replace(
            graph,
            topology=self.name,
            num_relations=self.num_relations,
            edge_type=None,
            dense_adj=dense_adj,
            complete=complete,
            # Each part's relations are its own, so the union keeps each part's guarantee.
            one_edge_per_relation=all(out.one_edge_per_relation for out in outs),
            _edge_index=None,
            _edge_builder=build,
        )


def build_topology(name: str | list[str], **kwargs) -> Topology:
    """Build the topology registered as ``name`` (see ``TOPOLOGIES.names()``).

    A list of names combines them as typed relations (:class:`Relations`); ``kwargs`` then
    maps each name to its own arguments (``{"knn": {"k": 3}}``).
    """
    if isinstance(name, (list, tuple)):
        return Relations([TOPOLOGIES.build(part, **kwargs.get(part, {})) for part in name])
    return TOPOLOGIES.build(name, **kwargs)
