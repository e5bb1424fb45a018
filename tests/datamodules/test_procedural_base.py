"""Shared machinery: seeds, curriculum schedule, batch datasets, rank sharding, workers."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DistributedSampler

from datamodules import (
    BatchIndexSampler,
    NthFarthestDataModule,
    ProceduralBatches,
    SizeSchedule,
    derive_seed,
)
from datamodules.nth_farthest import NthFarthestTask


def batch_hash(batch: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha1()
    for key in sorted(batch):
        digest.update(batch[key].numpy().tobytes())
    return digest.hexdigest()


def assert_batches_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_derive_seed_is_deterministic_and_separates_keys() -> None:
    assert derive_seed(3, 0, 0, 5) == derive_seed(3, 0, 0, 5)
    seeds = {derive_seed(s, split, 0, i) for s in (0, 1) for split in (0, 1, 2) for i in range(50)}
    assert len(seeds) == 2 * 3 * 50
    assert all(0 <= s < 2**63 for s in seeds)
    with pytest.raises(ValueError, match=">= 0"):
        derive_seed(-1, 0)


def test_size_schedule_steps_at_milestones() -> None:
    schedule = SizeSchedule((4, 6, 8), (100, 250))
    got = [schedule.size_at(s) for s in (0, 99, 100, 249, 250, 10**9)]
    assert got == [4, 4, 6, 6, 8, 8]
    assert SizeSchedule((5,)).size_at(10**12) == 5


@pytest.mark.parametrize(
    ("sizes", "milestones", "match"),
    [
        ((4, 6), (), "needs 1 milestones"),
        ((4,), (10,), "needs 0 milestones"),
        ((4, 6, 8), (20, 10), "strictly increasing"),
        ((4, 6), (0,), "positive"),
        ((), (), "at least one size"),
    ],
)
def test_size_schedule_rejects_bad_milestones(sizes, milestones, match) -> None:
    with pytest.raises(ValueError, match=match):
        SizeSchedule(sizes, milestones)


def make_batches(split: str = "train", num_samples: int | None = None, seed: int = 0):
    return ProceduralBatches(
        NthFarthestTask(dim=4, max_entities=8).sample,
        SizeSchedule((5,)),
        batch_size=6,
        num_batches=4,
        seed=seed,
        split=split,
        num_samples=num_samples,
    )


def test_batches_are_a_pure_function_of_seed_split_and_index() -> None:
    data = make_batches()
    assert_batches_equal(data[2], make_batches()[2])
    hashes = {batch_hash(data[i]) for i in range(8)}  # train streams run past one epoch
    hashes |= {batch_hash(make_batches(split)[i]) for split in ("val", "test") for i in range(4)}
    hashes |= {batch_hash(make_batches(seed=1)[i]) for i in range(4)}
    assert len(hashes) == 8 + 8 + 4


def test_finite_dataset_ends_with_the_remainder() -> None:
    data = make_batches("val", num_samples=20)
    assert [data[i]["y"].shape[0] for i in range(len(data))] == [6, 6, 6, 2]
    with pytest.raises(IndexError, match="out of range"):
        data[4]
    with pytest.raises(ValueError, match="unknown split"):
        make_batches("dev")


@pytest.mark.parametrize("num_batches", [1, 5, 6, 7])
def test_training_sampler_shards_disjointly_and_covers_each_epoch(num_batches: int) -> None:
    world = 3
    samplers = [BatchIndexSampler(num_batches, rank, world, fresh=True) for rank in range(world)]
    seen_before: set[int] = set()
    for epoch in range(3):
        per_rank = []
        for sampler in samplers:
            sampler.set_epoch(epoch)
            per_rank.append(list(sampler))
        assert {len(ids) for ids in per_rank} == {len(samplers[0])}
        union = set().union(*per_rank)
        assert sum(map(len, per_rank)) == len(union)  # no batch on two ranks
        length = len(samplers[0]) * world
        assert union == set(range(epoch * length, (epoch + 1) * length))
        assert length >= num_batches
        assert not union & seen_before  # fresh batches every epoch
        seen_before |= union


def test_eval_sampler_is_fixed_and_wraps_to_keep_ranks_in_lockstep() -> None:
    samplers = [BatchIndexSampler(5, rank, 2, fresh=False) for rank in range(2)]
    for sampler in samplers:
        sampler.set_epoch(4)
    assert [list(s) for s in samplers] == [[0, 2, 4], [1, 3, 0]]
    assert list(BatchIndexSampler(3, fresh=False)) == [0, 1, 2]
    with pytest.raises(ValueError, match="rank"):
        BatchIndexSampler(3, rank=2, world_size=2)


def test_datamodule_shards_train_loader_by_trainer_rank() -> None:
    loaders = []
    for rank in range(2):
        dm = NthFarthestDataModule(batch_size=4, train_samples_per_epoch=4 * 7, seed=3)
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)  # what DDP sets up
        loaders.append(dm.train_dataloader())
    assert all(isinstance(dl.sampler, DistributedSampler) for dl in loaders)  # Lightning keeps it
    epoch_batches = NthFarthestDataModule(batch_size=4, seed=3).train_dataset()
    for epoch in range(2):
        indices, hashes = [], []
        for loader in loaders:
            loader.sampler.set_epoch(epoch)
            indices.append(set(loader.sampler))
            hashes.append({batch_hash(b) for b in loader})
        assert not indices[0] & indices[1]
        assert indices[0] | indices[1] == set(range(epoch * 8, epoch * 8 + 8))
        assert not hashes[0] & hashes[1]
        assert hashes[0] | hashes[1] == {
            batch_hash(epoch_batches[i]) for i in range(epoch * 8, epoch * 8 + 8)
        }


def test_worker_processes_draw_the_same_batches() -> None:
    kwargs = {"batch_size": 8, "train_samples_per_epoch": 24, "val_samples": 16, "seed": 5}
    serial = NthFarthestDataModule(**kwargs)
    parallel = NthFarthestDataModule(**kwargs, num_workers=1)
    loader = parallel.train_dataloader()
    assert loader.persistent_workers and not serial.train_dataloader().persistent_workers
    assert [batch_hash(b) for b in loader] == [batch_hash(b) for b in serial.train_dataloader()]
    assert [batch_hash(b) for b in parallel.val_dataloader()[0]] == [
        batch_hash(b) for b in serial.val_dataloader()[0]
    ]
