"""Sort-of-CLEVR from state descriptions (Santoro et al. 2017, "A simple neural network module
for relational reasoning").

A scene holds ``num_objects`` objects, each with a distinct colour (of ``num_colors``), a shape
(square or circle) and a position in ``[0, 1]^2``. Positions come from a jittered grid: each
object takes a distinct cell of a ``G x G`` grid (``G = ceil(sqrt(2 * num_colors))``) and moves at
most ``0.3`` of a cell from its centre, so two objects are at least ``0.4 / G`` apart.

Questions name an object by its colour ``c`` (one of the scene's colours, uniformly):

===  ==================  =============================================================  =======
id   question_type       question                                                       answer
===  ==================  =============================================================  =======
0    ``shape``           what is the shape of the c object?                             shape
1    ``horizontal``      is the c object on the left (``x < 0.5``)?                     yes/no
2    ``vertical``        is the c object on the top (``y < 0.5``, y grows downward)?    yes/no
3    ``nearest_shape``   what is the shape of the object nearest to the c object?       shape
4    ``farthest_shape``  what is the shape of the object farthest from the c object?    shape
5    ``count``           how many objects have the shape of the c object (itself too)?  count
===  ==================  =============================================================  =======

Types 0-2 are non-relational, 3-5 relational; each is drawn with probability 1/6.
Answer vocabulary (``answer_vocab``, ``num_classes = 4 + num_colors``)::

    0 square | 1 circle | 2 yes | 3 no | 4 "1" | 5 "2" | ... | 3 + num_colors  str(num_colors)

Entity features, one row per object (``num_features = 2 * num_colors + 10``, whatever
``num_objects``)::

    x[b, i] = [ one_hot(colour_i, C) | one_hot(shape_i, 2) | x_i, y_i
              | one_hot(question_type, 6) | one_hot(c, C) ]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from datamodules.base import Batch, ProceduralDataModule, SizeSchedule

SHAPES = ("square", "circle")
QUESTION_TYPES = ("shape", "horizontal", "vertical", "nearest_shape", "farthest_shape", "count")
YES, NO = 2, 3
COUNT_OFFSET = 4
"""Class id of the count answer ``c`` is ``COUNT_OFFSET + c - 1``."""
JITTER = 0.3
"""Largest offset of an object from its grid-cell centre, in cells."""


def answer_vocab(num_colors: int) -> list[str]:
    """The answer words: shapes, yes/no, then counts ``1 .. num_colors``."""
    return [*SHAPES, "yes", "no", *(str(c) for c in range(1, num_colors + 1))]


def sort_of_clevr_answers(
    shape: Tensor, pos: Tensor, question_type: Tensor, query: Tensor
) -> Tensor:
    """Answer class ids for every question, computed for the whole batch at once.

    Args:
        shape: ``[B, N]`` long shape ids (0 square, 1 circle).
        pos: ``[B, N, 2]`` object positions.
        question_type: ``[B]`` long ids into ``QUESTION_TYPES``.
        query: ``[B]`` long index of the object named by the question.

    Returns:
        ``[B]`` long ids into ``answer_vocab``.
    """
    rows = torch.arange(shape.shape[0])
    q_pos = pos[rows, query]  # [B, 2]
    sq_dist = (pos - q_pos.unsqueeze(1)).pow(2).sum(-1)  # [B, N]
    others = sq_dist.masked_fill(F.one_hot(query, shape.shape[1]).bool(), float("inf"))
    nearest = others.argmin(dim=1)
    farthest = sq_dist.argmax(dim=1)
    q_shape = shape[rows, query]
    count = (shape == q_shape.unsqueeze(1)).sum(dim=1)
    candidates = torch.stack(
        [
            q_shape,
            torch.where(q_pos[:, 0] < 0.5, YES, NO),
            torch.where(q_pos[:, 1] < 0.5, YES, NO),
            shape[rows, nearest],
            shape[rows, farthest],
            COUNT_OFFSET + count - 1,
        ],
        dim=1,
    )  # [B, len(QUESTION_TYPES)]
    return candidates[rows, question_type]


@dataclass(frozen=True)
class SortOfClevrTask:
    """Draws Sort-of-CLEVR batches (picklable, so workers and DDP processes can use it).

    Args:
        num_colors: Colour palette size; the most objects a scene can hold.
    """

    num_colors: int = 6

    @property
    def num_features(self) -> int:
        """``2 * num_colors + len(SHAPES) + 2 + len(QUESTION_TYPES)``."""
        return 2 * self.num_colors + len(SHAPES) + 2 + len(QUESTION_TYPES)

    @property
    def grid_size(self) -> int:
        """Cells per side of the placement grid, ``ceil(sqrt(2 * num_colors))``."""
        return math.ceil(math.sqrt(2 * self.num_colors))

    def sample(self, batch_size: int, num_entities: int, generator: torch.Generator) -> Batch:
        """Draw ``batch_size`` scenes of ``num_entities`` objects, one question each.

        Returns:
            ``x: [B, N, F]``, ``mask: [B, N]`` (all True), ``pos: [B, N, 2]``, ``y: [B]``
            (answer id), ``question_type: [B]``.
        """
        b, n, c, g = batch_size, num_entities, self.num_colors, self.grid_size
        if not 2 <= n <= c:
            raise ValueError(f"num_objects must be in 2..num_colors={c}, got {n}")
        colour = torch.rand(b, c, generator=generator).argsort(dim=1)[:, :n]
        shape = torch.randint(0, len(SHAPES), (b, n), generator=generator)
        cell = torch.rand(b, g * g, generator=generator).argsort(dim=1)[:, :n]
        jitter = (torch.rand(b, n, 2, generator=generator) * 2 - 1) * JITTER
        pos = (torch.stack([cell % g, cell // g], dim=-1) + 0.5 + jitter) / g
        question_type = torch.randint(0, len(QUESTION_TYPES), (b,), generator=generator)
        query = torch.randint(0, n, (b,), generator=generator)
        query_colour = colour[torch.arange(b), query]

        x = torch.cat(
            [
                F.one_hot(colour, c).float(),
                F.one_hot(shape, len(SHAPES)).float(),
                pos,
                F.one_hot(question_type, len(QUESTION_TYPES)).float().unsqueeze(1).expand(b, n, -1),
                F.one_hot(query_colour, c).float().unsqueeze(1).expand(b, n, -1),
            ],
            dim=-1,
        )
        return {
            "x": x,
            "mask": torch.ones(b, n, dtype=torch.bool),
            "pos": pos,
            "y": sort_of_clevr_answers(shape, pos, question_type, query),
            "question_type": question_type,
        }


class SortOfClevrDataModule(ProceduralDataModule):
    """Sort-of-CLEVR state descriptions; one val/test dataloader per ``eval_num_objects``.

    Dataloader names are ``n6``, ``n8``, ... (``eval_dataloader_names``).

    Args:
        num_objects: Objects per training scene (at least 2, at most ``num_colors``).
        eval_num_objects: Objects per scene of each val/test dataloader; defaults to
            ``[num_objects]``.
        num_colors: Palette size (6 in the paper); fixes ``num_features`` and ``num_classes``.
        batch_size: Questions per batch.
        train_samples_per_epoch: Training questions per epoch (fresh every epoch).
        val_samples: Questions in each validation dataloader.
        test_samples: Questions in each test dataloader.
        seed: Base seed (train, val and test use disjoint streams).
        num_workers: DataLoader worker processes.
    """

    size_prefix = "n"

    def __init__(
        self,
        num_objects: int = 6,
        eval_num_objects: list[int] | None = None,
        num_colors: int = 6,
        batch_size: int = 64,
        train_samples_per_epoch: int = 64_000,
        val_samples: int = 2_048,
        test_samples: int = 8_192,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        if num_colors < 2:
            raise ValueError(f"num_colors must be >= 2, got {num_colors}")
        eval_sizes = [num_objects] if eval_num_objects is None else list(eval_num_objects)
        for name, sizes in (("num_objects", [num_objects]), ("eval_num_objects", eval_sizes)):
            bad = [n for n in sizes if not 2 <= n <= num_colors]
            if bad:
                raise ValueError(
                    f"{name} must lie in 2..num_colors={num_colors} (colours are distinct), "
                    f"got {bad}; raise num_colors"
                )
        super().__init__(
            SizeSchedule((num_objects,)),
            eval_sizes,
            batch_size=batch_size,
            train_samples_per_epoch=train_samples_per_epoch,
            val_samples=val_samples,
            test_samples=test_samples,
            seed=seed,
            num_workers=num_workers,
        )
        self.save_hyperparameters()
        self.task = SortOfClevrTask(num_colors=num_colors)

    @property
    def num_classes(self) -> int:
        """``len(answer_vocab) = 4 + num_colors``."""
        return len(self.answer_vocab)

    @property
    def answer_vocab(self) -> list[str]:
        """Answer words, indexed by ``y``."""
        return answer_vocab(self.task.num_colors)

    @property
    def pos_dim(self) -> int:
        """2: ``pos`` is the object's ``(x, y)``."""
        return 2

    @property
    def answer(self) -> str:
        """``"label"``."""
        return "label"

    @property
    def question_types(self) -> list[str]:
        """``shape, horizontal, vertical, nearest_shape, farthest_shape, count``."""
        return list(QUESTION_TYPES)

    @property
    def relational_question_types(self) -> list[str]:
        """The question types that need more than one object."""
        return list(QUESTION_TYPES[3:])
