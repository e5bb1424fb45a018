"""The question as a second view: ``HyperLinear`` (weights generated from it) against
concatenation; the Nth-farthest question view carries exactly the features it took out."""

from __future__ import annotations

import functools

import pytest
import torch

from datamodules import NthFarthestDataModule
from graphrl.models import RelationalClassifier, SetBackbone
from graphrl.nn import HyperLinear, QuestionInput


def test_hyperlinear_is_one_generated_linear_map_per_sample() -> None:
    torch.manual_seed(0)
    layer = HyperLinear(5, 3, context_features=4)
    x, q = torch.randn(2, 6, 5), torch.randn(2, 4)
    out = layer(x, q)
    for b in range(2):
        w = layer.weight_generator(q[b]).view(5, 3)
        torch.testing.assert_close(out[b], x[b] @ w + layer.bias_generator(q[b]))
    perm = torch.randperm(6)
    torch.testing.assert_close(layer(x[:, perm], q), out[:, perm])  # equivariant over entities
    assert not torch.allclose(layer(x, q.flip(0))[0], out[0])  # the question changes the map


def test_question_view_holds_the_columns_the_entities_lost() -> None:
    kwargs = {"batch_size": 8, "max_entities": 12}
    inside = NthFarthestDataModule(**kwargs).eval_dataset("test", 8)[0]
    apart_data = NthFarthestDataModule(question_view=True, **kwargs)
    apart = apart_data.eval_dataset("test", 8)[0]
    d, m = 16, 12
    assert apart_data.question_dim == 2 * m
    assert apart["x"].shape[-1] + apart_data.question_dim == inside["x"].shape[-1]
    torch.testing.assert_close(apart["question"], inside["x"][:, 0, d + m : d + 3 * m])
    torch.testing.assert_close(apart["x"][..., : d + m], inside["x"][..., : d + m])
    torch.testing.assert_close(apart["x"][..., -1], inside["x"][..., -1])


@pytest.mark.parametrize("mode", ["concat", "hyper"])
def test_models_read_the_question_view_and_fail_clearly_without_it(mode: str) -> None:
    data = NthFarthestDataModule(question_view=True, batch_size=4)
    model = RelationalClassifier(
        num_features=data.num_features,
        question_dim=data.question_dim,
        question_input=mode,
        answer="pointer",
        backbone=functools.partial(SetBackbone, channels=16),
        question_hidden=16,
        attention_maps=False,
    )
    batch = data.eval_dataset("test", 8)[0]
    assert model(batch)[0].shape == (4, 8)
    with pytest.raises(ValueError, match="batch has no 'question'"):
        model({k: v for k, v in batch.items() if k != "question"})


def test_unknown_question_input_fails_listing_the_choices() -> None:
    with pytest.raises(
        ValueError, match="unknown question_input 'add'; choose one of: concat, hyper"
    ):
        QuestionInput(4, 2, mode="add")


def test_hyper_question_input_without_a_question_view_fails_naming_the_flag() -> None:
    with pytest.raises(ValueError, match=r"set --data\.init_args\.question_view=true"):
        RelationalClassifier(num_features=49, question_input="hyper", answer="pointer")
