"""Set-size-aware attention (``size_scaling``): both paths agree, the identity at the reference
size, ``count`` turns the softmax average into a sum that counts, and bad values fail."""

from __future__ import annotations

import pytest
import torch

from graphrl.graphs import build_encoder, build_topology
from graphrl.nn import AttentionLayer


def _graph(x: torch.Tensor, mask: torch.Tensor):
    enc = build_encoder("vectors", in_channels=x.shape[-1], out_channels=x.shape[-1])
    pos = torch.randn(*x.shape[:2], 2, generator=torch.Generator().manual_seed(1))
    return build_topology("complete")(enc(x, mask=mask, pos=pos))


@pytest.mark.parametrize("scaling", ["log", "count"])
def test_dense_and_sparse_paths_agree_with_padding(scaling: str) -> None:
    torch.manual_seed(0)
    layer = AttentionLayer(16, heads=4, edge_dim=1, edge_values=True, size_scaling=scaling)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 3:] = False  # one set of 3 among sets of 7: the scaling must use each row's count
    graph = _graph(torch.randn(3, 7, 16), mask)
    layer.path = "dense"
    dense = layer.forward_graph(graph, graph.x, None, edge_features="distance")
    layer.path = "sparse"
    sparse = layer.forward_graph(
        graph, graph.x, graph.edge_attr("distance"), edge_features="distance"
    )
    real = graph.mask.reshape(-1)
    torch.testing.assert_close(dense[real], sparse[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("scaling", ["log", "count"])
def test_scalings_are_the_identity_at_the_reference_size(scaling: str) -> None:
    torch.manual_seed(0)
    plain = AttentionLayer(16, heads=2)
    scaled = AttentionLayer(16, heads=2, size_scaling=scaling, reference_size=5)
    scaled.load_state_dict(plain.state_dict())
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(scaled.attend_dense(x), plain.attend_dense(x))
    assert not torch.allclose(scaled.attend_dense(x[:, :3]), plain.attend_dense(x[:, :3]))


def test_count_scaling_counts_and_the_softmax_average_cannot() -> None:
    """Uniform attention (zero queries): the message is mean(v) * n / ref with ``count``, so
    doubling a set of identical nodes doubles it; the plain softmax average is unchanged."""
    torch.manual_seed(0)
    outs = {}
    for scaling in ("none", "count"):
        layer = AttentionLayer(8, heads=1, size_scaling=scaling, reference_size=4)
        with torch.no_grad():
            layer.in_proj.weight[:8].zero_()  # q = 0: every logit equal
            layer.out_proj.bias.zero_()
        row = torch.randn(1, 1, 8).expand(1, 8, 8)
        outs[scaling] = (layer.attend_dense(row[:, :4]), layer.attend_dense(row))
    small, big = outs["none"]
    torch.testing.assert_close(small[:, 0], big[:, 0])
    small, big = outs["count"]
    torch.testing.assert_close(2 * small[:, 0], big[:, 0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size_scaling": "sqrt"}, "unknown size_scaling 'sqrt'; choose one of: none, log, count"),
        ({"size_scaling": "log", "reference_size": 1}, "reference_size must be >= 2"),
    ],
)
def test_bad_scaling_fails_clearly(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AttentionLayer(8, heads=2, **kwargs)
