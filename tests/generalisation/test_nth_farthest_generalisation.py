"""Nth-farthest beyond the training K: a distribution of training sizes (``SizeMixture``) and the
accuracy on the ranks seen in training (``test/acc_k16_seen_ranks``)."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch

from datamodules import NthFarthestDataModule
from datamodules.base import SizeMixture
from graphrl.models import RelationalClassifier, SetBackbone
from graphrl.nn import ProcessorConfig


def test_mixture_sizes_are_pure_functions_of_the_sample_count_and_cover_the_list() -> None:
    mixture = SizeMixture((4, 8, 16), seed=3)
    draws = [mixture.size_at(i * 64) for i in range(300)]
    assert draws == [SizeMixture((4, 8, 16), seed=3).size_at(i * 64) for i in range(300)]
    counts = {k: draws.count(k) for k in (4, 8, 16)}
    assert all(60 <= c <= 140 for c in counts.values()), counts  # uniform: ~100 each
    assert draws != [SizeMixture((4, 8, 16), seed=4).size_at(i * 64) for i in range(300)]


def test_train_num_entities_draws_k_per_batch_and_marks_seen_ranks() -> None:
    data = NthFarthestDataModule(
        train_num_entities=[4, 6], eval_num_entities=[6, 12], max_entities=12, batch_size=32
    )
    train = data.train_dataset()
    sizes = {train[i]["x"].shape[1] for i in range(40)}
    assert sizes == {4, 6}
    assert data.max_entities == 12 and data.eval_subsets == ["seen_ranks"]
    batch = data.eval_dataset("test", 12)[0]
    d, m = 16, 12
    rank = batch["x"][:, 0, d + m : d + 2 * m].argmax(-1)  # one_hot(n) in the features
    torch.testing.assert_close(batch["seen_ranks"], rank < 6)
    assert 0 < int(batch["seen_ranks"].sum()) < 32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"train_num_entities": [4, 8], "curriculum": [4, 8], "curriculum_steps": [10]},
            "not both",
        ),
        ({"train_num_entities": [4, 40]}, r"train_num_entities must lie .* \[40\]"),
        ({"train_num_entities": []}, "at least one K"),
    ],
)
def test_bad_training_sizes_fail_clearly(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NthFarthestDataModule(**kwargs)


def test_seen_rank_accuracy_is_logged_beside_the_overall_one(tmp_path) -> None:
    torch.manual_seed(0)
    data = NthFarthestDataModule(
        num_entities=4,
        eval_num_entities=[4, 8],
        max_entities=8,
        batch_size=64,
        train_samples_per_epoch=64,
        val_samples=64,
        test_samples=256,
    )
    model = RelationalClassifier(
        num_features=data.num_features,
        num_classes=data.num_classes,
        max_entities=data.max_entities,
        pos_dim=data.pos_dim,
        answer=data.answer,
        backbone=functools.partial(
            SetBackbone, channels=16, processor=ProcessorConfig(num_layers=1, heads=2)
        ),
        attention_maps=False,
    )
    trainer = L.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data, verbose=False)
    metrics = trainer.callback_metrics
    # at K=4 every rank was seen in training; at K=8 only ranks 0-3: recompute that subset
    assert float(metrics["test/acc_k4_seen_ranks"]) == pytest.approx(float(metrics["test/acc_k4"]))
    batches = list(data.eval_dataset("test", 8))
    with torch.no_grad():
        hits = [(model(b)[0].argmax(-1) == b["y"])[b["seen_ranks"]] for b in batches]
    expected = torch.cat(hits).float().mean().item()
    assert float(metrics["test/acc_k8_seen_ranks"]) == pytest.approx(expected, abs=1e-6)


def test_without_label_features_only_the_vector_the_rank_and_the_m_flag_remain() -> None:
    full = NthFarthestDataModule(batch_size=8).eval_dataset("test", 8)[0]["x"]
    data = NthFarthestDataModule(batch_size=8, label_features=False)
    bare = data.eval_dataset("test", 8)[0]["x"]
    d, m = 16, 16
    assert data.num_features == d + m + 1 == bare.shape[-1]
    torch.testing.assert_close(bare[..., :d], full[..., :d])
    torch.testing.assert_close(bare[..., d : d + m], full[..., d + m : d + 2 * m])  # one_hot(n)
    torch.testing.assert_close(bare[..., -1], full[..., -1])  # i == m


def test_fraction_rank_code_is_the_same_for_the_same_fraction_at_every_k() -> None:
    from datamodules.nth_farthest import RANK_FRACTION_DIM, NthFarthestTask, rank_fraction_code

    task = NthFarthestTask(max_entities=32, label_features=False, rank_code="fraction")
    assert task.num_features == 16 + RANK_FRACTION_DIM + 1
    g = torch.Generator().manual_seed(0)
    for k in (8, 16, 32):
        batch = task.sample(64, k, g)
        assert batch["x"].shape == (64, k, task.num_features)
        code = batch["x"][:, 0, 16 : 16 + RANK_FRACTION_DIM]
        assert torch.all((code[:, 0] >= 0) & (code[:, 0] <= 1))
        # the farthest (n = 0) and m itself (n = K - 1) have the same code whatever K
    for n, k in ((0, 8), (0, 32), (7, 8), (31, 32), (15, 16)):
        f = torch.tensor([n / (k - 1)])
        torch.testing.assert_close(rank_fraction_code(torch.tensor([n]), k)[0, 0], f[0])
    torch.testing.assert_close(
        rank_fraction_code(torch.tensor([15]), 16), rank_fraction_code(torch.tensor([31]), 32)
    )
    assert not torch.allclose(
        rank_fraction_code(torch.tensor([3]), 16), rank_fraction_code(torch.tensor([4]), 16)
    )


def test_fraction_rank_code_question_view_and_bad_names() -> None:
    from datamodules.nth_farthest import RANK_FRACTION_DIM

    data = NthFarthestDataModule(
        batch_size=8, label_features=False, rank_code="fraction", question_view=True
    )
    batch = data.eval_dataset("test", 8)[0]
    assert data.question_dim == RANK_FRACTION_DIM == batch["question"].shape[-1]
    assert batch["x"].shape[-1] == data.num_features == 16 + 1
    with pytest.raises(ValueError, match="unknown rank_code 'frac'; choose one of: one_hot"):
        NthFarthestDataModule(rank_code="frac")
