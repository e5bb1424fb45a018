"""Grid topologies on compacted object sets: edges come from the entities' cells and equal the
grid topology's edges among the same cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphrl.envs import make_env
from graphrl.graphs import EntityGraph, build_encoder, build_topology
from graphrl.models import GraphActorCritic
from graphrl.nn import ProcessorConfig

GRID_TOPOLOGIES = [("grid4", {}), ("grid8", {}), ("criss_cross", {}), ("relative", {}),
                   ("relative", {"kernel_size": 5})]  # fmt: skip


def _cell_edges(graph: EntityGraph) -> set[tuple[int, tuple, tuple, int]]:
    """``{(graph, src cell, dst cell, type)}``: edges named by cells, not node slots."""
    n = graph.nodes_per_graph
    src, dst = graph.edge_index
    cells = graph.pos.round().long().tolist()
    types = graph.edge_types()
    types = [0] * src.numel() if types is None else types.tolist()
    return {
        (int(d) // n, tuple(cells[s]), tuple(cells[d]), t)
        for s, d, t in zip(src.tolist(), dst.tolist(), types)
    }


@pytest.mark.parametrize(("name", "kwargs"), GRID_TOPOLOGIES)
def test_on_a_full_grid_compact_edges_equal_grid_edges(name, kwargs, grid_graph) -> None:
    full = grid_graph(torch.randn(2, 4, 5, 3))
    compact = EntityGraph(x=full.x, pos=full.pos, mask=full.mask, num_graphs=2)  # no grid_shape
    topology = build_topology(name, **kwargs)
    on_grid, on_cells = topology(full), topology(compact)
    assert on_cells.num_relations == on_grid.num_relations
    assert _cell_edges(on_cells) == _cell_edges(on_grid)
    assert on_cells.edge_index.shape == on_grid.edge_index.shape  # no duplicates either


@pytest.mark.parametrize(("name", "kwargs"), GRID_TOPOLOGIES)
def test_compacted_objects_keep_the_grid_edges_among_objects(name, kwargs) -> None:
    env = make_env("graphrl/BoxWorld-Small-v0", seed=0)
    obs = torch.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(3)]))
    counts = env.symbol_counts
    kw = dict(symbol_counts=counts, out_channels=8, background=(0, 1))
    padded = build_encoder("objects", **kw)(obs)  # all H*W cells, background masked
    compact = build_encoder("objects", compact=True, **kw)(obs)
    assert compact.grid_shape is None and compact.nodes_per_graph < padded.nodes_per_graph
    topology = build_topology(name, **kwargs)
    assert _cell_edges(topology(compact)) == _cell_edges(topology(padded))


def test_grid8_on_the_shipped_compact_boxworld_policy_runs() -> None:
    env = make_env("graphrl/BoxWorld-Small-v0", seed=0)
    policy = GraphActorCritic(
        env.observation_space,
        4,
        channels=16,
        encoder="objects",
        encoder_kwargs={"background": [0, 1], "compact": True},
        topology="grid8",
        processor=ProcessorConfig(num_layers=1, heads=2, edge_features="offset_distance"),
    )
    obs = torch.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(4)]))
    logits, value = policy(obs)
    assert logits.shape == (4, 4) and value.shape == (4,)
    (weights,) = policy.attention_maps(obs)
    graph = policy.backbone(obs).graph
    pos = graph.dense_pos().round().long()
    far = (pos[:, :, None] - pos[:, None, :]).abs().amax(-1) > 1  # not 8-neighbours
    assert torch.all(weights.permute(0, 2, 3, 1)[far] == 0)  # attends to neighbours only


def test_grid_topologies_refuse_entities_off_cells(set_graph) -> None:
    off_cells = set_graph(torch.randn(1, 4, 3), pos=torch.rand(1, 4, 2))
    with pytest.raises(ValueError, match="or entities at integer \\(row, col\\) cells"):
        build_topology("grid4")(off_cells)
