"""Procedural Box-World levels: symbols, the level generator and the local role rule.

A level is a tree of key colours. The *solution path* is a loose key of colour ``k0`` and
``goal_length`` boxes ``(lock k0, content k1), (lock k1, content k2), ..., (lock k[L-1],
content gem)``. Each of the ``num_distractors`` *distractor branches* starts with a box whose
lock is a path colour ``k[j]`` (``j`` uniform in ``[0, L)``) and continues with
``distractor_length - 1`` boxes keyed by the previous content; its last content is a key
that opens nothing. Every colour of a level is distinct, so a box is on the solution path
exactly when its content is a path key or the gem.

Positions are drawn uniformly with the caller's generator, subject to:

- a box is two horizontally adjacent cells, content on the left and lock on the right;
- no coloured cell (key, lock, content, gem) is horizontally adjacent to a coloured cell of
  another object, so the local rule of :func:`roles_from_colors` reads the level exactly;
- the walkable cells (floor, agent, loose key) are 4-connected and every lock touches one,
  so the agent can reach every box; opening boxes only frees cells.

A layout that breaks the last rule is redrawn: about 1 in 10 at 20% room occupancy, 4 in 10
at 33%. :func:`check_feasible` rejects sizes where fewer than 1 draw in 20 succeeds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Colour ids (channel 0 of the observation).
FLOOR = 0
WALL = 1
AGENT = 2
GEM = 3
FIRST_KEY_COLOR = 4
MAX_COLORS = 26  # one letter each in the text rendering

# Role ids (channel 1 of the observation).
ROLE_FLOOR = 0
ROLE_WALL = 1
ROLE_AGENT = 2
ROLE_KEY = 3
ROLE_LOCK = 4
ROLE_CONTENT = 5
ROLE_GEM = 6
ROLE_HELD = 7
NUM_ROLES = 8
ROLE_NAMES = ("floor", "wall", "agent", "key", "lock", "content", "gem", "held")

HELD_SLOT = (0, 0)  # border cell that shows the held key


@dataclass(frozen=True, eq=False)
class Level:
    """One Box-World level before the episode starts.

    Args:
        colors: ``[n + 2, n + 2]`` uint8 colour ids: a wall border, floor, loose keys, locks,
            box contents and the gem; the agent is not drawn.
        agent: The agent's start cell ``(row, col)``.
        path_contents: Contents of the solution-path boxes (key colour ids and ``GEM``);
            opening any other box is opening a distractor.
    """

    colors: np.ndarray
    agent: tuple[int, int]
    path_contents: frozenset[int]


@dataclass(frozen=True)
class LevelConfig:
    """Sizes of a Box-World level, validated on construction.

    Args:
        n: Side of the square room (the grid adds a one-cell wall border).
        goal_length: Boxes on the solution path, the last one holding the gem.
        num_distractors: Distractor branches.
        distractor_length: Boxes per distractor branch.
        num_colors: Key colours to draw from; each level uses
            ``goal_length + num_distractors * distractor_length`` distinct ones.
    """

    n: int
    goal_length: int
    num_distractors: int
    distractor_length: int
    num_colors: int

    def __post_init__(self) -> None:
        for name, low in (("n", 2), ("goal_length", 1), ("distractor_length", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if not isinstance(self.num_distractors, int) or self.num_distractors < 0:
            raise ValueError(f"num_distractors must be an int >= 0, got {self.num_distractors!r}")
        if not isinstance(self.num_colors, int) or not 1 <= self.num_colors <= MAX_COLORS:
            raise ValueError(
                f"num_colors must be an int in [1, {MAX_COLORS}], got {self.num_colors!r}"
            )
        if self.num_colors < self.colors_needed:
            fix = "raise num_colors" if self.colors_needed <= MAX_COLORS else "there are only 26"
            raise ValueError(
                f"num_colors={self.num_colors} is too few: a level uses goal_length + "
                f"num_distractors * distractor_length = {self.colors_needed} distinct colours; "
                f"{fix}, or shorten the level"
            )
        cells = self.cells_needed
        if cells > self.n * self.n // 2:
            raise ValueError(
                f"a {self.n}x{self.n} room cannot hold this level: it needs {cells} cells "
                f"(2 per box, loose key, agent) and at most half the room "
                f"({self.n * self.n // 2}) may be filled; use a larger n or fewer/shorter "
                f"distractors"
            )

    @property
    def num_boxes(self) -> int:
        """Boxes in a level: the solution path plus every distractor branch."""
        return self.goal_length + self.num_distractors * self.distractor_length

    @property
    def colors_needed(self) -> int:
        """Distinct key colours in a level."""
        return self.num_boxes

    @property
    def cells_needed(self) -> int:
        """Room cells taken at the start: two per box, the loose key and the agent."""
        return 2 * self.num_boxes + 2


def roles_from_colors(colors: np.ndarray) -> np.ndarray:
    """The role of every cell, read from the colour channel by a local rule.

    A coloured cell (a key colour or the gem) with a coloured horizontal neighbour is part of
    a box: the left cell is the content, the right one the lock; a coloured cell with no
    coloured horizontal neighbour is a loose key. The gem is always ``ROLE_GEM`` and the
    top-left border cell always ``ROLE_HELD``. Nothing else (the level's tree, which boxes are
    distractors) is encoded.

    Args:
        colors: ``[H, W]`` colour ids.

    Returns:
        ``[H, W]`` uint8 role ids.
    """
    roles = np.full(colors.shape, ROLE_FLOOR, dtype=np.uint8)
    roles[colors == WALL] = ROLE_WALL
    roles[colors == AGENT] = ROLE_AGENT
    coloured = colors >= GEM
    left = np.zeros_like(coloured)
    left[:, 1:] = coloured[:, :-1]
    right = np.zeros_like(coloured)
    right[:, :-1] = coloured[:, 1:]
    roles[coloured & ~left & ~right] = ROLE_KEY
    roles[coloured & right] = ROLE_CONTENT
    roles[coloured & left] = ROLE_LOCK
    roles[colors == GEM] = ROLE_GEM
    roles[HELD_SLOT] = ROLE_HELD
    return roles


def _sample_boxes(
    config: LevelConfig, rng: np.random.Generator
) -> tuple[int, list[tuple[int, int]], frozenset[int]]:
    """Colours of one level: the loose key, ``(lock, content)`` per box, path contents."""
    drawn = rng.permutation(config.num_colors)[: config.colors_needed] + FIRST_KEY_COLOR
    path = [int(c) for c in drawn[: config.goal_length]]
    boxes = [(path[i], path[i + 1]) for i in range(config.goal_length - 1)]
    boxes.append((path[-1], GEM))
    rest = iter(int(c) for c in drawn[config.goal_length :])
    for _ in range(config.num_distractors):
        lock = path[int(rng.integers(config.goal_length))]
        for _ in range(config.distractor_length):
            content = next(rest)
            boxes.append((lock, content))
            lock = content
    return path[0], boxes, frozenset(path[1:]) | {GEM}


def _walkable_connected(colors: np.ndarray, walkable: np.ndarray) -> bool:
    """Whether the walkable cells are 4-connected and every lock touches one."""
    width = colors.shape[1]
    flat = walkable.ravel()
    cells = np.flatnonzero(flat)
    seen = np.zeros_like(flat)
    seen[cells[0]] = True
    queue = deque([int(cells[0])])
    count = 1
    steps = (1, -1, width, -width)  # the border is never walkable: no bounds checks needed
    while queue:
        cell = queue.popleft()
        for step in steps:
            nxt = cell + step
            if flat[nxt] and not seen[nxt]:
                seen[nxt] = True
                count += 1
                queue.append(nxt)
    if count != cells.size:
        return False
    locks = roles_from_colors(colors) == ROLE_LOCK
    touch = np.zeros_like(walkable)
    touch[1:, :] |= walkable[:-1, :]
    touch[:-1, :] |= walkable[1:, :]
    touch[:, 1:] |= walkable[:, :-1]
    touch[:, :-1] |= walkable[:, 1:]
    return bool(np.all(touch[locks]))


def _place_once(
    config: LevelConfig, rng: np.random.Generator, start_key: int, boxes: list[tuple[int, int]]
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """One random layout, or ``None`` if it leaves part of the room unreachable."""
    size = config.n + 2
    colors = np.full((size, size), FLOOR, dtype=np.uint8)
    colors[[0, -1], :] = WALL
    colors[:, [0, -1]] = WALL
    # forbid: cells a new coloured cell may not use (border, taken, or beside a coloured cell).
    forbid = colors == WALL
    for index in rng.permutation(len(boxes)):
        lock, content = boxes[index]
        starts = np.flatnonzero(~forbid[:, :-1] & ~forbid[:, 1:])
        if starts.size == 0:
            return None
        row, col = divmod(int(starts[rng.integers(starts.size)]), size - 1)
        colors[row, col], colors[row, col + 1] = content, lock
        forbid[row, max(col - 1, 0) : col + 3] = True
    free = np.flatnonzero(~forbid)
    if free.size == 0:
        return None
    row, col = divmod(int(free[rng.integers(free.size)]), size)
    colors[row, col] = start_key
    forbid[row, col - 1 : col + 2] = True
    empty = np.flatnonzero(colors == FLOOR)
    agent = divmod(int(empty[rng.integers(empty.size)]), size)
    walkable = colors == FLOOR
    walkable[row, col] = True  # the loose key
    if not _walkable_connected(colors, walkable):
        return None
    return colors, (int(agent[0]), int(agent[1]))


@lru_cache(maxsize=64)
def check_feasible(config: LevelConfig, draws: int = 100, min_successes: int = 5) -> None:
    """Fail unless random layouts of ``config`` are reachable often enough to draw quickly.

    Draws ``draws`` layouts from a fixed seed; the result is cached per config.

    Raises:
        ValueError: Fewer than ``min_successes`` of the draws left every box reachable.
    """
    rng = np.random.default_rng(0)
    successes = 0
    for _ in range(draws):
        start_key, boxes, _ = _sample_boxes(config, rng)
        successes += _place_once(config, rng, start_key, boxes) is not None
        if successes >= min_successes:
            return
    raise ValueError(
        f"a {config.n}x{config.n} room is too crowded for {config.num_boxes} boxes: only "
        f"{successes}/{draws} random layouts leave every box reachable; use a larger n or "
        f"fewer/shorter distractors"
    )


def generate_level(config: LevelConfig, rng: np.random.Generator, max_tries: int = 1000) -> Level:
    """Draw a solvable level with ``rng`` only (seeded generators give the same level).

    Args:
        config: Level sizes.
        rng: The only source of randomness (the env passes ``self.np_random``).
        max_tries: Layouts drawn before giving up.

    Returns:
        The level.

    Raises:
        RuntimeError: No layout with every box reachable was found in ``max_tries`` draws.
    """
    for _ in range(max_tries):
        start_key, boxes, path_contents = _sample_boxes(config, rng)
        placed = _place_once(config, rng, start_key, boxes)
        if placed is not None:
            colors, agent = placed
            return Level(colors=colors, agent=agent, path_contents=path_contents)
    raise RuntimeError(
        f"no reachable layout for {config} in {max_tries} tries; the room is too crowded: "
        f"use a larger n or fewer/shorter distractors"
    )


def _as_choices(name: str, value: int | Sequence[int]) -> tuple[int, ...]:
    """``3 -> (3,)``; ``[1, 2, 3] -> (1, 2, 3)``; a clear error for anything else."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0:
        return tuple(value)  # each entry is validated by LevelConfig
    raise ValueError(f"{name} must be an int or a non-empty list of ints, got {value!r}")


def relabel_colors(level: Level, color_ids: int, rng: np.random.Generator) -> Level:
    """The same level with its key colours mapped by a random injection into ``color_ids`` ids.

    Colour ``c`` (``>= FIRST_KEY_COLOR``) becomes ``FIRST_KEY_COLOR + perm[c']`` for a fresh
    random permutation, so which colour opens which lock carries no information across
    episodes: only the equality of a key and its lock does.

    Args:
        level: A generated level.
        color_ids: Size of the key-colour id space to map into; at least the level's colours.
        rng: Source of the permutation.

    Returns:
        A new :class:`Level` (floor, walls and the gem unchanged).
    """
    used = np.unique(level.colors[level.colors >= FIRST_KEY_COLOR])
    if used.size > color_ids:
        raise ValueError(f"a level with {used.size} key colours cannot use {color_ids} colour ids")
    table = np.arange(max(int(level.colors.max()) + 1, FIRST_KEY_COLOR), dtype=np.uint8)
    table[used] = rng.permutation(color_ids)[: used.size] + FIRST_KEY_COLOR
    contents = frozenset(int(table[c]) if c >= FIRST_KEY_COLOR else c for c in level.path_contents)
    return Level(colors=table[level.colors], agent=level.agent, path_contents=contents)


@dataclass(frozen=True)
class LevelDistribution:
    """Box-World levels drawn per episode: sizes sampled from lists, colours optionally relabelled.

    Every combination of the listed ``goal_length``, ``num_distractors`` and
    ``distractor_length`` is one :class:`LevelConfig`; an episode picks one uniformly (so the
    three are drawn independently and uniformly), then draws a level from it. With
    ``color_ids`` set, each level's key colours are then relabelled at random into that many
    ids (:func:`relabel_colors`): training with ``color_ids=26`` shows every id, so a policy
    embeds colours it will meet in bigger levels, and no colour pairing is ever fixed.

    Args:
        configs: The level configurations to draw from.
        color_ids: Key-colour ids of the observation (``symbol_counts[0] - 4``); None keeps the
            generator's colours, ``0 .. num_colors - 1`` (no extra draw, the same levels as
            before per seed).
    """

    configs: tuple[LevelConfig, ...]
    color_ids: int | None = None

    @classmethod
    def build(
        cls,
        n: int,
        goal_length: int | Sequence[int],
        num_distractors: int | Sequence[int],
        distractor_length: int | Sequence[int],
        num_colors: int | None = None,
        color_ids: int | None = None,
    ) -> LevelDistribution:
        """Every combination of the listed sizes, validated and checked to be drawable.

        Args:
            n: Side of the room.
            goal_length: Boxes on the solution path: an int or a list to draw from.
            num_distractors: Distractor branches: an int or a list.
            distractor_length: Boxes per distractor branch: an int or a list.
            num_colors: Colours the generator draws from; None: the most any level needs.
            color_ids: Relabel each level's colours into this many ids (see the class).
        """
        sizes = [
            _as_choices(name, value)
            for name, value in (
                ("goal_length", goal_length),
                ("num_distractors", num_distractors),
                ("distractor_length", distractor_length),
            )
        ]
        combos = [(g, d, length) for g in sizes[0] for d in sizes[1] for length in sizes[2]]
        if num_colors is None:
            needed = [g + d * length for g, d, length in combos]
            ok = all(isinstance(v, int) for v in needed)
            num_colors = min(max(needed), MAX_COLORS) if ok else 1
        configs = tuple(LevelConfig(n, g, d, length, num_colors) for g, d, length in combos)
        for config in configs:
            check_feasible(config)
        if color_ids is not None:
            most = max(c.colors_needed for c in configs)
            if not isinstance(color_ids, int) or not most <= color_ids <= MAX_COLORS:
                raise ValueError(
                    f"color_ids must be an int in [{most}, {MAX_COLORS}] (these levels use up "
                    f"to {most} colours), got {color_ids!r}"
                )
        return cls(configs, color_ids)

    @property
    def num_color_ids(self) -> int:
        """Key-colour ids an observation may hold (``symbol_counts[0] - FIRST_KEY_COLOR``)."""
        return self.configs[0].num_colors if self.color_ids is None else self.color_ids

    def sample(self, rng: np.random.Generator) -> Level:
        """One level drawn with ``rng`` only (a single config and no relabelling draw nothing
        extra, so such a distribution gives exactly :func:`generate_level`'s levels)."""
        config = self.configs[0]
        if len(self.configs) > 1:
            config = self.configs[int(rng.integers(len(self.configs)))]
        level = generate_level(config, rng)
        return level if self.color_ids is None else relabel_colors(level, self.color_ids, rng)
