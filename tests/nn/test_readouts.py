"""Readouts equal PyG's global pools on the real entities; attention pooling's weights."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from graphrl.nn import READOUTS, AttentionReadout, build_readout

D = 8
POOLS = {"max": global_max_pool, "mean": global_mean_pool, "sum": global_add_pool}


def masked_graph(set_graph):
    mask = torch.rand(3, 5) > 0.4
    mask[:, 0] = True
    return set_graph(torch.randn(3, 5, D), mask=mask)


@pytest.mark.parametrize("name", list(POOLS))
def test_pooling_readouts_equal_pyg_global_pools_on_real_nodes(set_graph, name: str) -> None:
    graph = masked_graph(set_graph)
    real = graph.node_mask
    expected = POOLS[name](graph.x[real], graph.batch[real], size=graph.num_graphs)
    readout = build_readout(name, D)
    assert readout.out_channels == D
    torch.testing.assert_close(readout(graph, graph.x), expected)


@pytest.mark.parametrize("name", ["max", "mean", "sum", "attention"])
def test_graph_without_entities_reads_zeros(set_graph, name: str) -> None:
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[1] = False
    graph = set_graph(torch.randn(2, 4, D), mask=mask)
    out = build_readout(name, D)(graph, graph.x)
    assert torch.isfinite(out).all() and (out[1] == 0).all()


def test_attention_readout_weights_are_a_distribution_over_real_entities(set_graph) -> None:
    graph = masked_graph(set_graph)
    readout = AttentionReadout(D, heads=2)
    out, weights = readout(graph, graph.x, return_attention_weights=True)
    assert out.shape == (3, D) and weights.shape == (3, 2, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2))
    assert (weights[~graph.mask[:, None, :].expand(-1, 2, -1)] == 0).all()
    # Padding rows carry garbage that must not leak into the output.
    garbage = graph.x.masked_fill(~graph.node_mask[:, None], 1e4)
    torch.testing.assert_close(readout(graph, garbage), out)


def test_attention_readout_with_a_caller_query(set_graph) -> None:
    graph = masked_graph(set_graph)
    readout = AttentionReadout(D, heads=2, query_channels=3)
    query = torch.randn(3, 3)
    out = readout(graph, graph.x, query=query)
    assert out.shape == (3, D)
    assert not torch.allclose(out, readout(graph, graph.x, query=torch.randn(3, 3)))
    with pytest.raises(ValueError, match="built with query_channels=0"):
        AttentionReadout(D, heads=2)(graph, graph.x, query=query)


def test_bad_names_and_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown readout 'median'; choose one of: attention"):
        build_readout("median", D)
    assert READOUTS.names() == ["attention", "max", "mean", "own_node", "sum"]
    with pytest.raises(ValueError, match="channels=8 not divisible by 3"):
        AttentionReadout(D, heads=3)
