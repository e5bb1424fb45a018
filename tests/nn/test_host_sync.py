"""GPU-ready layer calls: after a first call per shape, a layer call syncs no device with the host.

Value checks (``int(edge_index.max())`` ...) run on the first call per shape, and on every call
under ``GRAPHRL_DEBUG=1``; code paths are declared by the topology, not read from the data.
The recorder lists every op that makes the host wait for a device (a Python scalar read from a
tensor, or an output whose size depends on tensor values).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from graphrl.graphs import build_topology
from graphrl.nn import GCNLayer, GNNLayer, RGCNLayer

D = 8
aten = torch.ops.aten

# Ops that read tensor values back to the host (item, bool, int) or size outputs by them.
SYNCING = {
    aten._local_scalar_dense.default,
    aten.is_nonzero.default,
    aten.equal.default,
    aten.nonzero.default,
    aten.masked_select.default,
    aten.bincount.default,
    aten._unique2.default,
    aten.unique_consecutive.default,
    aten.unique_dim.default,
    aten.repeat_interleave.Tensor,
}


class SyncRecorder(TorchDispatchMode):
    """Records the syncing ops run inside it (boolean-mask indexing included)."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        indexing = func in (aten.index.Tensor, aten.index_put.default, aten.index_put_.default)
        by_mask = indexing and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1]
        )
        if func in SYNCING or by_mask:
            self.syncs.append(str(func))
        return func(*args, **kwargs)


def syncs_of(step: Callable[[], object]) -> list[str]:
    with SyncRecorder() as recorder:
        step()
    return recorder.syncs


def test_the_recorder_sees_host_syncs() -> None:
    """The recorder can fail: the checks this suite guards against are recorded."""
    x = torch.randn(5)
    assert syncs_of(lambda: int(x.max()))
    assert syncs_of(lambda: bool((x > 0).all()))
    assert syncs_of(lambda: x[x > 0])
    assert syncs_of(lambda: torch.bincount(torch.tensor([0, 2])))


def _relative_graph(grid_graph, mask=None):
    return build_topology("relative", kernel_size=3)(grid_graph(torch.randn(2, 4, 5, D), mask))


def _forward_backward(layer, graph, x) -> Callable[[], None]:
    def step() -> None:
        layer.forward_graph(graph, x).square().sum().backward()

    return step


LAYERS = {
    "rgcn_im2col_relative": (lambda: RGCNLayer(D, D, num_relations=9), "relative"),
    "rgcn_scatter_mean": (lambda: RGCNLayer(D, D, num_relations=1, aggr="mean"), "grid8"),
    "gcn_mean": (lambda: GCNLayer(D, D, norm="mean"), "grid4"),
    "gcn_symmetric": (lambda: GCNLayer(D, D, norm="symmetric"), "grid4"),
    "gnn": (lambda: GNNLayer(D, D), "knn"),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_second_layer_call_makes_no_host_sync(grid_graph, monkeypatch, name: str) -> None:
    monkeypatch.delenv("GRAPHRL_DEBUG", raising=False)
    make_layer, topology = LAYERS[name]
    layer = make_layer()
    kwargs = {"kernel_size": 3} if topology == "relative" else {}
    graph = build_topology(topology, **kwargs)(grid_graph(torch.randn(2, 4, 5, D)))
    graph.edge_types()  # the edge list is built once per batch, shared by the layers
    x = graph.x.clone().requires_grad_()
    step = _forward_backward(layer, graph, x)
    assert syncs_of(step), "the first call checks the values (else this test cannot fail)"
    assert syncs_of(step) == []


def test_rgcn_takes_im2col_only_where_the_topology_declares_it(grid_graph, monkeypatch) -> None:
    import graphrl.nn.rgcn as rgcn

    gathers = []
    apply = rgcn._GatherMatmul.apply
    monkeypatch.setattr(rgcn._GatherMatmul, "apply", lambda *a: gathers.append(1) or apply(*a))
    relative = _relative_graph(grid_graph)
    assert relative.one_edge_per_relation
    RGCNLayer(D, D, num_relations=9).forward_graph(relative, relative.x)
    assert gathers == [1]
    grid4 = build_topology("grid4")(grid_graph(torch.randn(2, 4, 5, D)))
    assert not grid4.one_edge_per_relation  # relation 0 arrives from up to 4 neighbours
    RGCNLayer(D, D, num_relations=1).forward_graph(grid4, grid4.x)
    assert gathers == [1]


@pytest.mark.parametrize("topology", ["relative", "complete", "knn", "grid4"])
def test_topology_call_makes_no_host_sync(grid_graph, monkeypatch, topology: str) -> None:
    """Padding is only dropped when a sparse layer asks for the edge list (the dense attention
    path never does)."""
    monkeypatch.delenv("GRAPHRL_DEBUG", raising=False)
    mask = torch.rand(2, 4, 5) > 0.3
    kwargs = {"kernel_size": 3} if topology == "relative" else {}
    topo = build_topology(topology, **kwargs)
    graph = grid_graph(torch.randn(2, 4, 5, D), mask)
    topo(graph)
    assert syncs_of(lambda: topo(graph)) == []


@pytest.mark.parametrize("name", ["gcn_mean", "gnn", "rgcn_im2col_relative"])
def test_debug_mode_checks_every_call(grid_graph, monkeypatch, name: str) -> None:
    make_layer, _ = LAYERS[name]
    layer = make_layer()
    graph = _relative_graph(grid_graph)
    edge_index, edge_type = graph.edge_index, graph.edge_types()
    kwargs = {"edge_type": edge_type} if isinstance(layer, RGCNLayer) else {}
    layer(graph.x, edge_index, **kwargs)  # a good first call
    bad = edge_index.clone()
    bad[0, 3] = graph.num_nodes  # same shape, one id past the last node
    monkeypatch.setenv("GRAPHRL_DEBUG", "1")  # the shapes were checked, but not the values
    with pytest.raises(ValueError, match=f"refers to node {graph.num_nodes} but x has"):
        layer(graph.x, bad, **kwargs)


def test_debug_mode_checks_the_declared_one_edge_per_relation(monkeypatch) -> None:
    layer = RGCNLayer(D, D, num_relations=2)
    x = torch.randn(3, D)
    edge_type = torch.tensor([0, 1])
    layer(x, torch.tensor([[0, 2], [1, 1]]), edge_type, one_edge_per_relation=True)
    monkeypatch.setenv("GRAPHRL_DEBUG", "1")
    with pytest.raises(ValueError, match="node 1 receives 2 edges of relation 0"):
        layer(x, torch.tensor([[0, 2], [1, 1]]), torch.tensor([0, 0]), one_edge_per_relation=True)


def test_rgcn_conv_path_compiles_without_graph_breaks(grid_graph) -> None:
    """After the checked first call, ``torch.compile(fullgraph=True)`` traces the layer whole
    (value checks are skipped while tracing; the tables are built inside the graph)."""
    graph = _relative_graph(grid_graph)
    layer = RGCNLayer(D, D, num_relations=9)
    x = graph.x.clone().requires_grad_()
    eager = layer.forward_graph(graph, x)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    out = compiled(x, graph.edge_index, graph.edge_types(), one_edge_per_relation=True)
    torch.testing.assert_close(out, eager)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    (expected,) = torch.autograd.grad(eager.square().sum(), x)
    torch.testing.assert_close(grad, expected)
