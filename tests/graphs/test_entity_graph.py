"""EntityGraph: PyG fields, dense views, edge features on both paths, and bad construction."""

from __future__ import annotations

import pytest
import torch

from graphrl.graphs import EntityGraph, build_topology, grid_positions, pairwise_edge_features


def test_grid_positions_are_row_major() -> None:
    pos = grid_positions(2, 3)
    assert pos.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]


def test_pyg_fields_and_dense_views(set_graph) -> None:
    graph = set_graph(torch.randn(3, 4, 5))
    assert (graph.num_graphs, graph.nodes_per_graph, graph.num_nodes) == (3, 4, 12)
    assert torch.equal(graph.batch, torch.tensor([0] * 4 + [1] * 4 + [2] * 4))
    assert torch.equal(graph.ptr, torch.tensor([0, 4, 8, 12]))
    dense = graph.dense_x()
    assert dense.shape == (3, 4, 5) and dense.data_ptr() == graph.x.data_ptr()  # a free view
    assert torch.equal(dense[1, 2], graph.x[1 * 4 + 2])
    moved = graph.with_x(torch.zeros(12, 7))
    assert moved.x.shape == (12, 7) and moved.mask is graph.mask


@pytest.mark.parametrize("kind", ["offset", "distance", "offset_distance"])
def test_sparse_and_dense_edge_features_agree(grid_graph, kind: str) -> None:
    graph = build_topology("grid8")(grid_graph(torch.randn(2, 3, 4, 1)))
    sparse, dense = graph.edge_attr(kind), graph.dense_edge_attr(kind)
    src, dst = graph.edge_index
    n = graph.nodes_per_graph
    torch.testing.assert_close(dense[dst // n, dst % n, src % n], sparse)
    if kind == "offset":  # pos_j - pos_i for the edge j -> i
        torch.testing.assert_close(sparse, graph.pos[src] - graph.pos[dst])
    assert graph.edge_attr("none") is None and graph.dense_edge_attr("none") is None


def test_pairwise_edge_features_values_and_unknown_kind() -> None:
    src, dst = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 0.0]])
    assert pairwise_edge_features("offset_distance", src, dst).tolist() == [[3.0, 4.0, 5.0]]
    with pytest.raises(ValueError, match="unknown edge_features 'angle'; choose one of: none"):
        pairwise_edge_features("angle", src, dst)


def test_dense_attention_mask(set_graph) -> None:
    mask = torch.tensor([[True, True, False]])
    complete = build_topology("complete")
    assert complete(set_graph(torch.randn(1, 3, 2))).dense_attention_mask() is None
    adj = complete(set_graph(torch.randn(1, 3, 2), mask=mask)).dense_attention_mask()
    # real rows see exactly the real keys; the padding row at least itself (no empty softmax row)
    assert adj.shape == (1, 1, 3, 3)
    assert adj[0, 0, :2].tolist() == [[True, True, False], [True, True, False]]
    assert bool(adj[0, 0, 2, 2])
    # a mask that happens to be all True is still applied: only all_real (known from shapes,
    # no look at the data) drops it
    adj = complete(set_graph(torch.randn(1, 3, 2), mask=mask | True)).dense_attention_mask()
    assert adj is not None and bool(adj.all())


def test_bad_construction_is_rejected(set_graph) -> None:
    mask = torch.ones(2, 3, dtype=torch.bool)
    pos = torch.zeros(6, 2)
    with pytest.raises(ValueError, match=r"x must be \[B\*N, D\]"):
        EntityGraph(x=torch.zeros(2, 3, 4), pos=pos, mask=mask, num_graphs=2)
    with pytest.raises(ValueError, match=r"mask must be \[B, N\] with B=3"):
        EntityGraph(x=torch.zeros(6, 4), pos=pos, mask=mask, num_graphs=3)
    with pytest.raises(ValueError, match="x has 5 rows but mask"):
        EntityGraph(x=torch.zeros(5, 4), pos=pos, mask=mask, num_graphs=2)
    with pytest.raises(ValueError, match=r"no node slots \(N=0\)"):
        EntityGraph(
            x=torch.zeros(0, 4),
            pos=torch.zeros(0, 2),
            mask=torch.ones(2, 0, dtype=torch.bool),
            num_graphs=2,
        )
    with pytest.raises(ValueError, match=r"pos must be \[B\*N, P\] with B\*N=6"):
        EntityGraph(x=torch.zeros(6, 4), pos=torch.zeros(5, 2), mask=mask, num_graphs=2)
    with pytest.raises(ValueError, match=r"grid_shape \(2, 2\) has 4 cells but each graph has N=3"):
        EntityGraph(x=torch.zeros(6, 4), pos=pos, mask=mask, num_graphs=2, grid_shape=(2, 2))
    with pytest.raises(ValueError, match="has no edges yet: pass it through a topology"):
        _ = set_graph(torch.randn(1, 3, 2)).edge_index
