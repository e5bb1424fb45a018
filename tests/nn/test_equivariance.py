"""Symmetries: layers are equivariant to entity permutations, readouts invariant; on grids,
only grid symmetries (a horizontal flip) commute with the grid topologies."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphrl.graphs import VectorEncoder, build_topology
from graphrl.nn import AttentionLayer, GCNLayer, GNNLayer, RGCNLayer, build_readout

D = 8
SET_TOPOLOGIES = {
    "complete": {},
    "knn": {"k": 2},
    "radius": {"r": 0.8},
    "self": {},
}


def make_layers() -> dict[str, torch.nn.Module]:
    return {
        "gnn": GNNLayer(D, D),
        "gcn_mean": GCNLayer(D, D),
        "gcn_symmetric": GCNLayer(D, D, norm="symmetric"),
        "rgcn": RGCNLayer(D, D, num_relations=1),
        "attention_dense": AttentionLayer(D, heads=2, path="dense"),
        "attention_sparse": AttentionLayer(D, heads=2, path="sparse"),
    }


READOUTS = ("max", "mean", "sum", "attention")


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
@pytest.mark.parametrize("topology", list(SET_TOPOLOGIES))
def test_permuting_a_set_permutes_layers_and_leaves_readouts(topology: str, data) -> None:
    n = data.draw(st.integers(2, 7), label="n")
    perm = torch.tensor(data.draw(st.permutations(range(n)), label="perm"))
    seed = data.draw(st.integers(0, 2**16), label="seed")
    gen = torch.Generator().manual_seed(seed)
    obs, pos = torch.randn(2, n, 3, generator=gen), torch.rand(2, n, 2, generator=gen)
    mask = torch.rand(2, n, generator=gen) > 0.25
    mask[:, 0] = True

    encoder = VectorEncoder(3, D)
    topo = build_topology(topology, **SET_TOPOLOGIES[topology])
    graph = topo(encoder(obs, mask=mask, pos=pos))
    permuted = topo(encoder(obs[:, perm], mask=mask[:, perm], pos=pos[:, perm]))

    real = mask[:, perm]  # real rows in the permuted order
    for name, layer in make_layers().items():
        out = graph.dense_x(layer.forward_graph(graph, graph.x))
        out_p = permuted.dense_x(layer.forward_graph(permuted, permuted.x))
        torch.testing.assert_close(out_p[real], out[:, perm][real], atol=1e-5, rtol=1e-5, msg=name)
    for name in READOUTS:
        readout = build_readout(name, D)
        torch.testing.assert_close(
            readout(permuted, permuted.x), readout(graph, graph.x), atol=1e-5, rtol=1e-5, msg=name
        )


@pytest.mark.parametrize("topology", ["grid4", "grid8", "criss_cross"])
def test_flipping_a_grid_flips_the_output(grid_graph, topology: str) -> None:
    feats = torch.randn(2, 4, 5, D)
    topo = build_topology(topology)
    graph, flipped = topo(grid_graph(feats)), topo(grid_graph(feats.flip(2)))
    layers = {
        "gnn": GNNLayer(D, D),
        "gcn": GCNLayer(D, D),
        "attention": AttentionLayer(D, heads=2),
    }
    for name, layer in layers.items():
        out = layer.forward_graph(graph, graph.x).view(2, 4, 5, D)
        out_f = layer.forward_graph(flipped, flipped.x).view(2, 4, 5, D)
        torch.testing.assert_close(out_f, out.flip(2), atol=1e-5, rtol=1e-5, msg=name)


def test_relative_topology_breaks_flip_symmetry(grid_graph) -> None:
    """Typed offsets tell left from right, as a convolution does: the flip no longer commutes."""
    feats = torch.randn(1, 4, 5, D)
    topo = build_topology("relative", kernel_size=3)
    graph, flipped = topo(grid_graph(feats)), topo(grid_graph(feats.flip(2)))
    layer = RGCNLayer(D, D, num_relations=9)
    out = layer.forward_graph(graph, graph.x).view(1, 4, 5, D)
    out_f = layer.forward_graph(flipped, flipped.x).view(1, 4, 5, D)
    assert not torch.allclose(out_f, out.flip(2), atol=1e-3)
