"""Observation kinds the on-policy machinery accepts, as batched tensor containers.

One place knows how each kind of ``gymnasium`` observation space becomes tensors, is stored over
a rollout and is indexed for minibatches:

- ``Box`` of any shape (symbol grids ``(H, W, C)``, RGB frames, entity sets ``(N, F)``):
  a plain ``Tensor [*batch, *shape]``.
- ``Dict`` of ``Box`` es (an entity set plus global features): an :class:`ObsDict`, a dict of
  ``[*batch, ...]`` tensors that is indexed, flattened and moved like one tensor.
- ``Graph`` (variable node counts, the env's own edges): a :class:`GraphObs`, graphs padded to
  the largest graph *of the batch*, with node and edge masks. gymnasium's vector envs cannot
  stack Graph observations (they hand over a tuple of ``GraphInstance``), so the conversion
  pads them here; a rollout's storage grows to the largest graph the rollout met, never to a
  global maximum, and a minibatch is trimmed to its own largest graph.

All three containers answer ``obs[index]`` (a ``[b]`` index tensor or an int), ``obs[t] = step``,
``obs.flatten(0, 1)``, ``obs.to(device)`` and ``obs.device``, so the rollout buffer and the
minibatch code treat them alike, with tensor ops only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

__all__ = [
    "GraphObs",
    "ObsDict",
    "Observation",
    "allocate_observations",
    "as_observation",
    "check_observation_space",
    "observation_nbytes",
    "stack_observations",
]


class ObsDict(dict):
    """A dict of tensors sharing leading batch dimensions, indexed like one tensor.

    ``obs["key"]`` is a field; ``obs[index]`` (an int, slice or index tensor) indexes every
    field's leading dimension; ``obs[t] = other`` writes every field.
    """

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(key)
        return ObsDict({name: value[key] for name, value in self.items()})

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, str):
            super().__setitem__(key, value)
            return
        for name, field_value in value.items():
            super().__getitem__(name)[key] = field_value

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> ObsDict:
        return ObsDict({k: v.flatten(start_dim, end_dim) for k, v in self.items()})

    def to(self, device: torch.device | str) -> ObsDict:
        return ObsDict({k: v.to(device) for k, v in self.items()})

    @property
    def device(self) -> torch.device:
        return next(iter(self.values())).device

    @property
    def shape(self) -> torch.Size:
        """The leading dimension of the fields (``[B]`` for a batch)."""
        return next(iter(self.values())).shape[:1]


@dataclass
class GraphObs:
    """A batch of variable-size graphs, padded to the largest one of the batch.

    Attributes:
        nodes: ``[*batch, n, F]`` node features (zeros in padding slots).
        node_mask: ``[*batch, n]`` bool, real nodes.
        edge_links: ``[*batch, m, 2]`` int32 ``(source, target)`` node indices within the graph.
        edge_mask: ``[*batch, m]`` bool, real edges.
        edges: ``[*batch, m, Fe]`` edge features, or None when the space has none.
    """

    nodes: Tensor
    node_mask: Tensor
    edge_links: Tensor
    edge_mask: Tensor
    edges: Tensor | None = None

    # ------------------------------------------------------------------ tensor-like interface
    def _map(self, fn) -> GraphObs:
        return GraphObs(
            *(
                None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                for f in fields(self)
            )
        )

    def __getitem__(self, index: Any) -> GraphObs:
        """Index the batch; a 1-D result is trimmed to its own largest graph and edge list."""
        out = self._map(lambda t: t[index])
        return out.trimmed() if out.node_mask.dim() == 2 else out

    def __setitem__(self, index: int, value: GraphObs) -> None:
        """Write one step ``value [N, n', ...]`` at ``index``, growing the padding if needed."""
        self.grow(value.node_mask.shape[-1], value.edge_mask.shape[-1])
        n, m = value.node_mask.shape[-1], value.edge_mask.shape[-1]
        for f in fields(self):
            target, source = getattr(self, f.name), getattr(value, f.name)
            if target is None:
                continue
            width = n if f.name in ("nodes", "node_mask") else m
            target[index] = 0
            target[index, :, :width] = source

    def grow(self, num_nodes: int, num_edges: int) -> None:
        """Pad the node / edge dimension (dim 2 of ``[T, N, ...]`` storage) to at least these."""
        add_n = num_nodes - self.node_mask.shape[-1]
        add_m = num_edges - self.edge_mask.shape[-1]
        if add_n <= 0 and add_m <= 0:
            return
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            add = add_n if f.name in ("nodes", "node_mask") else add_m
            if add > 0:
                pad = value.new_zeros((*value.shape[:2], add, *value.shape[3:]))
                setattr(self, f.name, torch.cat([value, pad], dim=2))

    def trimmed(self) -> GraphObs:
        """``[B, ...]`` cut to the largest node count and edge count of this batch."""
        n = max(int(self.node_mask.sum(-1).max()), 1) if self.node_mask.numel() else 1
        m = int(self.edge_mask.sum(-1).max()) if self.edge_mask.numel() else 0
        out = replace(
            self,
            nodes=self.nodes[:, :n],
            node_mask=self.node_mask[:, :n],
            edge_links=self.edge_links[:, :m],
            edge_mask=self.edge_mask[:, :m],
        )
        if self.edges is not None:
            out.edges = self.edges[:, :m]
        return out

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> GraphObs:
        return self._map(lambda t: t.flatten(start_dim, end_dim))

    def to(self, device: torch.device | str) -> GraphObs:
        return self._map(lambda t: t.to(device))

    @property
    def device(self) -> torch.device:
        return self.nodes.device

    @property
    def shape(self) -> torch.Size:
        return self.nodes.shape[:1]

    def reset_padding(self) -> None:
        """Drop all padding (a new rollout grows its storage to its own largest graph)."""
        self.nodes = self.nodes[:, :, :0]
        self.node_mask = self.node_mask[:, :, :0]
        self.edge_links = self.edge_links[:, :, :0]
        self.edge_mask = self.edge_mask[:, :, :0]
        if self.edges is not None:
            self.edges = self.edges[:, :, :0]

    # ------------------------------------------------------------------ from gymnasium
    @classmethod
    def from_instances(
        cls, graphs: Sequence[gym.spaces.GraphInstance], device: torch.device | str = "cpu"
    ) -> GraphObs:
        """Pad a sequence of ``GraphInstance`` (what a vector env returns) into one batch.

        Node and edge arrays are concatenated once and scattered to their padded slots with
        offsets (no per-node work in Python; one list pass over the ``B`` graphs).
        """
        node_counts = np.array([len(g.nodes) for g in graphs])
        edge_counts = np.array([0 if g.edge_links is None else len(g.edge_links) for g in graphs])
        b, n, m = len(graphs), max(int(node_counts.max()), 1), int(edge_counts.max())
        nodes_cat = np.concatenate([np.asarray(g.nodes).reshape(len(g.nodes), -1) for g in graphs])
        node_rows, node_cols = _slots(node_counts)
        nodes = np.zeros((b, n, nodes_cat.shape[-1]), nodes_cat.dtype)
        nodes[node_rows, node_cols] = nodes_cat
        node_mask = np.zeros((b, n), bool)
        node_mask[node_rows, node_cols] = True
        edge_links = np.zeros((b, m, 2), np.int32)  # node ids within a graph
        edge_mask = np.zeros((b, m), bool)
        edges = None
        if m:
            edge_rows, edge_cols = _slots(edge_counts)
            edge_links[edge_rows, edge_cols] = np.concatenate(
                [g.edge_links for g in graphs if g.edge_links is not None]
            )
            edge_mask[edge_rows, edge_cols] = True
        has_features = any(g.edges is not None for g in graphs)
        if has_features:
            feats = [
                np.asarray(g.edges).reshape(len(g.edges), -1)
                for g in graphs
                if g.edges is not None and len(g.edges)
            ]
            width = feats[0].shape[-1] if feats else 1
            edges = np.zeros((b, m, width), feats[0].dtype if feats else np.float32)
            if m:
                edges[edge_rows, edge_cols] = np.concatenate(feats)
        return cls(
            nodes=torch.as_tensor(nodes, device=device),
            node_mask=torch.as_tensor(node_mask, device=device),
            edge_links=torch.as_tensor(edge_links, device=device),
            edge_mask=torch.as_tensor(edge_mask, device=device),
            edges=None if edges is None else torch.as_tensor(edges, device=device),
        )


def _slots(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every item when ``counts[b]`` items are left-aligned in row ``b``."""
    rows = np.repeat(np.arange(len(counts)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return rows, np.arange(counts.sum()) - starts


Observation = Tensor | ObsDict | GraphObs
"""What policies receive and rollout buffers store: ``[B, ...]`` batches of one space."""

ACCEPTED = (
    "Box (any shape: symbol grids (H, W, C), RGB frames, entity sets (N, F)), "
    "Dict of Box (an entity set plus global features), "
    "Graph (Box nodes, Box/Discrete/no edge features)"
)


def check_observation_space(space: gym.Space, who: str) -> None:
    """Raise one ``TypeError`` line naming ``space`` and the kinds accepted, unless it is one."""
    ok = isinstance(space, gym.spaces.Box)
    if isinstance(space, gym.spaces.Dict):
        ok = all(isinstance(s, gym.spaces.Box) for s in space.spaces.values())
    if isinstance(space, gym.spaces.Graph):
        ok = isinstance(space.node_space, gym.spaces.Box)
    if not ok:
        raise TypeError(f"{who} cannot take observation space {space}; accepted: {ACCEPTED}")


def as_observation(obs: Any, space: gym.Space, device: torch.device | str = "cpu") -> Observation:
    """A vector env's batched observation (arrays, dict of arrays or tuple of graphs) as tensors.

    Shapes:
        Box: ``[B, *shape]``; Dict: ``{key: [B, *shape]}``; Graph: padded ``GraphObs [B, n, F]``.
    """
    if isinstance(space, gym.spaces.Graph):
        return GraphObs.from_instances(obs, device)
    if isinstance(space, gym.spaces.Dict):
        return ObsDict({k: torch.as_tensor(obs[k]).to(device) for k in space.spaces})
    return torch.as_tensor(obs).to(device)


def stack_observations(items: Sequence[Any], space: gym.Space) -> Any:
    """Batch single-env observations (e.g. ``info["final_obs"][envs]``) as a vector env would."""
    if isinstance(space, gym.spaces.Graph):
        return tuple(items)
    if isinstance(space, gym.spaces.Dict):
        return {k: np.stack([item[k] for item in items]) for k in space.spaces}
    return np.stack(items)


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


def allocate_observations(
    space: gym.Space, batch: tuple[int, ...], device: torch.device | str
) -> Observation:
    """Zero storage ``[*batch, ...]`` for observations of ``space`` (``batch = (T, N)``).

    Graph storage starts with no padding and grows, step by step, to the largest graph met.
    """
    if isinstance(space, gym.spaces.Graph):
        node_width = int(np.prod(space.node_space.shape))
        edge_space = space.edge_space
        edges = None
        if edge_space is not None:
            edge_width = (
                1 if isinstance(edge_space, gym.spaces.Discrete) else int(np.prod(edge_space.shape))
            )
            edges = torch.zeros(
                (*batch, 0, edge_width), dtype=_torch_dtype(edge_space.dtype), device=device
            )
        return GraphObs(
            nodes=torch.zeros(
                (*batch, 0, node_width),
                dtype=_torch_dtype(space.node_space.dtype),
                device=device,
            ),
            node_mask=torch.zeros((*batch, 0), dtype=torch.bool, device=device),
            edge_links=torch.zeros((*batch, 0, 2), dtype=torch.int32, device=device),
            edge_mask=torch.zeros((*batch, 0), dtype=torch.bool, device=device),
            edges=edges,
        )
    if isinstance(space, gym.spaces.Dict):
        return ObsDict(
            {k: allocate_observations(s, batch, device) for k, s in space.spaces.items()}
        )
    return torch.zeros((*batch, *space.shape), dtype=_torch_dtype(space.dtype), device=device)


def observation_nbytes(obs: Observation) -> int:
    """Bytes held by an observation container (for the memory benchmark)."""
    if isinstance(obs, Tensor):
        return obs.numel() * obs.element_size()
    tensors = (
        obs.values() if isinstance(obs, ObsDict) else (getattr(obs, f.name) for f in fields(obs))
    )
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)
