"""Mini Pac-Man (Weber et al., 2017), a gymnasium environment with a symbolic observation.

The maze, the ghosts' rule, the level progression and the five reward modes follow the
environment Weber et al. describe in the appendix of "Imagination-Augmented Agents for Deep
Reinforcement Learning" (2017), whose source one of its authors (S. Racanière) published; Santoro
et al. (2018) use the same game seen through a 5x5 window to test relational memory. This module
holds the environment, its registered presets, the game state (:class:`PacmanState`, which tests
and the scripted player in :mod:`graphrl.envs.minipacman_scripted` read) and the maze tables
(:data:`CORRIDOR`, :data:`NEXT_CELL`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# The 15 x 19 maze of the paper ('#' wall, '.' corridor); every corridor cell starts with food.
MAZE: tuple[str, ...] = (
    "###################",
    "#...#.........#...#",
    "#.#.#.#######.#.#.#",
    "#.................#",
    "#.#.#.#######.#.#.#",
    "#.#.............#.#",
    "#.####.#####.####.#",
    "#......#####......#",
    "#.####.#####.####.#",
    "#.#.............#.#",
    "#.#.#.#######.#.#.#",
    "#.................#",
    "#.#.#.#######.#.#.#",
    "#...#.........#...#",
    "###################",
)
HEIGHT, WIDTH = len(MAZE), len(MAZE[0])
CORRIDOR: np.ndarray = np.array([[ch == "." for ch in row] for row in MAZE])  # [H, W] bool
CORRIDOR.setflags(write=False)
CORRIDOR_CELLS: np.ndarray = np.argwhere(CORRIDOR)  # [K, 2] (row, col), row-major
CORRIDOR_CELLS.setflags(write=False)

# Channel 0 of the observation: what a cell shows (Pac-Man over ghosts over pills over food).
EMPTY, WALL, FOOD, PILL, PACMAN, GHOST, EDIBLE_GHOST = range(7)
NUM_SYMBOLS = 7
SYMBOL_NAMES = ("empty", "wall", "food", "power pill", "pac-man", "ghost", "edible ghost")
# Channel 1: the item lying on the cell, also under a ghost (a pill cell holds food too).
NO_ITEM, ITEM_FOOD, ITEM_PILL = range(3)
NUM_ITEMS = 3

# Actions in the order of the paper's environment; directions 1-4 are the ghosts' headings.
STAY, RIGHT, UP, LEFT, DOWN = range(5)
ACTION_NAMES = ("stay", "right", "up", "left", "down")
MOVES = np.array([(0, 0), (0, 1), (-1, 0), (0, -1), (1, 0)])
REVERSE = (STAY, LEFT, DOWN, RIGHT, UP)  # REVERSE[d]: the opposite heading


def _next_cell_table() -> np.ndarray:
    """``[H, W, 5, 2]``: the cell an actor at ``(row, col)`` reaches with each action (it stays
    where a wall blocks the move)."""
    table = np.zeros((HEIGHT, WIDTH, len(MOVES), 2), dtype=np.int64)
    for row in range(HEIGHT):
        for col in range(WIDTH):
            for action, (dr, dc) in enumerate(MOVES):
                r, c = row + dr, col + dc
                inside = 0 <= r < HEIGHT and 0 <= c < WIDTH
                table[row, col, action] = (r, c) if inside and CORRIDOR[r, c] else (row, col)
    return table


NEXT_CELL: np.ndarray = _next_cell_table()
NEXT_CELL.setflags(write=False)
# The headings (1-4) that lead out of each corridor cell.
OPEN_HEADINGS: dict[tuple[int, int], tuple[int, ...]] = {
    (int(r), int(c)): tuple(d for d in range(1, 5) if tuple(NEXT_CELL[r, c, d]) != (r, c))
    for r, c in CORRIDOR_CELLS
}

SAFE_DISTANCE = 5  # ghosts start at least this many rows or columns away from Pac-Man
GHOST_EVERY_LEVELS = 2  # one more ghost every this many levels


@dataclass(frozen=True)
class RewardMode:
    """One of the paper's reward settings.

    Args:
        step: Reward of every step.
        food: Reward for eating one food.
        pill: Reward for eating a power pill.
        ghost: Reward for eating an edible ghost.
        death: Reward for being caught by a ghost (the episode ends).
        clear_on: What ends a level when it is all eaten: ``"food"``, ``"ghosts"`` or
            ``"pills"``.
        level_steps: A level also ends after this many steps (``None``: no limit).
    """

    step: float
    food: float
    pill: float
    ghost: float
    death: float
    clear_on: str
    level_steps: int | None = None


# Weber et al. (2017), appendix, "MiniPacman" reward table (the same values as the released
# environment code).
REWARD_MODES: dict[str, RewardMode] = {
    "regular": RewardMode(step=0.0, food=1.0, pill=2.0, ghost=5.0, death=0.0, clear_on="food"),
    "avoid": RewardMode(
        step=0.1, food=-0.1, pill=-5.0, ghost=-10.0, death=-20.0, clear_on="food", level_steps=128
    ),
    "hunt": RewardMode(step=0.0, food=0.0, pill=1.0, ghost=10.0, death=-20.0, clear_on="ghosts"),
    "ambush": RewardMode(step=0.0, food=-0.1, pill=0.0, ghost=10.0, death=-20.0, clear_on="ghosts"),
    "rush": RewardMode(step=0.0, food=-0.1, pill=10.0, ghost=0.0, death=0.0, clear_on="pills"),
}

MINIPACMAN_PRESETS: dict[str, dict[str, Any]] = {}
for _mode in REWARD_MODES:
    _suffix = "" if _mode == "regular" else f"-{_mode.capitalize()}"
    MINIPACMAN_PRESETS[f"graphrl/MiniPacman{_suffix}-v0"] = {"mode": _mode}
    MINIPACMAN_PRESETS[f"graphrl/MiniPacman{_suffix}-Viewport-v0"] = {"mode": _mode, "viewport": 5}
del _mode, _suffix

# RGB per channel-0 symbol (cells are drawn on black; food, pills and actors as shapes).
PALETTE = np.array(
    [(0, 0, 0), (33, 33, 170), (255, 184, 151), (255, 184, 151), (255, 230, 0), (230, 0, 0),
     (120, 190, 255)],
    dtype=np.uint8,
)  # fmt: skip
_ANSI = np.array([" ", "#", ".", "o", "C", "G", "g"])


@dataclass
class PacmanState:
    """The whole game state between two steps.

    Args:
        pacman: ``(row, col)`` of Pac-Man.
        ghosts: ``[G, 2]`` int ``(row, col)`` of each ghost.
        headings: ``[G]`` int, each ghost's heading (1 right, 2 up, 3 left, 4 down).
        food: ``[H, W]`` bool, cells that hold food.
        pills: ``[H, W]`` bool, cells that hold a power pill.
        power: Steps of power-pill effect left (ghosts are edible while it is > 0).
        level: The level number, from 1.
        level_steps: Steps taken in this level.
    """

    pacman: tuple[int, int]
    ghosts: np.ndarray
    headings: np.ndarray
    food: np.ndarray = field(default_factory=lambda: CORRIDOR.copy())
    pills: np.ndarray = field(default_factory=lambda: np.zeros_like(CORRIDOR))
    power: int = 0
    level: int = 1
    level_steps: int = 0

    def copy(self) -> PacmanState:
        """A deep copy (arrays included)."""
        return PacmanState(
            pacman=(int(self.pacman[0]), int(self.pacman[1])),
            ghosts=np.array(self.ghosts, dtype=np.int64).reshape(-1, 2),
            headings=np.array(self.headings, dtype=np.int64).reshape(-1),
            food=np.array(self.food, dtype=bool),
            pills=np.array(self.pills, dtype=bool),
            power=int(self.power),
            level=int(self.level),
            level_steps=int(self.level_steps),
        )


class MiniPacman(gym.Env[np.ndarray, int]):
    """Mini Pac-Man: eat the food of a maze while ghosts chase you; power pills turn the tables.

    ## Description
    The paper's 15 x 19 maze (:data:`MAZE`). At the start of a level every corridor cell holds
    food, ``num_pills`` power pills lie on distinct random corridor cells, Pac-Man stands on a
    random corridor cell and the level's ghosts on random corridor cells at least 5 rows or
    columns away from him, each with a random heading. Level ``l`` has ``1 + (l - 1) // 2``
    ghosts that try to move with probability ``ghost_speed + 0.1 * (l - 1)`` per step, half
    that while Pac-Man is powered, so every cleared level is harder than the last.

    Each step Pac-Man moves first (into a wall: he stays) and eats what lies on his cell: food,
    and a power pill, which makes every ghost edible for ``pill_duration`` steps. Then each
    ghost in turn: if it shares Pac-Man's cell, it is eaten (edible) or catches him; otherwise
    it may move one cell, and meets Pac-Man the same way if it lands on him. A ghost keeps its
    heading along a corridor, turns at a corner, reverses only in a dead end and, at a
    junction, never turns back: it takes the open heading best aligned with the straight line
    to Pac-Man (least aligned while he is powered; with probability ``ghost_randomness`` a
    random open heading instead). Eaten ghosts do not come back within the level.

    A level is cleared when the mode's objective is all eaten (food, ghosts or pills, see
    Rewards), and in ``avoid`` mode also after 128 steps; the next level is laid out at once
    (new food, pills, positions, and the ghosts of the next level). Where the released code
    leaves room, this env settles it so: the pills lie on distinct cells; when the last of the
    objective is eaten, no ghost moves in that step; every edible ghost on Pac-Man's cell is
    eaten (the released code stops at the first); the step limit truncates the episode rather
    than ending it. All randomness comes from
    ``self.np_random``, so ``reset(seed=s)`` is reproducible; ``reset(options={"state":
    state})`` starts from a given :class:`PacmanState` instead.

    ## Action Space
    ``Discrete(5)``: 0 stay, 1 right, 2 up, 3 left, 4 down (the paper's order).

    ## Observation
    ``Box(0, 255, (15, 19, 3), uint8)``, indexed ``[row, col, channel]``:

    - channel 0, what the cell shows: 0 empty corridor, 1 wall, 2 food, 3 power pill,
      4 Pac-Man, 5 ghost, 6 edible ghost (Pac-Man is drawn over a ghost, a ghost over items);
    - channel 1, the item on the cell, also under a ghost: 0 none, 1 food, 2 power pill
      (a pill cell holds food as well, both eaten together);
    - channel 2, the power-pill steps left (0 to ``pill_duration``), the same in every cell.

    ``symbol_counts = (7, 3, pill_duration + 1)``. With ``viewport=v`` the observation is the
    ``(v, v, 3)`` window centred on Pac-Man instead (Santoro et al.'s partially observable
    Mini Pac-Man uses ``v = 5``); cells outside the maze read as wall. The paper's agents see
    the same six things as RGB planes, the ghosts' edibility as a shade.

    ## Rewards
    The five settings of Weber et al. (2017, appendix, reward table of MiniPacman), with the
    values of their released environment code; ``mode`` picks one:

    | mode    | each step | food | power pill | eat ghost | caught | a level ends when          |
    |---------|-----------|------|------------|-----------|--------|----------------------------|
    | regular | 0         | 1    | 2          | 5         | 0      | all food is eaten          |
    | avoid   | 0.1       | -0.1 | -5         | -10       | -20    | all food eaten, 128 steps  |
    | hunt    | 0         | 0    | 1          | 10        | -20    | all ghosts are eaten       |
    | ambush  | 0         | -0.1 | 0          | 10        | -20    | all ghosts are eaten       |
    | rush    | 0         | -0.1 | 10         | 0         | 0      | all pills are eaten        |

    Clearing a level gives no reward of its own in any mode (it gives a fresh maze of food).

    ## Termination
    Terminated when a ghost catches Pac-Man (in every mode). Truncated after ``max_steps``
    steps (default 3000, the released code's frame cap). ``info`` holds, after every ``reset``
    and ``step``, ``"level"`` (the level being played), ``"levels_cleared"`` (this episode)
    and ``"solved"``: at least one level cleared, so a solve rate is the share of episodes
    that clear the first level.

    ## Registered Configurations
    | id (``graphrl/...``)                | mode    | observation        |
    |-------------------------------------|---------|--------------------|
    | ``MiniPacman-v0``                   | regular | the whole maze     |
    | ``MiniPacman-Viewport-v0``          | regular | 5x5 around Pac-Man |
    | ``MiniPacman-<Mode>-v0``            | avoid, hunt, ambush, rush | the whole maze |
    | ``MiniPacman-<Mode>-Viewport-v0``   | avoid, hunt, ambush, rush | 5x5 around Pac-Man |

    (``<Mode>`` is ``Avoid``, ``Hunt``, ``Ambush`` or ``Rush``.)

    Args:
        mode: Reward setting, one of :data:`REWARD_MODES`.
        viewport: Odd side of the egocentric window (``None``: the whole maze).
        max_steps: Steps before truncation.
        num_pills: Power pills per level.
        pill_duration: Steps a power pill keeps the ghosts edible.
        ghost_speed: Probability that a ghost moves in a step at level 1.
        ghost_speed_increase: Added to that probability per level.
        ghost_randomness: Probability of a random heading at a junction.
        render_mode: ``"rgb_array"`` (``[15 * cell_px, 19 * cell_px, 3]`` uint8, the whole maze
            whatever the viewport), ``"ansi"`` (text) or ``None``.
        cell_px: Pixels per cell in ``rgb_array`` renders.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 8}

    def __init__(
        self,
        mode: str = "regular",
        viewport: int | None = None,
        max_steps: int = 3000,
        num_pills: int = 2,
        pill_duration: int = 20,
        ghost_speed: float = 0.5,
        ghost_speed_increase: float = 0.1,
        ghost_randomness: float = 0.05,
        render_mode: str | None = None,
        cell_px: int = 8,
    ) -> None:
        if mode not in REWARD_MODES:
            raise ValueError(f"mode must be one of {', '.join(REWARD_MODES)}, got {mode!r}")
        if viewport is not None and (
            not isinstance(viewport, int) or viewport < 1 or viewport % 2 == 0
        ):
            raise ValueError(f"viewport must be an odd int >= 1 (e.g. 5) or None, got {viewport!r}")
        for name, value, low in (("max_steps", max_steps, 1), ("num_pills", num_pills, 0)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if not isinstance(pill_duration, int) or not 1 <= pill_duration <= 254:
            raise ValueError(f"pill_duration must be an int in [1, 254], got {pill_duration!r}")
        if num_pills > len(CORRIDOR_CELLS):
            raise ValueError(f"num_pills must be at most {len(CORRIDOR_CELLS)}, got {num_pills}")
        for name, value in (
            ("ghost_speed", ghost_speed),
            ("ghost_speed_increase", ghost_speed_increase),
            ("ghost_randomness", ghost_randomness),
        ):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        if not isinstance(cell_px, int) or cell_px < 1:
            raise ValueError(f"cell_px must be an int >= 1, got {cell_px!r}")
        self.mode = mode
        self.rules = REWARD_MODES[mode]
        self.viewport = viewport
        self.max_steps = max_steps
        self.num_pills = num_pills
        self.pill_duration = pill_duration
        self.ghost_speed = float(ghost_speed)
        self.ghost_speed_increase = float(ghost_speed_increase)
        self.ghost_randomness = float(ghost_randomness)
        self.render_mode = render_mode
        self.cell_px = cell_px
        cells = (HEIGHT, WIDTH) if viewport is None else (viewport, viewport)
        self.observation_space = spaces.Box(0, 255, shape=(*cells, 3), dtype=np.uint8)
        self.action_space = spaces.Discrete(len(ACTION_NAMES))
        self._state: PacmanState | None = None
        self._steps = 0
        self._levels_cleared = 0
        self._over = False

    # ----------------------------------------------------------------------------- gym API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start at level 1 (drawn, or ``options["state"]``); returns ``(obs, info)``."""
        super().reset(seed=seed)
        state = (options or {}).get("state")
        if state is None:
            self._state = self._new_level(1)
        else:
            self._state = self._checked_state(state)
        self._steps = 0
        self._levels_cleared = 0
        self._over = False
        return self._observation(), self._info()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Pac-Man moves, then each ghost; returns ``(obs, reward, terminated, truncated,
        info)``."""
        state = self._state
        if state is None or self._over:
            raise RuntimeError("the episode is over or not started: call reset() before step()")
        move = int(action)
        if not 0 <= move < len(ACTION_NAMES):
            raise ValueError(f"action must be 0-4 ({', '.join(ACTION_NAMES)}), got {action!r}")
        rules = self.rules
        reward = rules.step
        self._steps += 1
        state.level_steps += 1
        state.power = max(0, state.power - 1)
        row, col = (int(v) for v in NEXT_CELL[state.pacman][move])
        state.pacman = (row, col)
        if state.food[row, col]:
            state.food[row, col] = False
            reward += rules.food
        if state.pills[row, col]:
            state.pills[row, col] = False
            reward += rules.pill
            state.power = self.pill_duration
        caught = False
        if not self._objective_done(state):
            gain, caught = self._ghosts_act(state)
            reward += gain
        if caught:
            reward += rules.death
        elif self._objective_done(state) or (
            rules.level_steps is not None and state.level_steps >= rules.level_steps
        ):
            self._levels_cleared += 1
            self._state = self._new_level(state.level + 1)
        terminated = caught
        truncated = not terminated and self._steps >= self.max_steps
        self._over = terminated or truncated
        return self._observation(), float(reward), terminated, truncated, self._info()

    def render(self) -> np.ndarray | str | None:
        """The whole maze as ``render_mode`` asks: RGB array, text, or ``None``."""
        if self._state is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "rgb_array":
            return draw_symbols(self._full_observation(), self.cell_px)
        if self.render_mode == "ansi":
            text = "\n".join("".join(row) for row in _ANSI[self._full_observation()[..., 0]])
            return f"{text}\nlevel {self._state.level} step {self._steps}/{self.max_steps}\n"
        return None

    # ------------------------------------------------------------------- drawing interface

    @property
    def state(self) -> PacmanState:
        """A copy of the game state (after ``reset``)."""
        if self._state is None:
            raise RuntimeError("call reset() before reading the state")
        return self._state.copy()

    @property
    def symbol_counts(self) -> tuple[int, int, int]:
        """Values per observation channel: symbol, item, power steps left."""
        return NUM_SYMBOLS, NUM_ITEMS, self.pill_duration + 1

    @property
    def action_names(self) -> tuple[str, ...]:
        """One name per action index."""
        return ACTION_NAMES

    def draw_observation(self, obs: np.ndarray, cell_px: int = 1) -> np.ndarray:
        """An observation of this env as ``[H * cell_px, W * cell_px, 3]`` uint8 RGB."""
        return draw_symbols(np.asarray(obs), cell_px)

    def agent_cell(self, obs: np.ndarray) -> tuple[int, int] | None:
        """``(row, col)`` of Pac-Man in ``obs`` ``[H, W, 3]`` (None if he is not there)."""
        hits = np.argwhere(np.asarray(obs)[..., 0] == PACMAN)
        return (int(hits[0][0]), int(hits[0][1])) if len(hits) else None

    def describe_observation(self, obs: np.ndarray) -> str:
        """The power-pill effect read from ``obs``: ``"power: 12 steps"`` or ``"power: off"``."""
        power = int(np.asarray(obs)[0, 0, 2])
        return f"power: {power} steps" if power else "power: off"

    # ------------------------------------------------------------------------------ rules

    def ghost_speed_at(self, level: int) -> float:
        """Probability that an unpowered ghost moves in a step of ``level`` (at most 1)."""
        return min(1.0, self.ghost_speed + self.ghost_speed_increase * (level - 1))

    def _objective_done(self, state: PacmanState) -> bool:
        clear_on = self.rules.clear_on
        if clear_on == "food":
            return not state.food.any()
        if clear_on == "pills":
            return self.num_pills > 0 and not state.pills.any()
        return len(state.ghosts) == 0

    def _ghosts_act(self, state: PacmanState) -> tuple[float, bool]:
        """Each ghost in turn meets Pac-Man or moves; returns (reward for eaten ghosts, caught)."""
        speed = self.ghost_speed_at(state.level) * (0.5 if state.power else 1.0)
        eaten = np.zeros(len(state.ghosts), dtype=bool)
        gain = 0.0
        for i in range(len(state.ghosts)):
            met = tuple(state.ghosts[i]) == state.pacman
            if not met and self.np_random.random() < speed:
                self._move_ghost(state, i)
                met = tuple(state.ghosts[i]) == state.pacman
            if met:
                if not state.power:
                    return gain, True
                eaten[i] = True
                gain += self.rules.ghost
        if eaten.any():
            state.ghosts, state.headings = state.ghosts[~eaten], state.headings[~eaten]
        return gain, False

    def _move_ghost(self, state: PacmanState, i: int) -> None:
        cell = (int(state.ghosts[i, 0]), int(state.ghosts[i, 1]))
        heading = int(state.headings[i])
        open_headings = OPEN_HEADINGS[cell]
        if len(open_headings) == 1:  # a dead end: turn back
            heading = open_headings[0]
        elif len(open_headings) == 2:  # a corridor or a corner: go on, never back
            if heading not in open_headings:
                first, second = open_headings
                heading = second if first == REVERSE[heading] else first
        else:  # a junction: towards Pac-Man (away while powered), never back
            choices = [h for h in open_headings if h != REVERSE[heading]]
            to_pacman = np.subtract(state.pacman, cell).astype(np.float64)
            norm = float(np.hypot(*to_pacman))
            if norm > 0:
                alignment = MOVES[choices] @ (to_pacman / norm)
                if state.power:
                    pick = int(np.argmin(alignment))
                elif self.np_random.random() < self.ghost_randomness:
                    pick = int(self.np_random.integers(len(choices)))
                else:
                    pick = int(np.argmax(alignment))
                heading = choices[pick]
        state.headings[i] = heading
        state.ghosts[i] = NEXT_CELL[cell][heading]

    def _new_level(self, level: int) -> PacmanState:
        """Lay out ``level``: food everywhere, pills, Pac-Man, then its ghosts far from him."""
        rng = self.np_random
        pills = np.zeros_like(CORRIDOR)
        picks = rng.choice(len(CORRIDOR_CELLS), size=self.num_pills, replace=False)
        pills[tuple(CORRIDOR_CELLS[picks].T)] = True
        pacman = CORRIDOR_CELLS[rng.integers(len(CORRIDOR_CELLS))]
        far = CORRIDOR_CELLS[np.abs(CORRIDOR_CELLS - pacman).max(axis=1) >= SAFE_DISTANCE]
        count = 1 + (level - 1) // GHOST_EVERY_LEVELS
        return PacmanState(
            pacman=(int(pacman[0]), int(pacman[1])),
            ghosts=far[rng.integers(len(far), size=count)].astype(np.int64),
            headings=rng.integers(1, 5, size=count).astype(np.int64),
            food=CORRIDOR.copy(),
            pills=pills,
            level=level,
        )

    def _checked_state(self, state: Any) -> PacmanState:
        if not isinstance(state, PacmanState):
            raise ValueError(f"options['state'] must be a PacmanState, got {type(state).__name__}")
        state = state.copy()
        if state.ghosts.shape[0] != state.headings.shape[0]:
            raise ValueError(
                f"options['state'] has {state.ghosts.shape[0]} ghosts but "
                f"{state.headings.shape[0]} headings"
            )
        for name, grid in (("food", state.food), ("pills", state.pills)):
            if grid.shape != CORRIDOR.shape or (grid & ~CORRIDOR).any():
                raise ValueError(
                    f"options['state'].{name} must be a {CORRIDOR.shape} bool grid on corridor "
                    "cells only"
                )
        for where in (state.pacman, *map(tuple, state.ghosts)):
            if not CORRIDOR[where]:
                raise ValueError(f"options['state'] puts an actor on a wall cell {where}")
        if not ((state.headings >= 1) & (state.headings <= 4)).all():
            raise ValueError("options['state'].headings must be 1-4 (right, up, left, down)")
        if not 0 <= state.power <= self.pill_duration or state.level < 1:
            raise ValueError(
                f"options['state'] needs 0 <= power <= {self.pill_duration} and level >= 1"
            )
        return state

    # ---------------------------------------------------------------------- observations

    def _full_observation(self) -> np.ndarray:
        """``[15, 19, 3]`` uint8 symbols of the whole maze."""
        state = self._state
        obs = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
        shown, item = obs[..., 0], obs[..., 1]
        shown[:] = _MAZE_SYMBOLS
        item[:] = NO_ITEM
        shown[state.food] = FOOD
        item[state.food] = ITEM_FOOD
        shown[state.pills] = PILL
        item[state.pills] = ITEM_PILL
        if len(state.ghosts):
            shown[state.ghosts[:, 0], state.ghosts[:, 1]] = EDIBLE_GHOST if state.power else GHOST
        shown[state.pacman] = PACMAN
        obs[..., 2] = state.power
        return obs

    def _observation(self) -> np.ndarray:
        obs = self._full_observation()
        if self.viewport is None:
            return obs
        return egocentric_window(obs, self._state.pacman, self.viewport)

    def _info(self) -> dict[str, Any]:
        return {
            "level": self._state.level,
            "levels_cleared": self._levels_cleared,
            "solved": self._levels_cleared > 0,
        }


_MAZE_SYMBOLS = np.where(CORRIDOR, EMPTY, WALL).astype(np.uint8)


def egocentric_window(obs: np.ndarray, centre: tuple[int, int], size: int) -> np.ndarray:
    """Crop ``obs`` ``[H, W, 3]`` to the ``[size, size, 3]`` window centred on ``centre``.

    Cells outside the maze read as wall with no item; channel 2 (power) keeps its value.
    """
    half = size // 2
    view = np.zeros((size, size, obs.shape[-1]), dtype=obs.dtype)
    view[..., 0] = WALL
    view[..., 2] = obs[0, 0, 2]
    height, width = obs.shape[:2]
    top, left = centre[0] - half, centre[1] - half
    r0, r1 = max(top, 0), min(top + size, height)
    c0, c1 = max(left, 0), min(left + size, width)
    view[r0 - top : r1 - top, c0 - left : c1 - left] = obs[r0:r1, c0:c1]
    return view


def draw_symbols(obs: np.ndarray, cell_px: int = 1) -> np.ndarray:
    """Paint Mini Pac-Man observations as RGB.

    Args:
        obs: ``[H, W, 3]`` observation (full maze or window); channel 0 is drawn.
        cell_px: Pixels per cell side. From 4 pixels food, pills, Pac-Man and the ghosts are
            shapes on the black corridor (a dot, a disc, a large disc, a rounded block);
            below that each cell is one colour.

    Returns:
        ``[H * cell_px, W * cell_px, 3]`` uint8.
    """
    obs = np.asarray(obs)
    if obs.ndim != 3 or obs.shape[-1] != 3 or obs.dtype.kind not in "ui":
        raise ValueError(
            f"obs must be an integer [H, W, 3] Mini Pac-Man observation, got shape {obs.shape} "
            f"and dtype {obs.dtype}"
        )
    shown = obs[..., 0].astype(np.int64)
    if shown.size and int(shown.max()) >= NUM_SYMBOLS:
        raise ValueError(f"symbol {int(shown.max())} has no colour; symbols go up to 6")
    if cell_px < 4:
        rgb = PALETTE[shown]
        if cell_px > 1:
            rgb = np.repeat(np.repeat(rgb, cell_px, axis=0), cell_px, axis=1)
        return rgb
    masks = _shape_masks(cell_px)
    tiles = np.zeros((NUM_SYMBOLS, cell_px, cell_px, 3), dtype=np.uint8)
    for symbol in range(NUM_SYMBOLS):
        tiles[symbol][masks[symbol]] = PALETTE[symbol]
    height, width = shown.shape
    image = tiles[shown]  # [H, W, px, px, 3]
    return image.transpose(0, 2, 1, 3, 4).reshape(height * cell_px, width * cell_px, 3)


@functools.lru_cache(maxsize=8)
def _shape_masks(cell_px: int) -> tuple[np.ndarray, ...]:
    """One ``[cell_px, cell_px]`` bool mask per symbol (built once per size; read only)."""
    centre = (cell_px - 1) / 2
    y, x = np.mgrid[0:cell_px, 0:cell_px]
    radius = np.hypot(y - centre, x - centre) / cell_px
    full = np.ones((cell_px, cell_px), dtype=bool)
    ghost = (radius <= 0.45) | ((y >= centre) & (np.abs(x - centre) <= 0.45 * cell_px))
    masks = (
        np.zeros_like(full),  # empty
        full,  # wall
        radius <= max(0.12, 0.75 / cell_px),  # food: at least the centre pixels
        radius <= 0.3,  # power pill
        radius <= 0.45,  # pac-man
        ghost,
        ghost,
    )
    for mask in masks:
        mask.setflags(write=False)
    return masks
