"""LightningDataModules for procedurally generated relational tasks (batches drawn on the fly)."""

from datamodules.base import (
    BatchIndexSampler,
    ProceduralBatches,
    ProceduralDataModule,
    SizeMixture,
    SizeSchedule,
    derive_seed,
)
from datamodules.nth_farthest import NthFarthestDataModule, NthFarthestTask, nth_farthest
from datamodules.parity import ParityDataModule, ParityTask, parity
from datamodules.sort_of_clevr import (
    QUESTION_TYPES,
    SortOfClevrDataModule,
    SortOfClevrTask,
    answer_vocab,
    sort_of_clevr_answers,
)

__all__ = [
    "QUESTION_TYPES",
    "BatchIndexSampler",
    "NthFarthestDataModule",
    "NthFarthestTask",
    "ParityDataModule",
    "ParityTask",
    "ProceduralBatches",
    "ProceduralDataModule",
    "SizeMixture",
    "SizeSchedule",
    "SortOfClevrDataModule",
    "SortOfClevrTask",
    "answer_vocab",
    "derive_seed",
    "nth_farthest",
    "parity",
    "sort_of_clevr_answers",
]
