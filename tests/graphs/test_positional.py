"""Positional features: shapes, and that they tell cells apart (equivariant layers cannot)."""

from __future__ import annotations

import pytest
import torch

from graphrl.graphs import GridEncoder, GridPositional, grid_positions, sinusoidal_features
from graphrl.graphs.positional import normalized_coordinates

D = 8


@pytest.mark.parametrize("kind", ["raw", "sinusoidal", "learned"])
def test_positional_features_keep_the_width_and_tell_cells_apart(kind: str) -> None:
    h, w = 3, 4
    positional = GridPositional(kind, D)
    x = torch.zeros(2, h * w, D)  # every cell looks the same
    out = positional(x, grid_positions(h, w), (h, w))
    assert out.shape == (2, h * w, D)
    assert out[0].unique(dim=0).shape[0] == h * w, "every cell gets different features"
    torch.testing.assert_close(out[0], out[1])  # and the same ones in every graph


def test_grid_encoder_positions_make_identical_symbols_distinct() -> None:
    obs = torch.zeros(1, 3, 3, 1, dtype=torch.long)  # nine identical cells
    with_pos = GridEncoder((2,), out_channels=D, positional="raw")(obs)
    without = GridEncoder((2,), out_channels=D, positional="none")(obs)
    assert with_pos.x.unique(dim=0).shape[0] == 9
    assert without.x.unique(dim=0).shape[0] == 1


def test_raw_coordinates_span_minus_one_to_one() -> None:
    coords = normalized_coordinates(grid_positions(3, 5), (3, 5))
    assert coords[0].tolist() == [-1.0, -1.0] and coords[-1].tolist() == [1.0, 1.0]
    assert coords.unique(dim=0).shape[0] == 15
    assert normalized_coordinates(grid_positions(1, 1), (1, 1)).tolist() == [[-1.0, -1.0]]


def test_sinusoidal_features_split_the_width_across_coordinates() -> None:
    pos = grid_positions(2, 2)
    feats = sinusoidal_features(pos, 9)  # 4 per coordinate (2 sin, 2 cos), 1 zero pad
    assert feats.shape == (4, 9) and (feats[:, -1] == 0).all()
    torch.testing.assert_close(feats[0, :4], torch.tensor([0.0, 0.0, 1.0, 1.0]))  # row 0
    with pytest.raises(ValueError, match="sinusoidal positions need dim >= 4, got 3"):
        sinusoidal_features(pos, 3)


def test_learned_positions_are_parameters_with_a_size_limit() -> None:
    positional = GridPositional("learned", D, max_size=4)
    assert sum(p.numel() for p in positional.parameters()) == 2 * 4 * D
    with pytest.raises(ValueError, match="grids up to 4; got \\(5, 2\\): raise max_size"):
        positional(torch.zeros(1, 10, D), grid_positions(5, 2), (5, 2))
    with pytest.raises(ValueError, match="unknown positional 'rope'; choose one of: none, raw"):
        GridPositional("rope", D)
