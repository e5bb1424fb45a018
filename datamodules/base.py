"""Shared machinery for procedurally generated supervised tasks.

Every task draws a *whole batch* at once with tensor ops and a seeded ``torch.Generator``, so no
per-sample Python code or collate function runs. Batch ``i`` of a stream is a pure function of
``(seed, split, stream, i)``: generating it twice, in any process or worker, gives the same
tensors, and the train, validation and test splits draw from disjoint seeds.

Batch format (frozen; the models are written against it), a ``dict[str, Tensor]``:

- ``x``: ``[B, N, F]`` float32 entity features,
- ``mask``: ``[B, N]`` bool, True for real entities,
- ``pos``: ``[B, N, P]`` float32 coordinates for distance-based topologies,
- ``y``: ``[B]`` long target (an entity index for pointer answers, a class id for label answers),
- ``question_type``: ``[B]`` long, an index into the DataModule's ``question_types``.

Optional keys: ``question: [B, Q]`` float, the question as a view of its own (when the
DataModule's ``question_dim`` is ``Q > 0``), and ``[B]`` bool subset masks named by
``eval_subsets`` (e.g. ``seen_ranks``).

Sharding: item ``i`` of :class:`ProceduralBatches` is a batch, read through a
``DataLoader(batch_size=None, sampler=BatchIndexSampler(...))``. The DataModule builds the
sampler from the trainer's ``global_rank`` and ``world_size``, so under DDP no two ranks see the
same batch; because :class:`BatchIndexSampler` is a ``DistributedSampler``, Lightning keeps it
as it is instead of wrapping (and sharding) it a second time.

Exact resume: the training stream is one sequence of batches per rank, and its position is the
number of batches this rank has trained on, which Lightning keeps in every checkpoint (its loop
state). Each training epoch starts at that position, so a run resumed mid-epoch continues with
the next unseen batch and one resumed at an epoch boundary with the next epoch's first; batches
are a pure function of their index, so no generator state needs saving.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from graphrl.checks import check_positive

Batch = dict[str, Tensor]

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
"""Split name -> the key that separates its seeds from the other splits'."""


class Task(Protocol):
    """A procedurally generated task: its feature width and its batch sampler."""

    @property
    def num_features(self) -> int:
        """Entity feature size F."""
        ...

    def sample(self, batch_size: int, num_entities: int, generator: torch.Generator) -> Batch:
        """Return a batch of ``batch_size`` samples with ``num_entities`` entities each."""
        ...


class SampleFn(Protocol):
    """Draws one batch of a task: ``(batch_size, num_entities, generator) -> Batch``."""

    def __call__(self, batch_size: int, num_entities: int, generator: torch.Generator) -> Batch:
        """Return a batch of ``batch_size`` samples with ``num_entities`` entities each."""
        ...


def derive_seed(seed: int, *keys: int) -> int:
    """Mix a base seed and integer keys into one 63-bit seed (NumPy ``SeedSequence`` hashing).

    Distinct key tuples give statistically independent streams, so ``(seed, split, stream,
    index)`` names one batch.

    Args:
        seed: The user's base seed, ``>= 0``.
        *keys: Non-negative integers (split, stream, batch index, ...).

    Returns:
        A seed for ``torch.Generator.manual_seed``, in ``[0, 2**63)``.
    """
    if seed < 0 or any(k < 0 for k in keys):
        raise ValueError(f"seed and keys must be >= 0, got seed={seed}, keys={keys}")
    state = np.random.SeedSequence([seed, *keys]).generate_state(1, dtype=np.uint64)[0]
    return int(state) >> 1


@dataclass(frozen=True)
class SizeSchedule:
    """Entity count as a function of the number of training samples drawn so far (curriculum).

    ``sizes[0]`` is used until ``milestones[0]`` samples, ``sizes[1]`` until ``milestones[1]``,
    and the last size from then on, like ``MultiStepLR`` milestones but counted in samples.

    Args:
        sizes: Entity counts to step through, e.g. ``(4, 6, 8)``.
        milestones: Strictly increasing sample counts at which to move to the next size; one
            fewer than ``sizes``.
    """

    sizes: tuple[int, ...]
    milestones: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.sizes:
            raise ValueError("SizeSchedule needs at least one size")
        if len(self.milestones) != len(self.sizes) - 1:
            raise ValueError(
                f"curriculum of {len(self.sizes)} sizes {list(self.sizes)} needs "
                f"{len(self.sizes) - 1} milestones (sample counts), got {list(self.milestones)}"
            )
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])) or any(
            m <= 0 for m in self.milestones
        ):
            raise ValueError(
                f"curriculum milestones must be positive and strictly increasing, "
                f"got {list(self.milestones)}"
            )

    def size_at(self, num_samples: int) -> int:
        """The entity count for a batch that starts after ``num_samples`` training samples."""
        return self.sizes[bisect.bisect_right(self.milestones, num_samples)]


MIXTURE_KEY = 7
"""Seed key of the per-batch entity-count draws of :class:`SizeMixture`."""


@dataclass(frozen=True)
class SizeMixture:
    """Entity count drawn uniformly from ``sizes`` for every batch (a distribution of sizes).

    The draw is a pure function of ``(seed, num_samples)``, so batch ``i`` of a stream has the
    same size in every process, and a resumed run sees the sizes it would have seen.

    Args:
        sizes: Entity counts to draw from, e.g. ``(2, 4, 8, 16)``.
        seed: Base seed of the draws.
    """

    sizes: tuple[int, ...]
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.sizes:
            raise ValueError("SizeMixture needs at least one size")

    def size_at(self, num_samples: int) -> int:
        """The entity count of the batch that starts after ``num_samples`` training samples."""
        draw = derive_seed(self.seed, MIXTURE_KEY, num_samples)
        return self.sizes[draw % len(self.sizes)]


class ProceduralBatches(Dataset[Batch]):
    """Map-style dataset whose item ``i`` is a whole generated batch.

    Args:
        sample_fn: Draws a batch (a picklable callable, e.g. a bound method of a frozen
            dataclass, so workers and spawned DDP processes can use it).
        schedule: Entity count per batch; batch ``i`` starts at sample ``i * batch_size``.
        batch_size: Samples per batch.
        num_batches: Batches per epoch, ``len(self)``.
        seed: Base seed.
        split: ``"train"``, ``"val"`` or ``"test"``.
        stream: Extra seed key separating datasets of one split (e.g. one per eval size).
        num_samples: If given, the dataset is finite and the last batch holds the remainder;
            if None, every index ``>= 0`` gives a full batch (fresh training data each epoch).
    """

    def __init__(
        self,
        sample_fn: SampleFn,
        schedule: SizeSchedule | SizeMixture,
        batch_size: int,
        num_batches: int,
        seed: int,
        split: str,
        stream: int = 0,
        num_samples: int | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        self.sample_fn = sample_fn
        self.schedule = schedule
        self.batch_size = batch_size
        self.num_batches = num_batches
        self.seed = seed
        self.split = split
        self.stream = stream
        self.num_samples = num_samples

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, index: int) -> Batch:
        if index < 0 or (self.num_samples is not None and index >= self.num_batches):
            raise IndexError(f"batch index {index} out of range for {self.num_batches} batches")
        start = index * self.batch_size
        size = self.batch_size
        if self.num_samples is not None:
            size = min(size, self.num_samples - start)
        generator = torch.Generator().manual_seed(
            derive_seed(self.seed, SPLITS[self.split], self.stream, index)
        )
        return self.sample_fn(size, self.schedule.size_at(start), generator)


class BatchIndexSampler(DistributedSampler):
    """Yields this rank's batch indices: ``rank, rank + world_size, ...``.

    Every rank yields ``ceil(num_batches / world_size)`` indices, so ranks stay in lockstep.

    - ``fresh=True`` (training): epoch ``e`` covers the global indices
      ``[e * L, (e + 1) * L)`` with ``L = ceil(num_batches / world_size) * world_size``, so each
      epoch draws new data, ranks never share a batch, and an epoch has at least
      ``num_batches`` batches in all. Call ``set_epoch`` (Lightning does) before each epoch.
    - ``fresh=False`` (evaluation): the fixed indices ``0 .. num_batches - 1``; when
      ``num_batches`` is not a multiple of ``world_size`` the last ranks wrap around to the first
      batches, as ``torch.utils.data.DistributedSampler`` pads.

    Resuming (``fresh=True``): given ``position``, each ``__iter__`` starts at stream position
    ``p = position()`` (batches this rank has already trained on) instead of at ``set_epoch``'s
    epoch: epoch ``p // len(self)`` from its batch ``p % len(self)`` on, so an interrupted epoch
    yields only its remaining batches.

    Args:
        num_batches: Batches per epoch (the dataset's length).
        rank: This process's global rank.
        world_size: Number of processes.
        fresh: Whether each epoch draws new batch indices.
        position: Returns the number of batches this rank has consumed so far (the DataModule
            reads the trainer's restored counter); None: start epochs at ``set_epoch``'s epoch.
    """

    def __init__(
        self,
        num_batches: int,
        rank: int = 0,
        world_size: int = 1,
        fresh: bool = True,
        position: Callable[[], int] | None = None,
    ):
        if num_batches < 1:
            raise ValueError(f"num_batches must be >= 1, got {num_batches}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, {world_size=}")
        super().__init__(range(num_batches), num_replicas=world_size, rank=rank, shuffle=False)
        self.num_batches = num_batches
        self.fresh = fresh
        self.per_rank = math.ceil(num_batches / world_size)
        self.position = position

    def __iter__(self) -> Iterator[int]:
        local = range(self.rank, self.per_rank * self.num_replicas, self.num_replicas)
        if self.fresh:
            start = self.epoch * self.per_rank if self.position is None else self.position()
            epoch, skip = divmod(start, self.per_rank)
            offset = epoch * self.per_rank * self.num_replicas
            return iter([offset + i for i in local[skip:]])
        return iter([i % self.num_batches for i in local])

    def __len__(self) -> int:
        return self.per_rank


class ResumableLoader(DataLoader):
    """The training loader: it resumes by itself (its sampler starts at the trained-batch count),
    and its ``state_dict`` says so to Lightning, with the stream layout that count refers to.
    """

    def state_dict(self) -> dict[str, int]:
        """``{"batches_per_epoch": per rank, "world_size": ...}`` of the stream."""
        return {"batches_per_epoch": len(self.sampler), "world_size": self.sampler.num_replicas}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Warn in one line if the checkpoint's stream had another layout (then the position,
        counted in batches, continues in the new layout: no batch is lost, some may repeat)."""
        if state != self.state_dict():
            from lightning.pytorch.utilities import rank_zero_warn

            rank_zero_warn(
                f"resuming a training stream of {state} with {self.state_dict()}: the data "
                "continues at the same batch count, in the new layout"
            )


class ProceduralDataModule(L.LightningDataModule, ABC):
    """Base DataModule: one training stream and one val/test dataloader per evaluation size.

    Subclasses set the task (``sample_fn``) and the sizes the model needs; all of them are known
    right after ``__init__`` so LightningCLI can link them to the model.

    Args:
        train_schedule: Entity count of the training batches (a curriculum, a mixture or a
            constant).
        eval_sizes: Entity counts of the val/test dataloaders, one dataloader each, in order.
        batch_size: Samples per batch.
        train_samples_per_epoch: Training samples per epoch in all ranks together, rounded up
            to whole batches (and to a multiple of the world size).
        val_samples: Samples in each validation dataloader.
        test_samples: Samples in each test dataloader.
        seed: Base seed of all splits.
        num_workers: DataLoader worker processes; workers are persistent when > 0.
    """

    size_prefix: str = "n"
    """Prefix of the dataloader names: ``f"{size_prefix}{size}"``."""

    def __init__(
        self,
        train_schedule: SizeSchedule | SizeMixture,
        eval_sizes: Sequence[int],
        batch_size: int,
        train_samples_per_epoch: int,
        val_samples: int,
        test_samples: int,
        seed: int,
        num_workers: int,
    ) -> None:
        super().__init__()
        check_positive(
            batch_size=batch_size,
            train_samples_per_epoch=train_samples_per_epoch,
            val_samples=val_samples,
            test_samples=test_samples,
        )
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        if not eval_sizes:
            raise ValueError("eval sizes must list at least one entity count")
        if len(set(eval_sizes)) != len(eval_sizes):
            raise ValueError(f"eval sizes must be distinct, got {list(eval_sizes)}")
        self.train_schedule = train_schedule
        self.eval_sizes = list(eval_sizes)
        self.batch_size = batch_size
        self.train_samples_per_epoch = train_samples_per_epoch
        self.val_samples = val_samples
        self.test_samples = test_samples
        self.seed = seed
        self.num_workers = num_workers

    task: Task
    """The small frozen task object subclasses set in ``__init__`` (cheap to pickle to workers)."""

    @property
    def sample_fn(self) -> SampleFn:
        """Draws one batch: the task's ``sample`` method."""
        return self.task.sample

    @property
    def num_features(self) -> int:
        """Entity feature size F of ``x: [B, N, F]``; the same for every entity count."""
        return self.task.num_features

    @property
    @abstractmethod
    def num_classes(self) -> int:
        """Answer vocabulary size (for pointer answers: the largest entity count)."""

    @property
    @abstractmethod
    def pos_dim(self) -> int:
        """Coordinate size P of ``pos: [B, N, P]``."""

    @property
    @abstractmethod
    def answer(self) -> str:
        """``"pointer"`` (``y`` indexes an entity) or ``"label"`` (``y`` is a class id)."""

    @property
    @abstractmethod
    def question_types(self) -> list[str]:
        """Names of the question types, indexed by ``batch["question_type"]``."""

    @property
    def question_dim(self) -> int:
        """Width ``Q`` of the batch's separate question view ``question: [B, Q]``; 0 when the
        question is inside the entity features (the default)."""
        return 0

    @property
    def eval_subsets(self) -> list[str]:
        """Names of ``[B]`` bool batch keys marking subsets of evaluation questions whose accuracy
        is logged on its own (``{split}/acc_{loader}_{name}``), e.g. ``["seen_ranks"]``."""
        return []

    @property
    def max_entities(self) -> int:
        """The largest entity count any split produces (sizes fixed-width baselines)."""
        return max([*self.train_schedule.sizes, *self.eval_sizes])

    @property
    def eval_dataloader_names(self) -> list[str]:
        """Names of the val/test dataloaders, in ``dataloader_idx`` order (e.g. ``["k8"]``)."""
        return [f"{self.size_prefix}{size}" for size in self.eval_sizes]

    def _rank_and_world_size(self) -> tuple[int, int]:
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    def _trained_batches(self) -> int:
        """Training batches this rank has trained on, from the trainer's (checkpointed) loop state.

        ``processed``, not ``completed``: a checkpoint written at the end of a batch counts that
        batch as processed but not yet completed, and it must not be drawn again on resume.
        """
        return self.trainer.fit_loop.epoch_loop.batch_progress.total.processed

    def _loader(self, dataset: ProceduralBatches, fresh: bool) -> DataLoader:
        rank, world_size = self._rank_and_world_size()
        trains = fresh and getattr(self.trainer, "fit_loop", None) is not None
        position = self._trained_batches if trains else None
        sampler = BatchIndexSampler(
            len(dataset), rank=rank, world_size=world_size, fresh=fresh, position=position
        )
        return (ResumableLoader if trains else DataLoader)(
            dataset,
            batch_size=None,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # Its own generator: starting an iterator draws a worker base seed, which would
            # otherwise come from torch's global RNG and shift dropout etc. after a resume.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataset(self) -> ProceduralBatches:
        """The endless training stream; ``len`` is the number of batches per epoch."""
        return ProceduralBatches(
            self.sample_fn,
            self.train_schedule,
            self.batch_size,
            num_batches=math.ceil(self.train_samples_per_epoch / self.batch_size),
            seed=self.seed,
            split="train",
        )

    def eval_dataset(self, split: str, num_entities: int) -> ProceduralBatches:
        """The fixed ``"val"`` or ``"test"`` set for one entity count."""
        if split not in ("val", "test"):
            raise ValueError(f"eval split must be 'val' or 'test', got {split!r}")
        num_samples = self.val_samples if split == "val" else self.test_samples
        return ProceduralBatches(
            self.sample_fn,
            SizeSchedule((num_entities,)),
            self.batch_size,
            num_batches=math.ceil(num_samples / self.batch_size),
            seed=self.seed,
            split=split,
            stream=num_entities,
            num_samples=num_samples,
        )

    def train_dataloader(self) -> DataLoader:
        """Fresh batches every epoch, sharded over the trainer's ranks."""
        return self._loader(self.train_dataset(), fresh=True)

    def val_dataloader(self) -> list[DataLoader]:
        """One loader per size in ``eval_sizes``, named by ``eval_dataloader_names``."""
        return [self._loader(self.eval_dataset("val", n), fresh=False) for n in self.eval_sizes]

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per size in ``eval_sizes``, named by ``eval_dataloader_names``."""
        return [self._loader(self.eval_dataset("test", n), fresh=False) for n in self.eval_sizes]

    def predict_dataloader(self) -> list[DataLoader]:
        """``graphrl predict`` answers the test sets (same loaders as :meth:`test_dataloader`)."""
        return self.test_dataloader()
