"""Attention is a GNN with a learned topology: MHA equivalence and dense == sparse paths."""

from __future__ import annotations

import pytest
import torch

from graphrl.graphs import build_topology
from graphrl.nn import AttentionLayer, Processor, ProcessorConfig

CHANNELS, HEADS = 16, 4


def layer_and_mha(**kwargs) -> tuple[AttentionLayer, torch.nn.MultiheadAttention]:
    layer = AttentionLayer(CHANNELS, heads=HEADS, **kwargs).eval()
    mha = torch.nn.MultiheadAttention(CHANNELS, HEADS, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
        layer.in_proj.weight.copy_(mha.in_proj_weight)
        layer.in_proj.bias.copy_(mha.in_proj_bias)
        layer.out_proj.weight.copy_(mha.out_proj.weight)
        layer.out_proj.bias.copy_(mha.out_proj.bias)
    return layer, mha


@pytest.mark.parametrize("masked", [False, True], ids=["full", "key_padding"])
def test_attention_block_is_multihead_attention(set_graph, masked: bool) -> None:
    b, n = 3, 7
    mask = torch.ones(b, n, dtype=torch.bool)
    if masked:
        mask[0, 5:] = False
        mask[2, 1] = False
    graph = build_topology("complete")(set_graph(torch.randn(b, n, CHANNELS), mask=mask))
    layer, mha = layer_and_mha()
    x = graph.dense_x()

    expected, expected_weights = mha(
        x, x, x, key_padding_mask=~mask if masked else None, average_attn_weights=False
    )
    dense, dense_weights = layer.attend_dense(
        x, graph.dense_attention_mask(), return_attention_weights=True
    )
    sparse, alpha = layer.attend_sparse(graph.x, graph.edge_index, return_attention_weights=True)
    src, dst = graph.edge_index
    n_ = graph.nodes_per_graph
    sparse_weights = torch.zeros(b, HEADS, n, n)
    sparse_weights[dst // n_, :, dst % n_, src % n_] = alpha

    real = mask  # compare only the rows of real entities
    torch.testing.assert_close(dense[real], expected[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(graph.dense_x(sparse)[real], expected[real], atol=1e-5, rtol=1e-5)
    real_rows = real[:, None, :].expand(-1, HEADS, -1)  # [B, H, N] queries
    for weights in (dense_weights, sparse_weights):
        torch.testing.assert_close(
            weights[real_rows], expected_weights[real_rows], atol=1e-6, rtol=1e-5
        )
    # The weights of each real query are a distribution over the real keys only.
    torch.testing.assert_close(dense_weights.sum(-1)[real_rows], torch.ones(int(real_rows.sum())))
    assert (dense_weights[real_rows.unsqueeze(-1) & ~mask[:, None, None, :]] == 0).all()


def test_dense_attention_with_and_without_weights_agree() -> None:
    """``attend_dense`` runs SDPA without weights and an explicit softmax with them."""
    layer, _ = layer_and_mha()
    x = torch.randn(2, 5, CHANNELS)
    mask = torch.rand(2, 1, 5, 5) > 0.4
    out_fast = layer.attend_dense(x, mask)
    out_slow, _ = layer.attend_dense(x, mask, return_attention_weights=True)
    torch.testing.assert_close(out_fast, out_slow, atol=1e-5, rtol=1e-5)


def graphs_for_paths(grid_graph, set_graph):
    """Complete, grid4, knn and masked graphs, some with real nodes that receive nothing."""
    grid_mask = torch.rand(2, 4, 5) > 0.3
    grid_mask[0, 0, 0], grid_mask[0, 0, 1], grid_mask[0, 1, 0] = True, False, False  # isolated
    set_mask = torch.ones(3, 6, dtype=torch.bool)
    set_mask[1, 4:] = False
    feats = torch.randn(2, 4, 5, CHANNELS)
    return {
        "complete": build_topology("complete")(grid_graph(feats)),
        "complete_masked": build_topology("complete")(
            set_graph(torch.randn(3, 6, CHANNELS), mask=set_mask)
        ),
        "grid4": build_topology("grid4")(grid_graph(feats)),
        "grid4_masked": build_topology("grid4")(grid_graph(feats, mask=grid_mask)),
        "knn": build_topology("knn", k=3)(set_graph(torch.randn(3, 6, CHANNELS))),
        "knn_masked": build_topology("knn", k=3)(
            set_graph(torch.randn(3, 6, CHANNELS), mask=set_mask)
        ),
        "grid8": build_topology("grid8")(grid_graph(feats)),
    }


@pytest.mark.parametrize("edge_features", ["none", "offset"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_dense_and_sparse_paths_agree(
    grid_graph, set_graph, edge_features: str, norm_first: bool
) -> None:
    edge_dim = 2 if edge_features == "offset" else 0
    dense = AttentionLayer(CHANNELS, HEADS, edge_dim=edge_dim, norm_first=norm_first, path="dense")
    if dense.edge_bias is not None:  # zero at init: make the edge features matter
        torch.nn.init.normal_(dense.edge_bias.weight)
    sparse = AttentionLayer(
        CHANNELS, HEADS, edge_dim=edge_dim, norm_first=norm_first, path="sparse"
    )
    sparse.load_state_dict(dense.state_dict())

    for name, graph in graphs_for_paths(grid_graph, set_graph).items():
        assert dense.uses_dense_path(graph) and not sparse.uses_dense_path(graph)
        out_d, w_d = dense.forward_graph(
            graph, graph.x, return_attention_weights=True, edge_features=edge_features
        )
        out_s, w_s = sparse.forward_graph(
            graph,
            graph.x,
            graph.edge_attr(edge_features),
            return_attention_weights=True,
            edge_features=edge_features,
        )
        real = graph.node_mask
        torch.testing.assert_close(out_d[real], out_s[real], atol=1e-5, rtol=1e-5, msg=name)
        rows = graph.mask[:, None, :].expand(-1, HEADS, -1)
        torch.testing.assert_close(w_d[rows], w_s[rows], atol=1e-6, rtol=1e-5, msg=name)


def test_processor_paths_agree_with_edge_features(grid_graph) -> None:
    graph = build_topology("grid8")(grid_graph(torch.randn(2, 3, 4, CHANNELS)))
    outs = []
    for path in ("dense", "sparse"):
        torch.manual_seed(1)
        config = ProcessorConfig(
            layer="attention",
            num_layers=2,
            heads=HEADS,
            edge_features="offset_distance",
            layer_kwargs={"path": path},
        )
        processor = Processor(config, CHANNELS, pos_dim=2)
        for layer in processor.layers:
            torch.nn.init.normal_(layer.edge_bias.weight)
        outs.append(processor(graph, return_attention_weights=True))
    torch.testing.assert_close(outs[0][0], outs[1][0], atol=1e-5, rtol=1e-5)
    for w_dense, w_sparse in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(w_dense, w_sparse, atol=1e-6, rtol=1e-5)


def test_auto_path_picks_dense_for_complete_and_small_graphs(grid_graph) -> None:
    feats = torch.randn(1, 3, 3, CHANNELS)
    layer = AttentionLayer(CHANNELS, HEADS, dense_max_nodes=4)
    assert layer.uses_dense_path(build_topology("complete")(grid_graph(feats)))
    assert not layer.uses_dense_path(build_topology("grid4")(grid_graph(feats)))  # 9 nodes > 4
    assert AttentionLayer(CHANNELS, HEADS).uses_dense_path(
        build_topology("grid4")(grid_graph(feats))
    )


def test_pyg_style_call_and_repr() -> None:
    layer = AttentionLayer(CHANNELS, HEADS)
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    out, alpha = layer(torch.randn(3, CHANNELS), edge_index, return_attention_weights=True)
    assert out.shape == (3, CHANNELS) and alpha.shape == (3, HEADS)
    torch.testing.assert_close(alpha, torch.ones(3, HEADS))  # one incoming edge each
    assert repr(layer) == "AttentionLayer(16, heads=4, edge_dim=0, path='auto')"


def test_bad_input_is_rejected(set_graph) -> None:
    with pytest.raises(ValueError, match="not divisible by heads=3"):
        AttentionLayer(16, heads=3)
    with pytest.raises(ValueError, match="unknown path 'fast'; choose one of: auto, dense"):
        AttentionLayer(16, path="fast")
    graph = build_topology("complete")(set_graph(torch.randn(2, 3, CHANNELS)))
    with pytest.raises(ValueError, match="edge_dim=2 got edge features of width None"):
        AttentionLayer(CHANNELS, HEADS, edge_dim=2, path="sparse").forward_graph(graph, graph.x)
    with pytest.raises(ValueError, match="edge_dim=2 got edge features of width 1"):
        AttentionLayer(CHANNELS, HEADS, edge_dim=2).forward_graph(
            graph, graph.x, edge_features="distance"
        )
    with pytest.raises(ValueError, match=r"expects node features \[num_nodes, 16\]"):
        AttentionLayer(CHANNELS, HEADS).forward_graph(graph, torch.randn(6, 8))
