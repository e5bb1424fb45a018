"""Parity DataModule: labels against a loop, lengths per batch, positions, and bad input."""

from __future__ import annotations

import functools

import pytest
import torch

from datamodules import ParityDataModule
from graphrl.models import RelationalClassifier, SetBackbone
from graphrl.nn import ProcessorConfig


def test_labels_are_the_parity_of_the_bits_and_lengths_follow_the_lists() -> None:
    data = ParityDataModule(train_lengths=[3, 5], eval_lengths=[5, 20], batch_size=16)
    train = data.train_dataset()
    assert {train[i]["x"].shape[1] for i in range(30)} == {3, 5}
    batch = data.eval_dataset("test", 20)[0]
    bits = batch["x"][..., 0]
    assert set(bits.unique().tolist()) <= {0.0, 1.0}
    expected = torch.tensor([int(sum(row.tolist())) % 2 for row in bits])
    torch.testing.assert_close(batch["y"], expected)
    assert data.eval_dataloader_names == ["len5", "len20"] and data.num_classes == 2


def test_sinusoidal_positions_tell_places_apart_and_none_gives_bits_only() -> None:
    plain = ParityDataModule(positional="none").eval_dataset("test", 8)[0]["x"]
    assert plain.shape[-1] == 1
    data = ParityDataModule(positional="sinusoidal", pe_dim=8)
    x = data.eval_dataset("test", 8)[0]["x"]
    assert x.shape[-1] == data.num_features == 9
    positions = x[0, :, 1:]
    assert torch.cdist(positions, positions).fill_diagonal_(1.0).min() > 1e-3
    torch.testing.assert_close(x[0, :, 1:], x[1, :, 1:])  # the same positions in every sample


def test_attention_without_positions_sees_only_the_multiset_of_bits() -> None:
    """Permuting the bits permutes nothing the model reads: same output (so it cannot count
    positions), while parity is unchanged too; with positions the output moves."""
    torch.manual_seed(0)
    for positional, should_change in (("none", False), ("sinusoidal", True)):
        data = ParityDataModule(positional=positional, pe_dim=8)
        model = RelationalClassifier(
            num_features=data.num_features,
            num_classes=2,
            answer="label",
            backbone=functools.partial(
                SetBackbone,
                channels=16,
                processor=ProcessorConfig(num_layers=1, heads=2),
                readout="mean",
            ),
            attention_maps=False,
        )
        batch = data.eval_dataset("test", 8)[0]
        perm = torch.randperm(8)
        shuffled = dict(batch, x=torch.cat([batch["x"][:, perm, :1], batch["x"][:, :, 1:]], -1))
        with torch.no_grad():
            a, b = model(batch)[0], model(shuffled)[0]
        assert torch.allclose(a, b, atol=1e-5) != should_change


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_lengths": [0, 3]}, "train_lengths must list lengths >= 1"),
        ({"eval_lengths": []}, "eval_lengths must list lengths >= 1"),
        ({"positional": "rope"}, "unknown positional 'rope'; choose one of: none, sinusoidal"),
        ({"positional": "sinusoidal", "pe_dim": 1}, "pe_dim must be >= 2"),
    ],
)
def test_bad_parity_settings_fail_clearly(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParityDataModule(**kwargs)
