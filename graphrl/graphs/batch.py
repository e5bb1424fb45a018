"""The entity-graph batch that flows from encoders through topologies into layers.

Edge direction, once for the whole project: ``edge_index[0]`` holds the **source** node j and
``edge_index[1]`` the **target** node i; messages flow ``j -> i`` and node i aggregates over its
incoming edges (PyG's ``flow="source_to_target"``). Dense adjacency tensors follow the
attention convention ``adj[..., i, j] = True`` iff the edge ``j -> i`` exists (row = receiver =
query, column = sender = key).

Every graph of a batch has the same number of node slots ``N``; entity sets of variable size are
padded and masked. Padding nodes exist in ``x`` (so the dense view is a free reshape) but carry
no edges, so message passing never reads them, and readouts ignore them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from graphrl.graphs.edge_features import pairwise_edge_features


@dataclass
class EntityGraph:
    """A batch of ``B`` entity graphs with ``N`` node slots each, PyG-``Batch`` compatible.

    Any PyG layer can consume it (``conv(g.x, g.edge_index)``), ``to_pyg()`` gives a real
    ``torch_geometric.data.Batch``, and ``dense_x()`` gives the ``[B, N, D]`` view that dense
    layers (attention on complete graphs) use.

    Attributes:
        x: Node features ``[B * N, D]``, graph-major (node ``n`` of graph ``b`` is row ``b*N+n``).
        pos: Node coordinates ``[B * N, P]`` (grid ``(row, col)`` or raw vectors).
        mask: ``[B, N]`` bool, True for real entities.
        num_graphs: ``B``.
        grid_shape: ``(H, W)`` when the ``N = H * W`` nodes are the cells of a grid in row-major
            order (grid topologies need it), else None.
        edge_type: ``[E]`` long relation ids, or None for untyped topologies.
        num_relations: Number of distinct edge types (1 when untyped).
        topology: Name of the topology that built the edges, or None before one did.
        dense_adj: ``[N, N]`` or ``[B, N, N]`` bool adjacency (``adj[i, j]``: edge ``j -> i``),
            already restricted to real entities, or None when the edges only exist as a list.
            ``complete`` is the special case where every real pair is connected.
        complete: True when every real entity receives from every real entity (self included).
        one_edge_per_relation: True when the topology guarantees that every node receives and
            sends at most one edge of each relation (``relative`` on a grid), so R-GCN runs as
            im2col; declared by the topology, never inferred from the edges.
        given_edge_index: ``[2, E]`` the env's own edges (``j -> i``, batch node indices), for
            the ``given`` topology; None when the observation has no edges.
        given_edge_type: ``[E]`` long relation ids of the env's edges (a ``Discrete`` edge
            space), or None.
        context: ``[B, D]`` global features that condition the readout, or None.
        all_real: True when the encoder knows, from shapes alone, that every node slot is a
            real entity (``mask`` all True: e.g. one entity per grid cell). Lets dense layers
            skip the mask without reading ``mask`` on the host (no device sync).
    """

    x: Tensor
    pos: Tensor
    mask: Tensor
    num_graphs: int
    grid_shape: tuple[int, int] | None = None
    edge_type: Tensor | None = None
    num_relations: int = 1
    topology: str | None = None
    dense_adj: Tensor | None = None
    complete: bool = False
    one_edge_per_relation: bool = False
    given_edge_index: Tensor | None = field(default=None, repr=False)
    given_edge_type: Tensor | None = field(default=None, repr=False)
    context: Tensor | None = field(default=None, repr=False)
    all_real: bool = False
    _pair_cache: dict[str, Tensor] = field(default_factory=dict, init=False, repr=False)
    _edge_index: Tensor | None = field(default=None, repr=False)
    _edge_builder: Callable[[], tuple[Tensor, Tensor | None]] | None = field(
        default=None, repr=False
    )

    def __post_init__(self) -> None:
        if self.x.dim() != 2:
            raise ValueError(f"EntityGraph.x must be [B*N, D], got shape {tuple(self.x.shape)}")
        if self.mask.dim() != 2 or self.mask.shape[0] != self.num_graphs:
            raise ValueError(
                f"EntityGraph.mask must be [B, N] with B={self.num_graphs}, "
                f"got {tuple(self.mask.shape)}"
            )
        if self.mask.shape[0] * self.mask.shape[1] != self.x.shape[0]:
            raise ValueError(
                f"EntityGraph.x has {self.x.shape[0]} rows but mask {tuple(self.mask.shape)} "
                f"describes {self.mask.numel()} node slots"
            )
        if self.nodes_per_graph == 0:
            raise ValueError("EntityGraph has no node slots (N=0): an empty entity set")
        if self.pos.dim() != 2 or self.pos.shape[0] != self.x.shape[0]:
            raise ValueError(
                f"EntityGraph.pos must be [B*N, P] with B*N={self.x.shape[0]}, "
                f"got {tuple(self.pos.shape)}"
            )
        if self.grid_shape is not None and (
            self.grid_shape[0] * self.grid_shape[1] != self.nodes_per_graph
        ):
            raise ValueError(
                f"EntityGraph.grid_shape {tuple(self.grid_shape)} has "
                f"{self.grid_shape[0] * self.grid_shape[1]} cells but each graph has "
                f"N={self.nodes_per_graph} node slots"
            )

    # ------------------------------------------------------------------ sizes and PyG fields
    @property
    def nodes_per_graph(self) -> int:
        """``N``, the node slots per graph."""
        return self.mask.shape[1]

    @property
    def num_nodes(self) -> int:
        """``B * N``."""
        return self.x.shape[0]

    @property
    def batch(self) -> Tensor:
        """``[B * N]`` graph index of every node (PyG's ``batch`` vector)."""
        return torch.arange(self.num_graphs, device=self.x.device).repeat_interleave(
            self.nodes_per_graph
        )

    @property
    def ptr(self) -> Tensor:
        """``[B + 1]`` offsets of each graph's first node (PyG's ``ptr``)."""
        return torch.arange(self.num_graphs + 1, device=self.x.device) * self.nodes_per_graph

    @property
    def edge_index(self) -> Tensor:
        """``[2, E]`` edges ``(source j, target i)`` for the whole batch, built on first use.

        The dense attention path never asks for it, so complete graphs of many nodes never
        materialise their ``B * N^2`` edges unless a sparse layer needs them.
        """
        if self._edge_index is None:
            if self._edge_builder is None:
                raise ValueError(
                    "this EntityGraph has no edges yet: pass it through a topology "
                    "(graphrl.graphs.build_topology(name)) first"
                )
            self._edge_index, edge_type = self._edge_builder()
            if edge_type is not None:
                self.edge_type = edge_type
        return self._edge_index

    @property
    def num_edges(self) -> int:
        """``E``."""
        return self.edge_index.shape[1]

    def edge_types(self) -> Tensor | None:
        """``[E]`` relation ids aligned with ``edge_index`` (building the edges if needed)."""
        _ = self.edge_index
        return self.edge_type

    def edge_attr(self, kind: str) -> Tensor | None:
        """``[E, F]`` geometric edge features ``kind`` (see ``pairwise_edge_features``)."""
        if kind == "none":
            return None
        src, dst = self.edge_index
        return pairwise_edge_features(kind, self.pos[src], self.pos[dst])

    def dense_edge_attr(self, kind: str) -> Tensor | None:
        """``[B, N, N, F]`` features of every pair, ``[b, i, j]`` for the edge ``j -> i``.

        Computed once per graph (every layer of a stack reads the same tensor).
        """
        if kind == "none":
            return None
        if kind not in self._pair_cache:
            pos = self.dense_pos()
            self._pair_cache[kind] = pairwise_edge_features(
                kind, pos[:, None, :, :], pos[:, :, None, :]
            )
        return self._pair_cache[kind]

    # ------------------------------------------------------------------ views
    def dense_x(self, x: Tensor | None = None) -> Tensor:
        """Dense view ``[B, N, D]`` of ``x`` (default ``self.x``); a free reshape."""
        x = self.x if x is None else x
        return x.view(self.num_graphs, self.nodes_per_graph, x.shape[-1])

    def dense_pos(self) -> Tensor:
        """``[B, N, P]`` coordinates."""
        return self.dense_x(self.pos)

    @property
    def node_mask(self) -> Tensor:
        """``[B * N]`` bool, True for real entities."""
        return self.mask.reshape(-1)

    def dense_attention_mask(self) -> Tensor | None:
        """``[B, 1, N, N]`` bool mask for dense attention (True = may attend), or None if all pairs.

        Padding queries get their own self-loop so no softmax row is empty; their outputs are
        meaningless and ignored downstream.
        """
        n = self.nodes_per_graph
        if self.complete and self.all_real:
            return None
        if self.complete:
            adj = self.mask[:, None, :].expand(-1, n, -1)
        elif self.dense_adj is not None:
            adj = self.dense_adj if self.dense_adj.dim() == 3 else self.dense_adj.unsqueeze(0)
            adj = adj & self.mask[:, None, :] & self.mask[:, :, None]
        else:
            raise ValueError(f"topology {self.topology!r} has no dense adjacency")
        eye = torch.eye(n, dtype=torch.bool, device=adj.device)
        adj = adj | (eye & ~self.mask[:, :, None])
        return adj.unsqueeze(1)

    @property
    def has_dense_adjacency(self) -> bool:
        """True when dense layers can run this topology with an adjacency mask."""
        return self.complete or self.dense_adj is not None

    def with_x(self, x: Tensor) -> EntityGraph:
        """A shallow copy with new node features ``x: [B * N, D']`` (edges shared)."""
        return replace(self, x=x)

    def to_pyg(self):  # -> torch_geometric.data.Batch
        """A ``torch_geometric.data.Batch`` with ``x, edge_index, edge_type, pos, batch, ptr``.

        Meant for interoperability and inspection; the training path stays on tensors (DESIGN:
        ``Batch`` objects cost 9-20x the whole vectorised build).
        """
        from torch_geometric.data import Batch

        data = Batch(
            x=self.x,
            edge_index=self.edge_index,
            pos=self.pos,
            batch=self.batch,
            ptr=self.ptr,
        )
        if self.edge_type is not None:
            data.edge_type = self.edge_type
        data._num_graphs = self.num_graphs
        return data


def grid_positions(height: int, width: int, device: torch.device | None = None) -> Tensor:
    """Row-major ``(row, col)`` coordinates of an ``H x W`` grid, ``[H * W, 2]`` float."""
    rows = torch.arange(height, device=device).repeat_interleave(width)
    cols = torch.arange(width, device=device).repeat(height)
    return torch.stack([rows, cols], dim=-1).float()
