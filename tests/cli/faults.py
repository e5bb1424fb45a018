"""Faults injected into real runs by the CLI tests (importable by DDP worker processes)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class NaNOnRank(L.Callback):
    """Turns the model's parameters into NaN on one rank at one training batch, so that only
    that rank's loss is NaN (its ``FloatingPointError`` is the fault under test).

    Args:
        rank: Global rank that fails.
        batch: Training batch index at which it fails.
    """

    def __init__(self, rank: int = 1, batch: int = 1) -> None:
        self.rank = rank
        self.batch = batch

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_rank == self.rank and batch_idx == self.batch:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))
