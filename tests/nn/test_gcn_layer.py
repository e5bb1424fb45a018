"""GCN is a GNN: the lecture's reduction, the dense matrix formulas, and PyG's GCNConv."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GCNConv
from torch_geometric.utils import add_remaining_self_loops, coalesce, to_dense_adj

from graphrl.graphs import build_topology
from graphrl.nn import GCNLayer, GNNLayer

IN, OUT = 5, 3


def random_edges(num_nodes: int, num_edges: int, with_some_self_loops: bool) -> torch.Tensor:
    edge_index = torch.randint(0, num_nodes, (2, num_edges))
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    if with_some_self_loops:
        edge_index = torch.cat([edge_index, torch.tensor([[2, 4], [2, 4]])], dim=1)
    return coalesce(edge_index, num_nodes=num_nodes)


def gcn_as_gnn(gcn: GCNLayer) -> GNNLayer:
    """``GNNLayer`` with linear ``f_e(v_j, v_i) = B^T v_j`` and ``f_v(v_i, e_i) = e_i + b``."""
    gnn = GNNLayer(IN, OUT, mlp_layers=1, aggr="mean")
    with torch.no_grad():
        gnn.edge_mlp.weight.zero_()
        gnn.edge_mlp.weight[:, :IN] = gcn.lin.weight  # the v_j part; the v_i part stays 0
        gnn.edge_mlp.bias.zero_()
        gnn.node_mlp.weight.zero_()
        gnn.node_mlp.weight[:, IN:] = torch.eye(OUT)  # the message part; the v_i part stays 0
        gnn.node_mlp.bias.copy_(gcn.lin.bias)
    return gnn


@pytest.mark.parametrize("with_some_self_loops", [False, True])
def test_mean_gcn_is_a_gnn_with_linear_maps_on_a_graph_with_self_loops(
    with_some_self_loops: bool,
) -> None:
    num_nodes = 8
    edge_index = random_edges(num_nodes, 20, with_some_self_loops)
    x = torch.randn(num_nodes, IN)
    gcn = GCNLayer(IN, OUT, norm="mean")
    with torch.no_grad():
        gcn.lin.bias.normal_()
    gnn = gcn_as_gnn(gcn)
    looped, _ = add_remaining_self_loops(edge_index, num_nodes=num_nodes)
    torch.testing.assert_close(gcn(x, edge_index), gnn(x, looped), atol=1e-6, rtol=1e-5)


def test_mean_gcn_is_the_lecture_matrix_formula() -> None:
    """``V' = W V B + b`` with ``W_ij = 1 / |N(i) + i|`` for ``j -> i`` or ``j = i``."""
    num_nodes = 9
    edge_index = random_edges(num_nodes, 25, with_some_self_loops=True)
    x = torch.randn(num_nodes, IN)
    gcn = GCNLayer(IN, OUT, norm="mean")
    adj = to_dense_adj(edge_index, max_num_nodes=num_nodes)[0].T  # adj[i, j]: edge j -> i
    adj = (adj + torch.eye(num_nodes)).clamp(max=1)
    topology_matrix = adj / adj.sum(1, keepdim=True)
    expected = topology_matrix @ x @ gcn.lin.weight.T + gcn.lin.bias
    torch.testing.assert_close(gcn(x, edge_index), expected, atol=1e-6, rtol=1e-5)


def test_symmetric_gcn_is_kipf_welling_and_pyg_gcnconv(grid_graph) -> None:
    graph = build_topology("grid4")(grid_graph(torch.randn(2, 3, 4, IN)))
    gcn = GCNLayer(IN, OUT, norm="symmetric")
    reference = GCNConv(IN, OUT)
    with torch.no_grad():
        gcn.conv.bias.normal_()
        reference.lin.weight.copy_(gcn.conv.lin.weight)
        reference.bias.copy_(gcn.conv.bias)
    out = gcn.forward_graph(graph, graph.x)
    torch.testing.assert_close(out, reference(graph.x, graph.edge_index))

    # D^-1/2 (A + I) D^-1/2 X B + b, grid4 being undirected.
    n = graph.num_nodes
    adj = to_dense_adj(graph.edge_index, max_num_nodes=n)[0] + torch.eye(n)
    d = adj.sum(1).rsqrt()
    expected = d[:, None] * adj * d[None, :] @ graph.x @ gcn.conv.lin.weight.T + gcn.conv.bias
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_gnn_layer_is_the_lecture_update() -> None:
    """``e'_ji = f_e(e_ji, v_j, v_i)``, ``e_i = sum_j e'_ji``, ``v'_i = f_v(v_i, e_i)``."""
    edge_index = torch.tensor([[0, 1, 2, 3, 3], [1, 2, 0, 0, 1]])
    x, edge_attr = torch.randn(4, IN), torch.randn(5, 2)
    layer = GNNLayer(IN, OUT, edge_dim=2, mlp_layers=2)
    expected = []
    for i in range(4):
        incoming = (edge_index[1] == i).nonzero().flatten().tolist()
        total = torch.zeros(OUT)
        for e in incoming:
            j = int(edge_index[0, e])
            total = total + layer.edge_mlp(torch.cat([edge_attr[e], x[j], x[i]]))
        expected.append(layer.node_mlp(torch.cat([x[i], total])))
    torch.testing.assert_close(
        layer(x, edge_index, edge_attr), torch.stack(expected), atol=1e-6, rtol=1e-5
    )


def test_repr() -> None:
    assert repr(GCNLayer(16, 32)) == "GCNLayer(16, 32, norm=mean)"
    assert repr(GNNLayer(16, 32)) == "GNNLayer(16, 32, edge_dim=0, aggr=add)"


def test_bad_input_is_rejected() -> None:
    edge_index = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="unknown GCN norm 'sym'; choose one of: mean, symmetric"):
        GCNLayer(4, 4, norm="sym")
    with pytest.raises(ValueError, match=r"expects node features \[num_nodes, 4\]"):
        GCNLayer(4, 4)(torch.randn(2, 3), edge_index)
    with pytest.raises(ValueError, match=r"expects edge_index \[2, E\]"):
        GCNLayer(4, 4)(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="edge_dim=2 got no edge_attr"):
        GNNLayer(4, 4, edge_dim=2)(torch.randn(2, 4), edge_index)
    with pytest.raises(ValueError, match="edge_dim=0 got some edge_attr"):
        GNNLayer(4, 4)(torch.randn(2, 4), edge_index, torch.randn(1, 2))
    with pytest.raises(ValueError, match="mlp_layers >= 1"):
        GNNLayer(4, 4, mlp_layers=0)
