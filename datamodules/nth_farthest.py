"""Nth-farthest: the relational reasoning task of Santoro et al. 2018 (Relational RNNs, RMC).

K vectors drawn uniformly from ``[-1, 1]^dim`` carry the labels ``0 .. K-1``; the question
"which vector is the n-th farthest from vector m?" (n, m uniform in ``0 .. K-1``; ``n = 0`` is the
farthest, ``n = K-1`` is ``m`` itself) is answered by the label of that vector. Labels equal
entity positions, so the answer is both a pointer to an entity and a class id.

Entity features (``max_entities = M``, the same layout for every ``K <= M``), one row per vector::

    x[b, i] = [ vector_i (dim) | one_hot(i, M) | one_hot(n, M) | one_hot(m, M) | i == m ]

so ``num_features = dim + 3 * M + 1``: a model trained on K=8 runs unchanged on K=12 or 16.
With ``label_features=False`` the two label one-hots are left out,
``x[b, i] = [ vector_i | one_hot(n, M) | i == m ]`` (``dim + M + 1``): a set model needs
neither (the pointer names the entity, the flag marks ``m``), and at K=16 a model trained on
K=8 would otherwise meet label columns 8-15 whose input weights training never moved.
``form="sequence"`` gives the same tensors, read as a sequence in label order (time step ``i``
feeds vector ``i``), as the LSTM and RMC of the paper read it; ``form="set"`` marks them as an
unordered set (the label lives in the features, so the order carries nothing).

``rank_code="fraction"`` replaces ``one_hot(n, M)`` by a code of the rank's fraction
``f = n / (K - 1)`` (0: the farthest, 1: ``m`` itself): ``[f, cos(pi j f), sin(pi j f) for
j = 1..4]`` (``RANK_FRACTION_DIM = 9`` columns). Every K then asks its questions in the same
range of codes, so a model trained on K up to 16 meets no untrained input column at K=32 (the
one-hot's columns 16-31 are never set in such training).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from datamodules.base import Batch, ProceduralDataModule, SizeMixture, SizeSchedule
from graphrl.models.relational_classifier import ANSWERS

FORMS = ("set", "sequence")
RANK_CODES = ("one_hot", "fraction")
RANK_FREQUENCIES = 4
RANK_FRACTION_DIM = 1 + 2 * RANK_FREQUENCIES


def rank_fraction_code(n: Tensor, num_entities: int) -> Tensor:
    """The fraction code of ranks ``n`` among ``num_entities`` vectors (module docstring).

    Args:
        n: ``[B]`` long rank, ``0 <= n < K``.
        num_entities: K.

    Returns:
        ``[B, RANK_FRACTION_DIM]`` float: ``f = n / (K - 1)``, then ``cos`` and ``sin`` of
        ``pi * j * f`` for ``j = 1..RANK_FREQUENCIES``.
    """
    f = n.float() / (num_entities - 1)
    angles = torch.pi * f.unsqueeze(-1) * torch.arange(1, RANK_FREQUENCIES + 1)
    return torch.cat([f.unsqueeze(-1), angles.cos(), angles.sin()], dim=-1)


def nth_farthest(vectors: Tensor, n: Tensor, m: Tensor) -> Tensor:
    """Index of the ``n``-th farthest vector from vector ``m`` (``n = 0``: the farthest).

    Args:
        vectors: ``[B, K, D]`` vectors.
        n: ``[B]`` long rank, ``0 <= n < K``.
        m: ``[B]`` long reference index, ``0 <= m < K``.

    Returns:
        ``[B]`` long index in ``0 .. K-1``.
    """
    if vectors.dim() != 3:
        raise ValueError(f"vectors must be [B, K, D], got shape {tuple(vectors.shape)}")
    num = vectors.shape[1]
    for name, value in (("n", n), ("m", m)):
        if value.shape != vectors.shape[:1]:
            raise ValueError(f"{name} must be [B]={vectors.shape[0]}, got {tuple(value.shape)}")
        if value.numel() and (value.min() < 0 or value.max() >= num):
            raise ValueError(f"{name} must lie in 0..K-1 = 0..{num - 1}, got {value.tolist()}")
    rows = torch.arange(vectors.shape[0])
    sq_dist = (vectors - vectors[rows, m].unsqueeze(1)).pow(2).sum(-1)  # [B, K]
    order = torch.argsort(sq_dist, dim=1, descending=True, stable=True)
    return order[rows, n]


@dataclass(frozen=True)
class NthFarthestTask:
    """Draws Nth-farthest batches (picklable, so workers and DDP processes can use it).

    Args:
        dim: Vector size.
        max_entities: Largest K; fixes the one-hot sizes of the features.
        seen_ranks: Ranks ``n < seen_ranks`` are the ones training asks about (the largest
            training K); batches then carry ``seen_ranks: [B]`` bool, True for those questions.
            None: no such key.
    """

    dim: int = 16
    max_entities: int = 16
    seen_ranks: int | None = None
    label_features: bool = True
    question_view: bool = False
    rank_code: str = "one_hot"

    def __post_init__(self) -> None:
        if self.rank_code not in RANK_CODES:
            raise ValueError(
                f"unknown rank_code {self.rank_code!r}; choose one of: {', '.join(RANK_CODES)}"
            )

    @property
    def rank_dim(self) -> int:
        """Width of the rank's code: ``max_entities`` (one-hot) or ``RANK_FRACTION_DIM``."""
        return self.max_entities if self.rank_code == "one_hot" else RANK_FRACTION_DIM

    @property
    def question_dim(self) -> int:
        """Width of ``question`` (the rank's code, and ``one_hot(m)`` with labels); 0 unless
        ``question_view``."""
        if not self.question_view:
            return 0
        return self.rank_dim + (self.max_entities if self.label_features else 0)

    @property
    def num_features(self) -> int:
        """``dim + 3 * max_entities + 1`` (``dim + max_entities + 1`` without labels; the rank's
        one-hot ``max_entities`` wide is ``RANK_FRACTION_DIM`` with the fraction code), less
        ``question_dim`` when the question is a view of its own."""
        labels = 2 * self.max_entities if self.label_features else 0
        width = self.dim + labels + self.rank_dim + 1
        return width - self.question_dim

    def sample(self, batch_size: int, num_entities: int, generator: torch.Generator) -> Batch:
        """Draw ``batch_size`` questions over ``num_entities`` vectors.

        Returns:
            ``x: [B, K, F]``, ``mask: [B, K]`` (all True), ``pos: [B, K, dim]`` (the vectors),
            ``y: [B]`` (answer index), ``question_type: [B]`` (zeros), and with
            ``seen_ranks`` set, ``seen_ranks: [B]`` bool (``n < seen_ranks``).
        """
        b, k, M = batch_size, num_entities, self.max_entities
        if not 2 <= k <= M:
            raise ValueError(f"num_entities must be in 2..max_entities={M}, got {k}")
        vectors = torch.rand(b, k, self.dim, generator=generator) * 2 - 1
        n = torch.randint(0, k, (b,), generator=generator)
        m = torch.randint(0, k, (b,), generator=generator)
        y = nth_farthest(vectors, n, m)

        ids = torch.arange(k)
        labels = F.one_hot(ids, M).float().expand(b, k, M)
        code = F.one_hot(n, M).float() if self.rank_code == "one_hot" else rank_fraction_code(n, k)
        rank = code.unsqueeze(1).expand(b, k, code.shape[-1])
        reference = F.one_hot(m, M).float().unsqueeze(1).expand(b, k, M)
        is_m = (ids.unsqueeze(0) == m.unsqueeze(1)).float().unsqueeze(-1)
        question = [rank, reference] if self.label_features else [rank]
        entity = [vectors, labels] if self.label_features else [vectors]
        parts = [*entity, is_m] if self.question_view else [*entity, *question, is_m]
        x = torch.cat(parts, dim=-1)
        batch = {
            "x": x,
            "mask": torch.ones(b, k, dtype=torch.bool),
            "pos": vectors,
            "y": y,
            "question_type": torch.zeros(b, dtype=torch.long),
        }
        if self.seen_ranks is not None:
            batch["seen_ranks"] = n < self.seen_ranks
        if self.question_view:
            batch["question"] = torch.cat([q[:, 0] for q in question], dim=-1)  # [B, Q]
        return batch


class NthFarthestDataModule(ProceduralDataModule):
    """Nth-farthest batches; one val/test dataloader per K in ``eval_num_entities``.

    Every batch has a single K (``N = K``, no padding); training K is ``num_entities``, follows
    ``curriculum``, or is drawn per batch from ``train_num_entities``. Eval batches mark the
    questions whose rank training asked about (``eval_subsets = ["seen_ranks"]``, logged as
    ``test/acc_k16_seen_ranks``). Dataloader names are ``k8``, ``k12``, ...
    (``eval_dataloader_names``).

    Args:
        num_entities: Training K (vectors per question).
        eval_num_entities: K of each val/test dataloader, e.g. ``[8, 12, 16]``; defaults to
            ``[num_entities]``.
        dim: Vector size.
        max_entities: Largest K anywhere; sets ``num_features`` and ``num_classes``.
        form: ``"set"`` or ``"sequence"``: how models read ``x`` (same tensors; see the module
            docstring).
        batch_size: Questions per batch.
        train_samples_per_epoch: Training questions per epoch (fresh every epoch).
        val_samples: Questions in each validation dataloader.
        test_samples: Questions in each test dataloader.
        seed: Base seed (train, val and test use disjoint streams).
        curriculum: Training K to step through, e.g. ``[4, 6, 8]``; replaces ``num_entities``
            for training when set.
        curriculum_steps: Training-sample counts at which to move to the next K, e.g.
            ``[100000, 200000]`` (one fewer than ``curriculum``).
        question_view: Give the question (``one_hot(n)``, and ``one_hot(m)`` with labels) as
            a view of its own, ``question: [B, question_dim]``, instead of inside every
            entity's features (models choose how to read it: ``question_input``).
        label_features: Include the label one-hots ``one_hot(i)`` and ``one_hot(m)`` in ``x``
            (see the module docstring).
        rank_code: How the rank ``n`` is given: ``"one_hot"`` (``one_hot(n, max_entities)``)
            or ``"fraction"`` (a code of ``n / (K - 1)``, the same range for every K; see the
            module docstring).
        train_num_entities: A distribution of training K, e.g. ``[4, 8, 12, 16]``: every
            training batch draws its K uniformly from it (replaces ``num_entities`` for
            training; not with ``curriculum``).
        answer: How models answer: ``"pointer"`` (a logit per entity, from each entity's output
            against the pooled one) or ``"label"`` (class logits of the answer's index from the
            pooled output alone: Santoro et al.'s read-out of the final memory; with
            ``form="sequence"`` the index is the time step).
        num_workers: DataLoader worker processes.
    """

    size_prefix = "k"

    def __init__(
        self,
        num_entities: int = 8,
        eval_num_entities: list[int] | None = None,
        dim: int = 16,
        max_entities: int = 16,
        form: Literal["set", "sequence"] = "set",
        batch_size: int = 64,
        train_samples_per_epoch: int = 64_000,
        val_samples: int = 2_048,
        test_samples: int = 8_192,
        seed: int = 0,
        curriculum: list[int] | None = None,
        curriculum_steps: list[int] | None = None,
        train_num_entities: list[int] | None = None,
        label_features: bool = True,
        question_view: bool = False,
        rank_code: str = "one_hot",
        answer: str = "pointer",
        num_workers: int = 0,
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if max_entities < 2:
            raise ValueError(f"max_entities must be >= 2, got {max_entities}")
        if form not in FORMS:
            raise ValueError(f"unknown form {form!r}; choose one of: {', '.join(FORMS)}")
        if answer not in ANSWERS:
            raise ValueError(
                f"unknown answer {answer!r}; choose one of: {', '.join(ANSWERS)} "
                "(--data.init_args.answer)"
            )
        eval_sizes = [num_entities] if eval_num_entities is None else list(eval_num_entities)
        if curriculum is not None and train_num_entities is not None:
            raise ValueError(
                "give either curriculum (K stepped by samples) or train_num_entities (K drawn "
                "per batch), not both"
            )
        if train_num_entities is not None and not train_num_entities:
            raise ValueError("train_num_entities must list at least one K")
        train_sizes = [num_entities] if curriculum is None else list(curriculum)
        train_sizes = train_sizes if train_num_entities is None else list(train_num_entities)
        for name, sizes in (
            ("num_entities", [num_entities]),
            ("eval_num_entities", eval_sizes),
            ("curriculum" if train_num_entities is None else "train_num_entities", train_sizes),
        ):
            bad = [k for k in sizes if not 2 <= k <= max_entities]
            if bad:
                raise ValueError(
                    f"{name} must lie in 2..max_entities={max_entities}, got {bad}; "
                    f"raise max_entities or use fewer entities"
                )
        if (curriculum is None) != (curriculum_steps is None):
            raise ValueError("curriculum and curriculum_steps must be given together")
        schedule: SizeSchedule | SizeMixture = (
            SizeSchedule(tuple(train_sizes), tuple(curriculum_steps or ()))
            if train_num_entities is None
            else SizeMixture(tuple(train_sizes), seed=seed)
        )
        super().__init__(
            schedule,
            eval_sizes,
            batch_size=batch_size,
            train_samples_per_epoch=train_samples_per_epoch,
            val_samples=val_samples,
            test_samples=test_samples,
            seed=seed,
            num_workers=num_workers,
        )
        self.save_hyperparameters()
        self.form = form
        self.task = NthFarthestTask(
            dim=dim,
            max_entities=max_entities,
            seen_ranks=max(train_sizes),
            label_features=label_features,
            question_view=question_view,
            rank_code=rank_code,
        )

    @property
    def num_classes(self) -> int:
        """``max_entities``: the answer is an entity index."""
        return self.task.max_entities

    @property
    def max_entities(self) -> int:
        """The ``max_entities`` argument (the feature layout's K), not only the largest split:
        the two must agree, since Lightning checks that the model's linked ``max_entities`` and
        this DataModule's hyperparameter of that name are the same."""
        return self.task.max_entities

    @property
    def pos_dim(self) -> int:
        """``dim``: ``pos`` holds the raw vectors."""
        return self.task.dim

    @property
    def question_dim(self) -> int:
        """Width of ``batch["question"]`` (0 without ``question_view``)."""
        return self.task.question_dim

    @property
    def eval_subsets(self) -> list[str]:
        """``["seen_ranks"]``: questions about a rank ``n`` below the largest training K."""
        return ["seen_ranks"]

    @property
    def answer(self) -> str:
        """The ``answer`` argument: ``"pointer"`` (default) or ``"label"``."""
        return self.hparams.answer

    @property
    def question_types(self) -> list[str]:
        """A single type, ``"nth_farthest"``."""
        return ["nth_farthest"]
