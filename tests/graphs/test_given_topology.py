"""The ``given`` topology (an env's own edges) and topologies combined as typed relations."""

from __future__ import annotations

import torch

from graphrl.graphs import EntitySet, Relations, VectorEncoder, build_topology
from graphrl.nn import Processor, ProcessorConfig


def _graph(types: bool = True):
    """Two graphs (3 and 2 real nodes of 3 slots); edges 0->1, 1->2 | 1->0, plus a padded one."""
    entities = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    links = torch.tensor([[[0, 1], [1, 2]], [[1, 0], [0, 2]]])  # graph 1's 0->2 hits padding
    edge_mask = torch.tensor([[True, True], [True, True]])
    kinds = torch.tensor([[0, 1], [1, 0]]) if types else None
    items = EntitySet(entities, mask, None, links, edge_mask, kinds)
    return VectorEncoder(4, 8)(items)


def test_given_uses_the_envs_edges_and_drops_edges_to_padding() -> None:
    graph = build_topology("given", num_relations=2)(_graph())
    assert graph.edge_index.tolist() == [[0, 1, 4], [1, 2, 3]]
    assert graph.edge_types().tolist() == [0, 1, 1]
    dense = graph.dense_attention_mask()[:, 0]
    assert dense[0, 1, 0] and dense[0, 2, 1] and dense[1, 0, 1] and not dense[0, 0, 1]


def test_combined_topologies_are_typed_relations_an_rgcn_tells_apart() -> None:
    topology = build_topology(["given", "complete"], given={"num_relations": 2})
    assert isinstance(topology, Relations) and topology.num_relations == 3
    graph = topology(_graph())
    types = graph.edge_types()
    given_edges = graph.edge_index[:, types < 2]
    assert given_edges.tolist() == [[0, 1, 4], [1, 2, 3]]
    # complete part: 3*3 + 2*2 real pairs (self-loops included), all of relation 2
    assert int((types == 2).sum()) == 13
    torch.manual_seed(0)
    rgcn = Processor(ProcessorConfig(layer="rgcn", num_layers=1), 8, num_relations=3)
    out = rgcn(graph)
    swapped = graph.with_x(graph.x)
    swapped.edge_type = torch.where(types < 2, 2, 0)  # same edges, relations exchanged
    assert not torch.allclose(out, rgcn(swapped))


def test_given_without_env_edges_says_what_to_do() -> None:
    import pytest

    graph = VectorEncoder(4, 8)(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="topology 'given' needs the env's edges"):
        build_topology("given")(graph)


def test_own_node_readout_is_the_first_entitys_node() -> None:
    from graphrl.nn import build_readout

    graph = VectorEncoder(4, 8)(torch.randn(3, 5, 4))
    x = torch.randn(15, 8)
    torch.testing.assert_close(build_readout("own_node", 8)(graph, x), x.view(3, 5, 8)[:, 0])
