"""Box-World (Zambaldi et al., 2019), a gymnasium environment with a symbolic or RGB observation.

Level generation lives in :mod:`graphrl.envs.boxworld_levels`; this module holds the
environment, its registered presets and the renderers (:func:`observation_to_rgb`,
:func:`observation_to_ansi`), which work on observations without an env instance.
"""

from __future__ import annotations

import string
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from graphrl.envs.boxworld_levels import (
    AGENT,
    FIRST_KEY_COLOR,
    FLOOR,
    GEM,
    HELD_SLOT,
    MAX_COLORS,
    NUM_ROLES,
    ROLE_AGENT,
    ROLE_FLOOR,
    ROLE_KEY,
    ROLE_LOCK,
    WALL,
    Level,
    LevelDistribution,
    roles_from_colors,
)

REWARD_GEM = 10.0
REWARD_BOX = 1.0
REWARD_DISTRACTOR = -1.0

ACTION_NAMES = ("up", "down", "left", "right")
OBS_MODES = ("symbols", "pixels")
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))

# RGB per colour id: floor, wall, agent, gem, then MAX_COLORS distinct key colours.
PALETTE = np.array(
    [
        (200, 200, 200), (0, 0, 0), (64, 64, 64), (255, 255, 255),
        (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
        (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
        (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
        (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (0, 100, 0),
        (75, 0, 130), (0, 191, 255), (189, 183, 107), (255, 127, 80), (199, 21, 133),
        (70, 130, 180),
    ],
    dtype=np.uint8,
)  # fmt: skip
_LOWER = np.array([".", "#", "@", "*", *string.ascii_lowercase[:MAX_COLORS]])
_UPPER = np.array([".", "#", "@", "*", *string.ascii_uppercase[:MAX_COLORS]])

BOXWORLD_PRESETS: dict[str, dict[str, Any]] = {
    "graphrl/BoxWorld-Small-v0": dict(
        n=6, goal_length=2, num_distractors=1, distractor_length=1, num_colors=6, max_steps=120
    ),
    "graphrl/BoxWorld-Small-Hard-v0": dict(
        n=6, goal_length=3, num_distractors=2, distractor_length=1, num_colors=6, max_steps=120
    ),
    "graphrl/BoxWorld-Medium-v0": dict(
        n=8, goal_length=3, num_distractors=2, distractor_length=1, num_colors=20, max_steps=120
    ),
    "graphrl/BoxWorld-Medium-Hard-v0": dict(
        n=8, goal_length=5, num_distractors=3, distractor_length=1, num_colors=20, max_steps=200
    ),
    "graphrl/BoxWorld-12x12-v0": dict(
        n=12, goal_length=4, num_distractors=4, distractor_length=1, num_colors=20, max_steps=120
    ),
    "graphrl/BoxWorld-12x12-Hard-v0": dict(
        n=12, goal_length=4, num_distractors=4, distractor_length=3, num_colors=20, max_steps=120
    ),
    "graphrl/BoxWorld-12x12-Long-v0": dict(
        n=12, goal_length=10, num_distractors=4, distractor_length=1, num_colors=20, max_steps=300
    ),
}


PIXEL_PRESETS: dict[str, dict[str, Any]] = {
    env_id.replace("-v0", "-Pixels-v0"): {**kwargs, "obs_mode": "pixels"}
    for env_id, kwargs in BOXWORLD_PRESETS.items()
}  # graphrl/BoxWorld-Small-Pixels-v0, ...: the same levels seen as RGB frames


class BoxWorld(gym.Env[np.ndarray, int]):
    """Box-World: collect keys and open boxes in the one order that leads to the gem.

    ## Description
    An ``n x n`` room inside a one-cell wall border (a ``(n + 2) x (n + 2)`` grid). A loose key
    is one coloured cell; a box is two horizontally adjacent cells, the **content on the left
    and the lock on the right** (as in the paper). The agent holds at most one key: walking
    onto a loose key picks it up (replacing a held key, which is lost; levels never offer a
    second loose key while one is held). Walking onto a lock while holding the key of its
    colour opens the box: the key is used up, the agent stands where the lock was, and the
    content becomes a loose key (one step left) or, for the gem, is collected at once.
    The solution path is a chain of ``goal_length`` boxes from the start key to the gem;
    ``num_distractors`` branches of ``distractor_length`` boxes hang off path keys and lead
    to dead ends. Levels are drawn with ``self.np_random`` only (see
    :mod:`graphrl.envs.boxworld_levels`), so ``reset(seed=s)`` is reproducible;
    ``reset(options={"level": level})`` plays a given :class:`Level` instead.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 down, 2 left, 3 right. Moving into a wall, a box content, a lock
    without its key, or a lock while holding another key leaves the state unchanged.

    ## Observation
    ``Box(0, 255, (n + 2, n + 2, 2), uint8)``, indexed ``[row, col, channel]``:

    - channel 0, colour id: 0 floor, 1 wall, 2 agent, 3 gem, ``4 + k`` key/lock colour ``k``;
    - channel 1, role: 0 floor, 1 wall, 2 agent, 3 loose key, 4 lock, 5 box content, 6 gem,
      7 held-key slot.

    The held key is drawn in the top-left border cell (its colour, or the wall colour when no
    key is held). The role channel adds nothing a local rule on the colours cannot read: a
    coloured cell with a coloured horizontal neighbour belongs to a box (left content, right
    lock), otherwise it is a loose key; which boxes are distractors is never shown.
    ``symbol_counts = (4 + num_colors, 8)`` gives the number of values per channel.

    With ``obs_mode="pixels"`` the observation is the paper's pixel form instead,
    ``Box(0, 255, (n + 2, n + 2, 3), uint8)``: one RGB pixel per cell (:data:`PALETTE`), the
    held key as the colour of the top-left pixel, as in the paper; the env then has no
    ``symbol_counts``. Every preset has a pixel twin, ``graphrl/BoxWorld-*-Pixels-v0``.

    ## Rewards
    +1 for each solution-path box opened, +10 more for the gem (its box is the last one on
    the path, so a solved level returns ``10 + goal_length``), -1 for opening a distractor box.

    ## Termination
    Terminated when the gem is collected (``info["solved"] = True``) or a distractor box is
    opened (the level can no longer be solved). Truncated after ``max_steps`` steps.
    ``info["solved"]`` is present after every ``reset`` and ``step``.

    ## Registered Configurations
    Each training preset has a harder zero-shot partner with the same room and colours, so
    ``symbol_counts`` and the observation shape match. The paper trains on 12x12 rooms with
    solution lengths up to 4, branch length 1 (or 3 in its harder set) and 20 colours, and
    tests zero-shot on longer paths; the ``12x12`` presets fix those largest values.

    | id (``graphrl/...``)        | n  | goal | distractors x length | colours | max_steps |
    |-----------------------------|----|------|----------------------|---------|-----------|
    | ``BoxWorld-Small-v0``       | 6  | 2    | 1 x 1                | 6       | 120       |
    | ``BoxWorld-Small-Hard-v0``  | 6  | 3    | 2 x 1                | 6       | 120       |
    | ``BoxWorld-Medium-v0``      | 8  | 3    | 2 x 1                | 20      | 120       |
    | ``BoxWorld-Medium-Hard-v0`` | 8  | 5    | 3 x 1                | 20      | 200       |
    | ``BoxWorld-12x12-v0``       | 12 | 4    | 4 x 1                | 20      | 120       |
    | ``BoxWorld-12x12-Hard-v0``  | 12 | 4    | 4 x 3                | 20      | 120       |
    | ``BoxWorld-12x12-Long-v0``  | 12 | 10   | 4 x 1                | 20      | 300       |

    ``Small`` is the smallest paper-shaped level, meant for short CPU runs; a uniform random
    policy solves 6% of its levels (0% of ``12x12``), so PPO sees the gem early. The scripted
    solver needs at most 23, 36, 40, 63, 62, 74 and 133 steps respectively over 100 seeds,
    well inside ``max_steps``.

    Args:
        n: Side of the room.
        goal_length: Boxes on the solution path (the last holds the gem).
        num_distractors: Distractor branches.
        distractor_length: Boxes per distractor branch.
        num_colors: Key colours drawn from, at most 26; ``None`` uses exactly the
            ``goal_length + num_distractors * distractor_length`` a level needs.
        max_steps: Steps before truncation.
        render_mode: ``"rgb_array"`` (``[(n + 2) * cell_px, (n + 2) * cell_px, 3]`` uint8),
            ``"ansi"`` (text) or ``None``.
        cell_px: Pixels per cell in ``rgb_array`` renders.
        color_ids: Relabel every level's key colours at random into this many ids (then
            ``symbol_counts = (4 + color_ids, 8)``): 26 at training shows the policy every id;
            at evaluation, the trained agent's count lets it play levels drawn from more
            colours. None: the generator's ``num_colors`` ids, no relabelling.

    ``goal_length``, ``num_distractors`` and ``distractor_length`` also take lists
    (``goal_length: [1, 2, 3]``): each episode then draws its sizes uniformly from them
        obs_mode: ``"symbols"`` (``[H, W, 2]`` colour id and role) or ``"pixels"``
            (``[H, W, 3]`` RGB, one pixel per cell).

    ``goal_length``, ``num_distractors`` and ``distractor_length`` also take lists
    (``goal_length: [1, 2, 3]``): each episode then draws its sizes uniformly from them
    (:class:`~graphrl.envs.boxworld_levels.LevelDistribution`).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 8}

    def __init__(
        self,
        n: int = 12,
        goal_length: int = 4,
        num_distractors: int = 4,
        distractor_length: int = 1,
        num_colors: int | None = None,
        max_steps: int = 120,
        render_mode: str | None = None,
        cell_px: int = 8,
        color_ids: int | None = None,
        obs_mode: str = "symbols",
    ) -> None:
        self.levels = LevelDistribution.build(
            n, goal_length, num_distractors, distractor_length, num_colors, color_ids
        )
        self.config = self.levels.configs[0]
        num_colors = self.levels.num_color_ids  # key-colour ids the observation may hold
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        if not isinstance(cell_px, int) or cell_px < 1:
            raise ValueError(f"cell_px must be an int >= 1, got {cell_px!r}")
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {', '.join(OBS_MODES)}, got {obs_mode!r}")
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.cell_px = cell_px
        self.obs_mode = obs_mode
        self._symbol_counts: tuple[int, int] = (FIRST_KEY_COLOR + num_colors, NUM_ROLES)
        side = n + 2
        depth = 2 if obs_mode == "symbols" else 3
        self.observation_space = spaces.Box(0, 255, shape=(side, side, depth), dtype=np.uint8)
        self.action_space = spaces.Discrete(4)
        self._obs: np.ndarray | None = None  # [n + 2, n + 2, 2], updated in place
        self._agent = (0, 0)
        self._held = -1  # colour id of the held key, -1 for none
        self._path_contents: frozenset[int] = frozenset()
        self._steps = 0
        self._over = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new level (drawn, or ``options["level"]``); returns ``(obs, info)``."""
        super().reset(seed=seed)
        level = (options or {}).get("level")
        if level is None:
            level = self.levels.sample(self.np_random)
        else:
            self._check_level(level)
        obs = np.empty((*level.colors.shape, 2), dtype=np.uint8)  # colour id, role
        obs[..., 0] = level.colors
        obs[(*level.agent, 0)] = AGENT
        obs[..., 1] = roles_from_colors(obs[..., 0])
        self._obs = obs
        self._agent = level.agent
        self._held = -1
        self._path_contents = level.path_contents
        self._steps = 0
        self._over = False
        return self._observation(), {"solved": False}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move one cell; returns ``(obs, reward, terminated, truncated, {"solved": bool})``."""
        obs = self._obs
        if obs is None or self._over:
            raise RuntimeError("the episode is over or not started: call reset() before step()")
        move = int(action)
        if not 0 <= move < 4:
            raise ValueError(f"action must be 0-3 ({', '.join(ACTION_NAMES)}), got {action!r}")
        row, col = self._agent
        drow, dcol = MOVES[move]
        row, col = row + drow, col + dcol
        role = obs[row, col, 1]
        reward, terminated, solved = 0.0, False, False
        if role == ROLE_FLOOR:
            self._move_agent(row, col)
        elif role == ROLE_KEY:
            self._hold(int(obs[row, col, 0]))
            self._move_agent(row, col)
        elif role == ROLE_LOCK and obs[row, col, 0] == self._held:
            content = int(obs[row, col - 1, 0])  # the box content, left of its lock
            self._hold(-1)
            self._move_agent(row, col)
            if content == GEM:
                obs[row, col - 1] = (FLOOR, ROLE_FLOOR)
                reward, terminated, solved = REWARD_BOX + REWARD_GEM, True, True
            else:
                obs[row, col - 1, 1] = ROLE_KEY
                if content in self._path_contents:
                    reward = REWARD_BOX
                else:
                    reward, terminated = REWARD_DISTRACTOR, True
        self._steps += 1
        truncated = not terminated and self._steps >= self.max_steps
        self._over = terminated or truncated
        return self._observation(), reward, terminated, truncated, {"solved": solved}

    @property
    def symbol_counts(self) -> tuple[int, int]:
        """Values per symbolic channel; absent (``AttributeError``) in pixel mode."""
        if self.obs_mode != "symbols":
            raise AttributeError("a pixel-mode BoxWorld has no symbol_counts")
        return self._symbol_counts

    @property
    def action_names(self) -> tuple[str, ...]:
        """One name per action index."""
        return ACTION_NAMES

    def draw_observation(self, obs: np.ndarray, cell_px: int = 1) -> np.ndarray:
        """An observation of this env as ``[H * cell_px, W * cell_px, 3]`` uint8 RGB."""
        obs = np.asarray(obs)
        if self.obs_mode == "symbols":
            return observation_to_rgb(obs, cell_px)
        return np.repeat(np.repeat(obs, cell_px, axis=-3), cell_px, axis=-2)

    def agent_cell(self, obs: np.ndarray) -> tuple[int, int] | None:
        """``(row, col)`` of the agent in ``obs`` ``[H, W, C]`` (None if it is not there)."""
        obs = np.asarray(obs)
        if self.obs_mode == "symbols":
            hits = np.argwhere(obs[..., 1] == ROLE_AGENT)
        else:
            hits = np.argwhere((obs == PALETTE[AGENT]).all(-1))
            hits = hits[(hits != HELD_SLOT).any(-1)]  # the held-key slot is never the agent
        return (int(hits[0][0]), int(hits[0][1])) if len(hits) else None

    def describe_observation(self, obs: np.ndarray) -> str:
        """The held key, read from the top-left slot of ``obs``: ``"held key: c"`` or ``none``."""
        obs = np.asarray(obs)
        if self.obs_mode == "symbols":
            color = int(obs[(*HELD_SLOT, 0)])
        else:
            color = int(np.flatnonzero((PALETTE == obs[HELD_SLOT]).all(-1))[0])
        return f"held key: {'none' if color == WALL else _LOWER[color]}"

    def _observation(self) -> np.ndarray:
        """The current state in this env's ``obs_mode`` (a copy)."""
        if self.obs_mode == "symbols":
            return self._obs.copy()
        return PALETTE[self._obs[..., 0]]

    def render(self) -> np.ndarray | str | None:
        """The current state as ``render_mode`` asks: RGB array, text, or ``None``."""
        if self._obs is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "rgb_array":
            return observation_to_rgb(self._obs, self.cell_px)
        if self.render_mode == "ansi":
            return f"{observation_to_ansi(self._obs)}\nstep {self._steps}/{self.max_steps}\n"
        return None

    def _move_agent(self, row: int, col: int) -> None:
        self._obs[self._agent] = (FLOOR, ROLE_FLOOR)
        self._obs[row, col] = (AGENT, ROLE_AGENT)
        self._agent = (row, col)

    def _hold(self, color: int) -> None:
        self._held = color
        self._obs[(*HELD_SLOT, 0)] = WALL if color < 0 else color

    def _check_level(self, level: Level) -> None:
        side = self.config.n + 2
        if not isinstance(level, Level):
            raise ValueError(f"options['level'] must be a Level, got {type(level).__name__}")
        if level.colors.shape != (side, side):
            raise ValueError(
                f"options['level'] has a {level.colors.shape} grid; this env needs ({side}, {side})"
            )
        if int(level.colors.max()) >= self._symbol_counts[0]:
            raise ValueError(
                f"options['level'] uses colour id {int(level.colors.max())} but this env has "
                f"{self._symbol_counts[0]} colour ids; raise num_colors"
            )
        if level.colors[level.agent] != FLOOR:
            raise ValueError(f"options['level'] puts the agent on a non-floor cell {level.agent}")


def observation_to_rgb(obs: np.ndarray, cell_px: int = 1) -> np.ndarray:
    """Paint Box-World observations as RGB pixels (the paper's pixel form at ``cell_px=1``).

    Args:
        obs: ``[..., H, W, 2]`` observation(s); only the colour channel is used.
        cell_px: Pixels per cell side.

    Returns:
        ``[..., H * cell_px, W * cell_px, 3]`` uint8: floor light grey, wall black, agent dark
        grey, gem white, each key colour its own hue.
    """
    obs = np.asarray(obs)
    if obs.ndim < 3 or obs.shape[-1] != 2 or obs.dtype.kind not in "ui":
        raise ValueError(
            f"obs must be an integer [..., H, W, 2] Box-World observation, got shape "
            f"{obs.shape} and dtype {obs.dtype}"
        )
    colors = obs[..., 0]
    if colors.size and int(colors.max()) >= len(PALETTE):
        raise ValueError(f"colour id {int(colors.max())} has no RGB; ids go up to {len(PALETTE)}")
    rgb = PALETTE[colors]
    if cell_px > 1:
        rgb = np.repeat(np.repeat(rgb, cell_px, axis=-3), cell_px, axis=-2)
    return rgb


def observation_to_ansi(obs: np.ndarray) -> str:
    """One character per cell: ``#`` wall, ``.`` floor, ``@`` agent, ``*`` gem, keys and box
    contents as lowercase letters (``a`` is colour id 4), locks as uppercase letters.

    Args:
        obs: ``[H, W, 2]`` observation.

    Returns:
        ``H`` lines of ``W`` characters.
    """
    colors, roles = obs[..., 0], obs[..., 1]
    chars = np.where(roles == ROLE_LOCK, _UPPER[colors], _LOWER[colors])
    return "\n".join("".join(row) for row in chars)
