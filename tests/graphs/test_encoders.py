"""Encoders: observations to entity graphs (shapes, masks, positions) and their bad input."""

from __future__ import annotations

import pytest
import torch

from graphrl.graphs import (
    ENCODERS,
    GridEncoder,
    ObjectEncoder,
    PixelEncoder,
    SymbolEmbedding,
    VectorEncoder,
    build_encoder,
    grid_positions,
)


def symbols(batch: int, h: int, w: int) -> torch.Tensor:
    """``[B, H, W, 2]`` observations: channel 0 in [0, 4), channel 1 in [0, 3)."""
    return torch.stack(
        [torch.randint(0, 4, (batch, h, w)), torch.randint(0, 3, (batch, h, w))], dim=-1
    )


def test_symbol_embedding_is_a_linear_map_of_concatenated_one_hots() -> None:
    embed = SymbolEmbedding((4, 3), dim=5)
    obs = symbols(2, 3, 3)
    one_hot = torch.cat(
        [torch.nn.functional.one_hot(obs[..., 0], 4), torch.nn.functional.one_hot(obs[..., 1], 3)],
        dim=-1,
    ).float()
    torch.testing.assert_close(embed(obs), one_hot @ embed.table.weight)


def test_grid_encoder_makes_one_node_per_cell() -> None:
    encoder = GridEncoder((4, 3), out_channels=6)
    graph = encoder(symbols(2, 3, 5))
    assert graph.x.shape == (30, 6) and graph.grid_shape == (3, 5) and graph.mask.all()
    assert torch.equal(graph.pos, grid_positions(3, 5).repeat(2, 1))


def test_object_encoder_masks_background_cells() -> None:
    obs = symbols(3, 4, 4)
    obs[1, ..., 0] = 0  # no entity at all
    graph = ObjectEncoder((4, 3), out_channels=6, background=(0, 3))(obs)
    expected = ((obs[..., 0] != 0) & (obs[..., 0] != 3)).view(3, 16)
    assert torch.equal(graph.mask, expected) and not graph.mask[1].any()
    assert graph.x.shape == (48, 6) and graph.grid_shape == (4, 4)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_pixel_encoder_makes_one_entity_per_feature_map_cell(dtype) -> None:
    encoder = PixelEncoder(in_channels=3, out_channels=8, hidden_channels=(4, 6), kernel_size=2)
    obs = torch.randint(0, 256, (2, 10, 12, 3)).to(dtype)
    graph = encoder(obs)
    assert graph.grid_shape == (8, 10)  # two 2x2 convs, stride 1
    assert graph.x.shape == (2 * 80, 8) and graph.pos.shape == (160, 2)


def test_vector_encoder_defaults_pos_to_the_vectors_and_keeps_the_mask() -> None:
    obs, mask = torch.randn(2, 5, 3), torch.rand(2, 5) > 0.5
    graph = VectorEncoder(3, 4, hidden_channels=8)(obs, mask=mask)
    assert graph.x.shape == (10, 4) and graph.grid_shape is None
    assert torch.equal(graph.pos, obs.reshape(10, 3)) and torch.equal(graph.mask, mask)
    pos = torch.randn(2, 5, 2)
    assert torch.equal(VectorEncoder(3, 4)(obs, pos=pos).pos, pos.reshape(10, 2))


def test_build_encoder_by_name() -> None:
    assert ENCODERS.names() == ["grid", "objects", "pixels", "vectors"]
    assert isinstance(build_encoder("vectors", in_channels=3), VectorEncoder)
    with pytest.raises(ValueError, match="unknown encoder 'image'; choose one of: grid, objects"):
        build_encoder("image")


def test_bad_observations_are_rejected() -> None:
    grid = GridEncoder((4, 3), out_channels=6)
    with pytest.raises(ValueError, match=r"expects observations \[B, H, W, C=2\]; got shape"):
        grid(torch.zeros(3, 3, 2, dtype=torch.long))  # no batch dimension
    with pytest.raises(ValueError, match=r"\[B, H, W, C=2\]; got shape \(1, 3, 3, 3\)"):
        grid(torch.zeros(1, 3, 3, 3, dtype=torch.long))
    bad = symbols(1, 2, 2)
    bad[0, 0, 0, 1] = 3  # channel 1 has 3 symbols: 0, 1, 2
    with pytest.raises(ValueError, match=r"symbols out of range for symbol_counts=\(4, 3\)"):
        grid(bad)
    with pytest.raises(ValueError, match=r"\[B, H, W, C=3\]"):
        PixelEncoder()(torch.zeros(1, 8, 8, 4))
    vectors = VectorEncoder(3, 4)
    with pytest.raises(ValueError, match=r"expects \[B, N, F=3\] vectors; got shape \(2, 5, 4\)"):
        vectors(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"mask must be \[B, N\]"):
        vectors(torch.randn(2, 5, 3), mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"pos must be \[B, N, P\]"):
        vectors(torch.randn(2, 5, 3), pos=torch.randn(2, 4, 2))
    with pytest.raises(ValueError, match=r"no node slots \(N=0\)"):
        vectors(torch.randn(2, 0, 3))
    with pytest.raises(ValueError, match=r"no node slots \(N=0\)"):
        grid(torch.zeros(1, 0, 3, 2, dtype=torch.long))
