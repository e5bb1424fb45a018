"""Parity, the regular language of the lecture's Chomsky-hierarchy slide (Deletang et al. 2023).

A sequence of ``L`` random bits is labelled by its parity (``sum(bits) mod 2``): the language
of an automaton with two states. Training draws lengths from a list (each batch one length);
the test sets are longer, so a model is scored on lengths it never saw.

Entity features, one row per position ``i``::

    x[b, i] = [ bit_i | positional features of i ]

``positional="none"`` gives the bit alone: a set model then sees a multiset of bits, and its
softmax average gives the *fraction* of ones, from which parity cannot be read once lengths
vary. ``positional="sinusoidal"`` adds ``pe_dim`` transformer sinusoids of ``i`` (period up to
``max_period``), so attention knows where each bit sits. ``pos`` is ``i`` itself, ``[B, L, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from datamodules.base import Batch, ProceduralDataModule, SizeMixture
from graphrl.graphs.positional import sinusoidal_features

POSITIONALS = ("none", "sinusoidal")


def parity(bits: Tensor) -> Tensor:
    """``[B, L]`` 0/1 bits -> ``[B]`` long, 1 when the number of ones is odd."""
    return bits.long().sum(-1) % 2


@dataclass(frozen=True)
class ParityTask:
    """Draws parity batches (picklable).

    Args:
        positional: ``"none"`` or ``"sinusoidal"`` (see the module docstring).
        pe_dim: Width of the sinusoidal features.
        max_period: Longest period of the sinusoids.
    """

    positional: str = "none"
    pe_dim: int = 16
    max_period: float = 256.0

    @property
    def num_features(self) -> int:
        """``1`` (the bit) plus ``pe_dim`` with sinusoidal positions."""
        return 1 + (self.pe_dim if self.positional == "sinusoidal" else 0)

    def sample(self, batch_size: int, num_entities: int, generator: torch.Generator) -> Batch:
        """Draw ``batch_size`` sequences of ``num_entities`` bits.

        Returns:
            ``x: [B, L, F]``, ``mask: [B, L]`` (all True), ``pos: [B, L, 1]`` (the index),
            ``y: [B]`` (parity), ``question_type: [B]`` (zeros).
        """
        b, n = batch_size, num_entities
        if n < 1:
            raise ValueError(f"sequence length must be >= 1, got {n}")
        bits = torch.randint(0, 2, (b, n), generator=generator).float()
        pos = torch.arange(n, dtype=torch.float32).view(1, n, 1).expand(b, n, 1)
        parts = [bits.unsqueeze(-1)]
        if self.positional == "sinusoidal":
            parts.append(sinusoidal_features(pos, self.pe_dim, self.max_period))
        return {
            "x": torch.cat(parts, dim=-1),
            "mask": torch.ones(b, n, dtype=torch.bool),
            "pos": pos,
            "y": parity(bits),
            "question_type": torch.zeros(b, dtype=torch.long),
        }


class ParityDataModule(ProceduralDataModule):
    """Parity of bit strings; one val/test dataloader per length (``len8``, ``len16``, ...).

    Args:
        train_lengths: Lengths of training sequences; each batch draws one uniformly.
        eval_lengths: Length of each val/test dataloader, e.g. ``[8, 16, 32]``.
        positional: ``"none"`` (bits only) or ``"sinusoidal"`` (bits and positions).
        pe_dim: Width of the sinusoidal position features.
        form: ``"set"`` or ``"sequence"``: how models read ``x`` (same tensors; the LSTM reads
            positions in order).
        batch_size: Sequences per batch.
        train_samples_per_epoch: Training sequences per epoch (fresh every epoch).
        val_samples: Sequences in each validation dataloader.
        test_samples: Sequences in each test dataloader.
        seed: Base seed (train, val and test use disjoint streams).
        num_workers: DataLoader worker processes.
    """

    size_prefix = "len"

    def __init__(
        self,
        train_lengths: list[int] | None = None,
        eval_lengths: list[int] | None = None,
        positional: Literal["none", "sinusoidal"] = "none",
        pe_dim: int = 16,
        form: Literal["set", "sequence"] = "set",
        batch_size: int = 128,
        train_samples_per_epoch: int = 64_000,
        val_samples: int = 1_024,
        test_samples: int = 4_096,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        train = list(range(2, 9)) if train_lengths is None else list(train_lengths)
        evals = [8, 16, 32] if eval_lengths is None else list(eval_lengths)
        for name, lengths in (("train_lengths", train), ("eval_lengths", evals)):
            if not lengths or any(not isinstance(n, int) or n < 1 for n in lengths):
                raise ValueError(f"{name} must list lengths >= 1, got {lengths}")
        if positional not in POSITIONALS:
            raise ValueError(
                f"unknown positional {positional!r}; choose one of: {', '.join(POSITIONALS)}"
            )
        if positional == "sinusoidal" and pe_dim < 2:
            raise ValueError(f"pe_dim must be >= 2 for sinusoidal positions, got {pe_dim}")
        if form not in ("set", "sequence"):
            raise ValueError(f"unknown form {form!r}; choose one of: set, sequence")
        super().__init__(
            SizeMixture(tuple(train), seed=seed),
            evals,
            batch_size=batch_size,
            train_samples_per_epoch=train_samples_per_epoch,
            val_samples=val_samples,
            test_samples=test_samples,
            seed=seed,
            num_workers=num_workers,
        )
        self.save_hyperparameters()
        self.form = form
        self.task = ParityTask(positional=positional, pe_dim=pe_dim)

    @property
    def num_classes(self) -> int:
        """2: even or odd."""
        return 2

    @property
    def pos_dim(self) -> int:
        """1: ``pos`` is the index."""
        return 1

    @property
    def answer(self) -> str:
        """``"label"``."""
        return "label"

    @property
    def question_types(self) -> list[str]:
        """A single type, ``"parity"``."""
        return ["parity"]
