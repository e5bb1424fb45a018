"""R-GCN: a CNN is an R-GCN on the ``relative`` topology; both code paths match PyG's RGCNConv."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import RGCNConv

import graphrl.nn.rgcn as rgcn
from graphrl.graphs import build_topology
from graphrl.nn import RGCNLayer


def conv_as_rgcn(conv: torch.nn.Conv2d) -> RGCNLayer:
    """The R-GCN whose relation ``t`` is the conv tap ``(t // k, t % k)``, transposed.

    ``Relative`` gives relation ``t = (dr + k//2) * k + (dc + k//2)`` to the edge
    ``(r + dr, c + dc) -> (r, c)``; ``Conv2d`` with padding ``p = k // 2`` reads input
    ``(r + a - p, c + b - p)`` with tap ``(a, b)``, so ``a = dr + p = t // k``, ``b = t % k``.
    """
    k = conv.kernel_size[0]
    layer = RGCNLayer(
        conv.in_channels, conv.out_channels, num_relations=k * k, root_weight=False, aggr="sum"
    )
    with torch.no_grad():
        for t in range(k * k):
            layer.weight[t] = conv.weight[:, :, t // k, t % k].T  # [in, out]
        layer.bias.copy_(conv.bias)
    return layer


@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("grid", [(5, 7), (4, 4), (1, 6)])
def test_rgcn_on_relative_topology_is_conv2d(grid_graph, kernel_size: int, grid) -> None:
    h, w = grid
    batch, c_in, c_out = 3, 4, 6
    fmap = torch.randn(batch, c_in, h, w, requires_grad=True)
    conv = torch.nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2)
    layer = conv_as_rgcn(conv)
    graph = build_topology("relative", kernel_size=kernel_size)(
        grid_graph(fmap.permute(0, 2, 3, 1))
    )
    assert graph.num_relations == kernel_size**2

    out = layer.forward_graph(graph, graph.x)
    expected = conv(fmap).permute(0, 2, 3, 1).reshape(batch * h * w, c_out)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)

    # Gradients agree too (the layer's gather path has its own backward).
    g_fmap, g_weight, g_bias = torch.autograd.grad(
        out.square().sum(), [fmap, layer.weight, layer.bias]
    )
    g_fmap_conv, g_kernel, g_bias_conv = torch.autograd.grad(
        expected.square().sum(), [fmap, conv.weight, conv.bias]
    )
    torch.testing.assert_close(g_fmap, g_fmap_conv, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(g_bias, g_bias_conv, atol=1e-4, rtol=1e-4)
    k = kernel_size
    taps = torch.stack([g_kernel[:, :, t // k, t % k].T for t in range(k * k)])
    torch.testing.assert_close(g_weight, taps, atol=1e-4, rtol=1e-4)


def test_mean_and_sum_coincide_with_one_sender_per_relation(grid_graph) -> None:
    graph = build_topology("relative", kernel_size=3)(grid_graph(torch.randn(2, 3, 4, 5)))
    layer_sum = RGCNLayer(5, 7, num_relations=9, aggr="sum")
    layer_mean = RGCNLayer(5, 7, num_relations=9, aggr="mean")
    layer_mean.load_state_dict(layer_sum.state_dict())
    torch.testing.assert_close(
        layer_sum.forward_graph(graph, graph.x), layer_mean.forward_graph(graph, graph.x)
    )


def pyg_copy(layer: RGCNLayer, aggr: str) -> RGCNConv:
    conv = RGCNConv(layer.in_channels, layer.out_channels, layer.num_relations, aggr=aggr)
    with torch.no_grad():
        conv.weight.copy_(layer.weight)
        conv.root.copy_(layer.root.weight.T)
        conv.bias.copy_(layer.bias)
    return conv


@pytest.mark.parametrize("aggr", ["sum", "mean"])
@pytest.mark.parametrize(
    "edges, declared",
    [
        ("one_per_slot", True),  # the caller declares it: im2col
        ("one_per_slot", False),  # undeclared: transform-then-scatter, same result
        ("one_received_many_sent", False),
        ("repeated", False),
    ],
)
def test_matches_pyg_rgcnconv(monkeypatch, aggr: str, edges: str, declared: bool) -> None:
    num_nodes, num_relations = 12, 3
    if edges == "one_per_slot":  # each node sends and receives each relation once: im2col
        src = torch.cat([torch.randperm(num_nodes)[:7] for _ in range(num_relations)])
        dst = torch.cat([torch.randperm(num_nodes)[:7] for _ in range(num_relations)])
        edge_type = torch.arange(num_relations).repeat_interleave(7)
    elif edges == "one_received_many_sent":  # node 0 sends relation 0 to everyone
        src, dst = torch.zeros(num_nodes, dtype=torch.long), torch.arange(num_nodes)
        edge_type = torch.zeros(num_nodes, dtype=torch.long)
    else:  # repeated (receiver, relation) pairs
        src = torch.randint(0, num_nodes, (60,))
        dst = torch.randint(0, num_nodes, (60,))
        edge_type = torch.randint(0, num_relations, (60,))
    edge_index = torch.stack([src, dst])
    x = torch.randn(num_nodes, 5, requires_grad=True)
    layer = RGCNLayer(5, 4, num_relations, aggr=aggr)
    with torch.no_grad():
        layer.bias.normal_()
    reference = pyg_copy(layer, {"sum": "add", "mean": "mean"}[aggr])
    gathers = []
    apply = rgcn._GatherMatmul.apply
    monkeypatch.setattr(rgcn._GatherMatmul, "apply", lambda *a: gathers.append(1) or apply(*a))

    out = layer(x, edge_index, edge_type, one_edge_per_relation=declared)
    expected = reference(x, edge_index, edge_type)
    assert len(gathers) == int(declared)  # else transform-then-scatter
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    probe = torch.randn_like(out)
    grad_x, grad_w, grad_root = torch.autograd.grad(
        (out * probe).sum(), [x, layer.weight, layer.root.weight]
    )
    ref_x, ref_w, ref_root = torch.autograd.grad(
        (expected * probe).sum(), [x, reference.weight, reference.root]
    )
    torch.testing.assert_close(grad_x, ref_x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_w, ref_w, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_root, ref_root.T, atol=1e-5, rtol=1e-5)


def test_untyped_edges_use_one_relation() -> None:
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    x = torch.randn(3, 4)
    layer = RGCNLayer(4, 4, num_relations=1)
    torch.testing.assert_close(
        layer(x, edge_index, None), layer(x, edge_index, torch.zeros(4, dtype=torch.long))
    )


def test_repr() -> None:
    assert repr(RGCNLayer(16, 32, num_relations=9)) == "RGCNLayer(16, 32, num_relations=9)"


def test_bad_input_is_rejected() -> None:
    """Each bad call is a fresh layer's first call (value checks run once per shape)."""
    edge_index = torch.tensor([[0, 1], [1, 0]])

    def layer() -> RGCNLayer:
        return RGCNLayer(4, 4, num_relations=2)

    with pytest.raises(ValueError, match="out of range for num_relations=2"):
        layer()(torch.randn(2, 4), edge_index, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="edge_type -1 out of range"):
        layer()(torch.randn(2, 4), edge_index, torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="gives no edge_type"):
        layer()(torch.randn(2, 4), edge_index, None)
    with pytest.raises(ValueError, match=r"expects node features \[num_nodes, 4\]"):
        layer()(torch.randn(2, 5), edge_index, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="edge_type must be"):
        layer()(torch.randn(2, 4), edge_index, torch.tensor([0]))
    with pytest.raises(ValueError, match="refers to node 2"):
        layer()(torch.randn(2, 4), torch.tensor([[0, 2], [1, 0]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="negative node id"):
        layer()(torch.randn(2, 4), torch.tensor([[0, -1], [1, 0]]), torch.tensor([0, 1]))
    # Node 1 receives two edges of relation 0: the declaration is false.
    with pytest.raises(ValueError, match="node 1 receives 2 edges of relation 0"):
        layer()(
            torch.randn(3, 4),
            torch.tensor([[0, 2], [1, 1]]),
            torch.tensor([0, 0]),
            one_edge_per_relation=True,
        )
    with pytest.raises(ValueError, match="num_relations >= 1"):
        RGCNLayer(4, 4, num_relations=0)
    with pytest.raises(ValueError, match="unknown RGCN aggr 'max'"):
        RGCNLayer(4, 4, num_relations=1, aggr="max")


def test_gather_path_backward_runs_under_autocast(grid_graph) -> None:
    graph = build_topology("relative", kernel_size=3)(grid_graph(torch.randn(2, 4, 5, 8)))
    x = graph.x.clone().requires_grad_()
    layer = RGCNLayer(8, 8, num_relations=9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer.forward_graph(graph, x)
    (grad_bf16,) = torch.autograd.grad(out.float().square().sum(), x)
    (grad_fp32,) = torch.autograd.grad(layer.forward_graph(graph, x).square().sum(), x)
    assert grad_bf16.dtype == torch.float32
    torch.testing.assert_close(grad_bf16, grad_fp32, atol=0.1, rtol=0.05)


def test_im2col_tables_are_rebuilt_for_new_or_modified_edges(grid_graph) -> None:
    """The tables are kept for the last edge list; new tensors or in-place edits rebuild them."""
    graph = build_topology("relative", kernel_size=3)(grid_graph(torch.randn(2, 3, 4, 5)))
    edge_index, edge_type = graph.edge_index.clone(), graph.edge_types().clone()
    layer = RGCNLayer(5, 7, num_relations=9)
    x = graph.x

    def fresh(ei: torch.Tensor, et: torch.Tensor) -> torch.Tensor:
        other = RGCNLayer(5, 7, num_relations=9)
        other.load_state_dict(layer.state_dict())
        return other(x, ei, et, one_edge_per_relation=True)

    first = layer(x, edge_index, edge_type, one_edge_per_relation=True)
    torch.testing.assert_close(layer(x, edge_index, edge_type, True), first)
    # Relabel the relations in place (a valid one-edge-per-relation graph, other weights).
    edge_type.copy_((edge_type + 1) % 9)
    relabelled = layer(x, edge_index, edge_type, one_edge_per_relation=True)
    torch.testing.assert_close(relabelled, fresh(edge_index, edge_type))
    assert not torch.allclose(relabelled, first)
    # Reverse every edge in place (the transposed graph).
    edge_index.copy_(edge_index.flip(0))
    torch.testing.assert_close(
        layer(x, edge_index, edge_type, one_edge_per_relation=True), fresh(edge_index, edge_type)
    )
