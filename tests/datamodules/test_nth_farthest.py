"""Nth-farthest: answers against a naive loop, feature layout, K generalisation, curriculum."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.cli import LightningCLI
from torch import nn

from datamodules import NthFarthestDataModule, NthFarthestTask, nth_farthest


def naive_nth_farthest(vectors: list[list[float]], n: int, m: int) -> int:
    dists = [sum((a - b) ** 2 for a, b in zip(v, vectors[m])) for v in vectors]
    return sorted(range(len(vectors)), key=lambda i: -dists[i])[n]


@pytest.mark.parametrize("num_entities", [2, 8, 16])
def test_answers_match_a_naive_loop(num_entities: int) -> None:
    task = NthFarthestTask(dim=16, max_entities=16)
    batch = task.sample(300, num_entities, torch.Generator().manual_seed(num_entities))
    m_onehot = batch["x"][:, 0, 16 + 2 * 16 : 16 + 3 * 16]
    n_onehot = batch["x"][:, 0, 16 + 16 : 16 + 2 * 16]
    for b in range(300):
        n, m = int(n_onehot[b].argmax()), int(m_onehot[b].argmax())
        assert int(batch["y"][b]) == naive_nth_farthest(batch["pos"][b].tolist(), n, m)


def test_features_follow_the_documented_layout() -> None:
    k, dim, cap = 5, 3, 7
    task = NthFarthestTask(dim=dim, max_entities=cap)
    batch = task.sample(40, k, torch.Generator().manual_seed(1))
    x = batch["x"]
    assert x.shape == (40, k, dim + 3 * cap + 1) and task.num_features == dim + 3 * cap + 1
    assert torch.equal(x[..., :dim], batch["pos"])
    assert (batch["pos"].abs() <= 1).all()
    own, n_hot, m_hot, is_m = x[..., dim:].split([cap, cap, cap, 1], dim=-1)
    assert torch.equal(own.argmax(-1), torch.arange(k).expand(40, k))
    assert (own.sum(-1) == 1).all() and (own[..., k:] == 0).all()
    for hot in (n_hot, m_hot):  # the same question on every entity, within 0..K-1
        assert (hot == hot[:, :1]).all() and (hot.sum(-1) == 1).all()
        assert (hot[..., k:] == 0).all()
    m = m_hot[:, 0].argmax(-1)
    assert torch.equal(is_m.squeeze(-1).bool(), torch.arange(k) == m[:, None])
    assert batch["mask"].dtype == torch.bool and batch["mask"].all()
    assert batch["y"].dtype == torch.long and batch["question_type"].eq(0).all()
    assert set(batch["y"].tolist()) == set(range(k))  # every label can be the answer


def test_extreme_ranks_are_farthest_and_self() -> None:
    vectors = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]]).expand(4, 4, 2)
    m = torch.tensor([0, 0, 0, 2])
    n = torch.tensor([0, 1, 3, 0])
    assert nth_farthest(vectors, n, m).tolist() == [2, 3, 0, 3]


@pytest.mark.parametrize(
    ("n", "m", "match"),
    [
        ([4], [0], r"n must lie in 0\.\.K-1 = 0\.\.3"),
        ([0], [-1], "m must lie"),
        ([0, 1], [0], "n must be"),
    ],
)
def test_nth_farthest_rejects_out_of_range_questions(n, m, match) -> None:
    with pytest.raises(ValueError, match=match):
        nth_farthest(torch.zeros(1, 4, 2), torch.tensor(n), torch.tensor(m))


def test_sample_rejects_more_entities_than_max() -> None:
    with pytest.raises(ValueError, match="max_entities=8"):
        NthFarthestTask(max_entities=8).sample(2, 9, torch.Generator())


def test_eval_loaders_generalise_over_k_with_one_feature_size() -> None:
    dm = NthFarthestDataModule(eval_num_entities=[8, 12, 16], batch_size=32, val_samples=80)
    assert dm.eval_dataloader_names == ["k8", "k12", "k16"]
    assert (dm.num_features, dm.num_classes, dm.pos_dim) == (16 + 48 + 1, 16, 16)
    assert dm.answer == "pointer" and dm.question_types == ["nth_farthest"]
    for k, loader in zip([8, 12, 16], dm.val_dataloader()):
        batches = list(loader)
        assert [b["y"].shape[0] for b in batches] == [32, 32, 16]
        for b in batches:
            assert b["x"].shape[1:] == (k, dm.num_features) and b["x"].dtype == torch.float32
            assert b["pos"].shape[1:] == (k, 16) and b["mask"].shape[1:] == (k,)
            assert b["y"].max() < k
    train = next(iter(dm.train_dataloader()))
    assert train["x"].shape == (32, 8, dm.num_features)


def test_splits_are_deterministic_and_disjoint() -> None:
    def first_batches(seed: int) -> list[torch.Tensor]:
        dm = NthFarthestDataModule(batch_size=16, seed=seed)
        return [next(iter(dm.train_dataloader()))["x"]] + [
            next(iter(loaders[0]))["x"] for loaders in (dm.val_dataloader(), dm.test_dataloader())
        ]

    a, b, c = first_batches(0), first_batches(0), first_batches(1)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not any(torch.equal(p, q) for i, p in enumerate(a) for j, q in enumerate(a) if i < j)
    assert not any(torch.equal(p, q) for p, q in zip(a, c))


def test_curriculum_steps_k_by_training_samples() -> None:
    dm = NthFarthestDataModule(
        batch_size=10,
        train_samples_per_epoch=40,
        curriculum=[4, 6, 8],
        curriculum_steps=[30, 60],
        eval_num_entities=[8, 16],
    )
    loader = dm.train_dataloader()
    sizes = []
    for epoch in range(3):
        loader.sampler.set_epoch(epoch)
        sizes += [b["x"].shape[1] for b in loader]
    # batch i starts at sample 10 * i: K=4 before sample 30, K=6 before 60, then K=8
    assert sizes == [4, 4, 4, 6, 6, 6, 8, 8, 8, 8, 8, 8]
    assert [next(iter(v))["x"].shape[1] for v in dm.val_dataloader()] == [8, 16]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_entities": 17}, r"num_entities must lie in 2\.\.max_entities=16"),
        ({"num_entities": 1}, "num_entities must lie"),
        ({"eval_num_entities": [8, 20]}, r"eval_num_entities .* got \[20\]"),
        ({"eval_num_entities": []}, "at least one"),
        ({"eval_num_entities": [8, 8]}, "distinct"),
        ({"curriculum": [4, 8]}, "given together"),
        ({"curriculum": [4, 8], "curriculum_steps": [10, 20]}, "needs 1 milestones"),
        ({"curriculum": [4, 32], "curriculum_steps": [10]}, r"curriculum must lie .* \[32\]"),
        ({"form": "graph"}, "unknown form 'graph'"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"val_samples": 0}, "val_samples must be >= 1"),
        ({"seed": -2}, "seed must be >= 0"),
        ({"dim": 0}, "dim must be >= 1"),
        ({"num_workers": -1}, "num_workers"),
    ],
)
def test_bad_arguments_fail_clearly(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        NthFarthestDataModule(**kwargs)


class SizedModel(L.LightningModule):
    def __init__(self, num_features: int = 1, num_classes: int = 1) -> None:
        super().__init__()
        self.layer = nn.Linear(num_features, num_classes)


class LinkingCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.num_features", "model.num_features", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")


def test_sizes_link_into_a_model_through_lightning_cli(monkeypatch) -> None:
    monkeypatch.setattr("sys.argv", ["graphrl"])
    args = ["--data.eval_num_entities=[8, 12]", "--data.form=sequence", "--data.max_entities=12"]
    cli = LinkingCLI(
        SizedModel, NthFarthestDataModule, run=False, args=args, seed_everything_default=False
    )
    assert cli.datamodule.form == "sequence" and cli.datamodule.eval_sizes == [8, 12]
    assert cli.model.layer.in_features == 16 + 3 * 12 + 1
    assert cli.model.layer.out_features == 12
