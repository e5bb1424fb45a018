"""Topologies: hand-counted edges, masks, knn/radius against brute force, the cached template,
and the vectorised batch build against a naive per-graph construction."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GCNConv, global_mean_pool

from graphrl.graphs import TOPOLOGIES, build_topology

H, W = 3, 4  # N = 12 cells
GRID_EDGE_COUNTS = {
    # (name, kwargs): edges of one 3x4 grid, counted by hand
    ("complete", ()): 12 * 12,  # every ordered pair, self-loops included
    ("complete", (("self_loops", False),)): 12 * 11,
    ("self", ()): 12,
    # horizontal pairs 3 * 3, vertical pairs 2 * 4, each in both directions
    ("grid4", ()): 2 * (3 * 3 + 2 * 4),
    # grid4 plus diagonal pairs 2 * (2 * 3), both directions
    ("grid8", ()): 2 * (3 * 3 + 2 * 4) + 2 * 2 * (2 * 3),
    # each cell hears the 3 others of its row and the 2 others of its column
    ("criss_cross", ()): 12 * (3 + 2),
    # offsets (dr, dc) in {-1, 0, 1}^2: sum over dr of (3 - |dr|) times sum over dc of (4 - |dc|)
    ("relative", (("kernel_size", 3),)): (2 + 3 + 2) * (3 + 4 + 3),
    # k = 5 on a 3-row grid: dr in {-2..2} gives 1 + 2 + 3 + 2 + 1 rows, dc 2 + 3 + 4 + 3 + 2
    ("relative", (("kernel_size", 5),)): (1 + 2 + 3 + 2 + 1) * (2 + 3 + 4 + 3 + 2),
    ("memory", (("num_slots", 2),)): 2 * 12,  # the 2 slots hear all 12 nodes
}


@pytest.mark.parametrize(("name", "kwargs"), list(GRID_EDGE_COUNTS))
def test_edge_counts_on_a_small_grid_match_hand_counts(grid_graph, name, kwargs) -> None:
    batch = 3
    graph = build_topology(name, **dict(kwargs))(grid_graph(torch.randn(batch, H, W, 2)))
    per_graph = GRID_EDGE_COUNTS[(name, kwargs)]
    assert graph.num_edges == batch * per_graph
    src, dst = graph.edge_index
    assert torch.equal(src // 12, dst // 12), "edges stay inside their graph"
    assert torch.equal(torch.bincount(dst // 12, minlength=batch), torch.full((batch,), per_graph))
    assert graph.edge_index.unique(dim=1).shape[1] == graph.num_edges, "no duplicate edges"


@pytest.mark.parametrize("name", ["grid4", "grid8", "criss_cross"])
def test_grid_neighbourhoods_are_the_documented_offsets(grid_graph, name) -> None:
    graph = build_topology(name)(grid_graph(torch.randn(2, H, W, 2)))
    src, dst = graph.edge_index
    offset = graph.pos[src] - graph.pos[dst]
    if name == "grid4":
        assert (offset.abs().sum(-1) == 1).all()
    elif name == "grid8":
        assert (offset.abs().amax(-1) == 1).all()
    else:
        assert ((offset == 0).sum(-1) == 1).all()  # same row or same column, not itself


@pytest.mark.parametrize("k", [3, 5])
def test_relative_edge_types_are_the_offsets(grid_graph, k: int) -> None:
    graph = build_topology("relative", kernel_size=k)(grid_graph(torch.randn(2, 5, 7, 1)))
    src, dst = graph.edge_index
    t, p = graph.edge_types(), k // 2
    assert graph.num_relations == k * k and t.shape == (graph.num_edges,)
    expected = torch.stack(
        [t // k - p, t % k - p], dim=-1
    ).float()  # (dr, dc): (r+dr, c+dc) -> (r, c)
    assert torch.equal(graph.pos[src] - graph.pos[dst], expected)
    # An interior cell receives exactly one edge of each relation.
    interior = 2 * 7 + 3
    assert torch.equal(t[dst == interior].sort().values, torch.arange(k * k))


ALL_TOPOLOGIES = {
    "complete": {},
    "self": {},
    "grid4": {},
    "grid8": {},
    "criss_cross": {},
    "relative": {"kernel_size": 3},
    "memory": {"num_slots": 3},
    "knn": {"k": 3},
    "radius": {"r": 2.0},
}


def test_every_registered_topology_is_covered() -> None:
    # ``given`` needs an env's own edges: tests/graphs/test_given_topology.py covers it
    # graphrl's own: a user package imported by another test (examples/custom_env) may have
    # registered its topology in this process too
    own = [n for n in TOPOLOGIES.names() if TOPOLOGIES.get(n).__module__.startswith("graphrl.")]
    assert sorted([*ALL_TOPOLOGIES, "given"]) == own


@pytest.mark.parametrize("name", list(ALL_TOPOLOGIES))
def test_masked_entities_get_no_edges(grid_graph, name: str) -> None:
    mask = torch.rand(4, H, W) > 0.4
    graph = build_topology(name, **ALL_TOPOLOGIES[name])(grid_graph(torch.randn(4, H, W, 2), mask))
    src, dst = graph.edge_index
    assert graph.num_edges > 0
    assert graph.node_mask[src].all() and graph.node_mask[dst].all()
    if graph.edge_type is not None:
        assert graph.edge_type.shape == (graph.num_edges,)


def brute_force_neighbours(pos: torch.Tensor, mask: torch.Tensor, i: int) -> torch.Tensor:
    """``[N]`` distances from entity ``i`` to every other real entity (inf elsewhere)."""
    dist = (pos - pos[i]).norm(dim=-1)
    dist[~mask] = float("inf")
    dist[i] = float("inf")
    return dist


def test_knn_gives_each_real_node_its_k_nearest(set_graph) -> None:
    k, batch, n = 3, 4, 9
    mask = torch.rand(batch, n) > 0.3
    mask[0] = True
    mask[1, 2:] = False  # 2 real entities: fewer than k neighbours exist
    pos = torch.rand(batch, n, 2)
    graph = build_topology("knn", k=k)(set_graph(torch.randn(batch, n, 2), pos=pos, mask=mask))
    src, dst = graph.edge_index
    in_degree = torch.bincount(dst, minlength=batch * n).view(batch, n)
    real_count = mask.sum(1, keepdim=True)
    expected_degree = torch.where(mask, (real_count - 1).clamp(max=k), 0)
    assert torch.equal(in_degree, expected_degree)
    assert (in_degree[0] == k).all()
    for b in range(batch):
        for i in mask[b].nonzero().flatten().tolist():
            senders = src[dst == b * n + i] - b * n
            dist = brute_force_neighbours(pos[b], mask[b], i)
            nearest = dist.argsort()[: int(expected_degree[b, i])]
            assert set(senders.tolist()) == set(nearest.tolist())


def test_knn_with_self_loops_counts_the_node_itself(set_graph) -> None:
    graph = build_topology("knn", k=2, self_loops=True)(set_graph(torch.randn(1, 5, 2)))
    src, dst = graph.edge_index
    assert graph.num_edges == 10 and (src == dst).sum() == 5


def test_radius_connects_exactly_the_pairs_within_r(set_graph) -> None:
    r, n = 0.4, 10
    pos = torch.rand(2, n, 2)
    mask = torch.rand(2, n) > 0.2
    graph = build_topology("radius", r=r)(set_graph(torch.randn(2, n, 2), pos=pos, mask=mask))
    edges = set(map(tuple, graph.edge_index.T.tolist()))
    expected = {
        (b * n + j, b * n + i)
        for b in range(2)
        for i in mask[b].nonzero().flatten().tolist()
        for j, d in enumerate(brute_force_neighbours(pos[b], mask[b], i).tolist())
        if d <= r
    }
    assert edges == expected and len(expected) > 0


def test_radius_is_inclusive(set_graph) -> None:
    pos = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]]])
    graph = build_topology("radius", r=1.0)(set_graph(torch.randn(1, 3, 2), pos=pos))
    assert graph.edge_index.tolist() == [[1, 0], [0, 1]]


def test_to_pyg_round_trip_feeds_pyg_layers(grid_graph) -> None:
    graph = build_topology("relative", kernel_size=3)(grid_graph(torch.randn(3, H, W, 5)))
    data = graph.to_pyg()
    assert data.num_graphs == 3 and data.num_nodes == 36
    assert torch.equal(data.edge_index, graph.edge_index)
    assert torch.equal(data.edge_type, graph.edge_type)
    assert torch.equal(data.batch, torch.arange(3).repeat_interleave(12))
    assert torch.equal(data.ptr, torch.tensor([0, 12, 24, 36]))
    conv = GCNConv(5, 4)
    torch.testing.assert_close(conv(data.x, data.edge_index), conv(graph.x, graph.edge_index))
    torch.testing.assert_close(
        global_mean_pool(data.x, data.batch), graph.dense_x().mean(1), atol=1e-6, rtol=1e-5
    )


def test_the_template_is_built_once_per_size(grid_graph, monkeypatch) -> None:
    topology = build_topology("grid8")
    calls: list[tuple] = []
    template = topology.template

    def counting_template(n, grid_shape):
        calls.append((n, grid_shape))
        return template(n, grid_shape)

    monkeypatch.setattr(topology, "template", counting_template)
    first = topology(grid_graph(torch.randn(2, H, W, 1)))
    second = topology(grid_graph(torch.randn(5, H, W, 1)))
    assert torch.equal(second.edge_index[:, : first.num_edges], first.edge_index)
    assert calls == [(12, (H, W))]
    topology(grid_graph(torch.randn(1, W, H, 1)))  # a new shape, a new template
    assert calls == [(12, (H, W)), (12, (W, H))]


def naive_batch_edges(topology, graph_factory, features, mask):
    """Per-graph construction, offset and concatenated in a Python loop (the slow reference)."""
    edge_indices, edge_types = [], []
    n = features.shape[1] * features.shape[2]
    for b in range(features.shape[0]):
        single = topology(graph_factory(features[b : b + 1], mask[b : b + 1]))
        edge_indices.append(single.edge_index + b * n)
        if single.edge_type is not None:
            edge_types.append(single.edge_type)
    return torch.cat(edge_indices, 1), (torch.cat(edge_types) if edge_types else None)


@pytest.mark.parametrize("name", ["complete", "relative", "criss_cross", "knn"])
def test_vectorised_build_of_1000_graphs_equals_the_per_graph_loop(grid_graph, name) -> None:
    features = torch.randn(1000, 3, 3, 1)
    mask = torch.rand(1000, 3, 3) > 0.2
    topology = build_topology(name, **ALL_TOPOLOGIES[name])
    graph = topology(grid_graph(features, mask))
    edge_index, edge_type = naive_batch_edges(topology, grid_graph, features, mask)
    assert torch.equal(graph.edge_index, edge_index)
    if edge_type is None:
        assert graph.edge_type is None
    else:
        assert torch.equal(graph.edge_type, edge_type)


def test_dense_adjacency_matches_the_edge_list(grid_graph) -> None:
    """``dense_attention_mask()[b, 0, i, j]`` is True exactly for the edges ``j -> i``."""
    mask = torch.rand(3, H, W) > 0.3
    for name in ("grid4", "knn", "complete"):
        graph = build_topology(name)(grid_graph(torch.randn(3, H, W, 2), mask))
        adj = graph.dense_attention_mask()[:, 0]
        src, dst = graph.edge_index
        from_edges = torch.zeros_like(adj)
        from_edges[dst // 12, dst % 12, src % 12] = True
        real_rows = graph.mask[:, :, None].expand_as(adj)
        assert torch.equal(adj[real_rows], from_edges[real_rows]), name


def test_bad_topology_input_is_rejected(set_graph) -> None:
    with pytest.raises(ValueError, match="unknown topology 'ring'; choose one of: complete"):
        build_topology("ring")
    vectors = set_graph(torch.randn(2, 5, 3))
    for name in ("grid4", "grid8", "criss_cross", "relative"):
        with pytest.raises(ValueError, match=f"topology '{name}' needs grid-shaped entities"):
            build_topology(name)(vectors)
    with pytest.raises(ValueError, match="odd kernel_size >= 1, got 4"):
        build_topology("relative", kernel_size=4)
    with pytest.raises(ValueError, match="k >= 1"):
        build_topology("knn", k=0)
    with pytest.raises(ValueError, match="r > 0"):
        build_topology("radius", r=0.0)
    with pytest.raises(ValueError, match="num_slots >= 1"):
        build_topology("memory", num_slots=0)
    with pytest.raises(ValueError, match="5 nodes but num_slots=6"):
        build_topology("memory", num_slots=6)(vectors)
