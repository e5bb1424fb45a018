"""MiniGrid adapters: one symbolic uint8 array per observation, ``info["solved"]``, fewer actions.

MiniGrid observations are dicts (``image`` ``[x, y, 3]``, ``direction``, ``mission``). The graph
encoders take one ``[H, W, C]`` array of small integers, as Box-World gives, so
:class:`MiniGridSymbolicObs` transposes the image to ``[row, col]`` (row = y, as drawn) and
appends the agent's direction as a fourth channel.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
import numpy as np
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, COLORS, IDX_TO_COLOR, OBJECT_TO_IDX, STATE_TO_IDX

NUM_MINIGRID_ACTIONS = 7  # left, right, forward, pickup, drop, toggle, done
# The full-grid view stores the agent's direction (0-3) in the state channel of its cell.
NUM_STATES = max(len(STATE_TO_IDX), 4)
NUM_DIRECTIONS = 4
_AGENT, _RED = OBJECT_TO_IDX["agent"], COLOR_TO_IDX["red"]
ACTION_NAMES = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
DIRECTION_NAMES = ("right", "down", "left", "up")
_DARK = {OBJECT_TO_IDX["unseen"], OBJECT_TO_IDX["empty"]}


class MiniGridSymbolicObs(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """MiniGrid dict observations as one ``[H, W, 4]`` uint8 array.

    Channels: object id (``OBJECT_TO_IDX``), colour id (``COLOR_TO_IDX``), state (door
    open/closed/locked; in the full-grid view, the agent's direction on its own cell) and the
    agent's direction (0 right, 1 down, 2 left, 3 up) broadcast over every cell. The mission
    string is dropped. ``symbol_counts`` gives the number of values per channel.

    Args:
        env: A MiniGrid env whose observation is a dict with ``image`` ``[W, H, 3]`` (MiniGrid
            indexes ``[x, y]``) and ``direction``.
        fully_observable: Encode the whole grid, as ``minigrid.wrappers.FullyObsWrapper``
            does, instead of the agent's view.

    Shapes:
        observation: ``[H, W, 4]`` uint8, indexed ``[row, col, channel]`` with row = y as
        drawn; ``7 x 7`` for the default agent view, ``height x width`` for the full grid.
    """

    def __init__(self, env: gym.Env, fully_observable: bool = False) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, fully_observable=fully_observable)
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict) or not {"image", "direction"} <= set(space.spaces):
            raise ValueError(
                f"MiniGridSymbolicObs needs a MiniGrid dict observation with 'image' and "
                f"'direction', got {space}"
            )
        self.fully_observable = fully_observable
        if fully_observable:
            width, height = env.unwrapped.width, env.unwrapped.height
        else:
            width, height = space["image"].shape[:2]
        self.observation_space = spaces.Box(0, 255, shape=(height, width, 4), dtype=np.uint8)
        self.symbol_counts: tuple[int, int, int, int] = (
            len(OBJECT_TO_IDX),
            len(COLOR_TO_IDX),
            NUM_STATES,
            NUM_DIRECTIONS,
        )

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        """``{"image": [W, H, 3], "direction": int}`` -> ``[H, W, 4]`` uint8."""
        if self.fully_observable:
            base = self.env.unwrapped
            image = base.grid.encode()
            image[tuple(base.agent_pos)] = (_AGENT, _RED, base.agent_dir)
        else:
            image = observation["image"]
        out = np.empty(self.observation_space.shape, dtype=np.uint8)
        out[..., :3] = image.transpose(1, 0, 2)
        out[..., 3] = observation["direction"]
        return out

    @property
    def action_names(self) -> tuple[str, ...]:
        """Names of the actions kept, in index order."""
        return ACTION_NAMES[: int(self.action_space.n)]

    def draw_observation(self, obs: np.ndarray, cell_px: int = 1) -> np.ndarray:
        """``[H, W, 4]`` symbols -> ``[H * cell_px, W * cell_px, 3]`` uint8: each object in its
        MiniGrid colour, walls grey, unseen and empty cells dark, the agent's cell white.
        From 6 pixels a cell, balls are drawn as discs and keys as a ring on a shaft, so a key
        and a ball of one colour (MiniGrid-Memory's cue and choices) look different."""
        obs = np.asarray(obs)
        palette = np.array([COLORS[IDX_TO_COLOR[i]] for i in range(len(IDX_TO_COLOR))])
        rgb = palette[obs[..., 1].astype(np.int64) % len(palette)].astype(np.uint8)
        rgb[np.isin(obs[..., 0], list(_DARK))] = 40
        rgb[obs[..., 0] == OBJECT_TO_IDX["wall"]] = 110
        cell = self.agent_cell(obs)
        if cell is not None:
            rgb[cell] = 255
        image = np.repeat(np.repeat(rgb, cell_px, axis=0), cell_px, axis=1)
        if cell_px >= 6:
            for name, glyph in _glyphs(cell_px).items():
                for row, col in np.argwhere(obs[..., 0] == OBJECT_TO_IDX[name]):
                    if (int(row), int(col)) != cell:
                        top, left = row * cell_px, col * cell_px
                        square = image[top : top + cell_px, left : left + cell_px]  # a view
                        square[~glyph] = 40
        return image

    def agent_cell(self, obs: np.ndarray) -> tuple[int, int] | None:
        """``(row, col)`` of the agent: its cell in the full grid, or the bottom centre of the
        egocentric view (where MiniGrid puts the agent, facing up)."""
        h, w = np.asarray(obs).shape[:2]
        if not self.fully_observable:
            return (h - 1, w // 2)
        hits = np.argwhere(np.asarray(obs)[..., 0] == _AGENT)
        return (int(hits[0][0]), int(hits[0][1])) if len(hits) else None

    def describe_observation(self, obs: np.ndarray) -> str:
        """The agent's heading, e.g. ``"facing: up"``."""
        return f"facing: {DIRECTION_NAMES[int(np.asarray(obs)[0, 0, 3]) % 4]}"


@functools.lru_cache(maxsize=8)
def _glyphs(cell_px: int) -> dict[str, np.ndarray]:
    """``[cell_px, cell_px]`` bool masks of the shapes drawn for balls and keys (built once
    per cell size; read only)."""
    centre = (cell_px - 1) / 2
    y, x = np.mgrid[0:cell_px, 0:cell_px]
    ball = (y - centre) ** 2 + (x - centre) ** 2 <= (0.4 * cell_px) ** 2
    ring_y = 0.3 * cell_px  # the key's bow near the top, its shaft down the middle
    ring = np.hypot(y - ring_y, x - centre)
    bow = (ring <= 0.25 * cell_px) & (ring >= 0.1 * cell_px)
    shaft = (np.abs(x - centre) <= max(cell_px * 0.08, 0.5)) & (y >= ring_y) & (y <= 0.9 * cell_px)
    tooth = (
        (y >= 0.75 * cell_px)
        & (y <= 0.85 * cell_px)
        & (x >= centre)
        & (x <= centre + 0.2 * cell_px)
    )
    return {"ball": ball, "key": bow | shaft | tooth}


class MiniGridSolvedInfo(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds ``info["solved"]``: terminated with a positive reward (MiniGrid's success)."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the inner env; ``info["solved"]`` is ``False``."""
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, {**info, "solved": False}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the inner env and mark success."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return (
            obs,
            reward,
            terminated,
            truncated,
            {**info, "solved": bool(terminated and reward > 0)},
        )


class MiniGridActions(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Keep only MiniGrid's first ``num_actions`` actions (left, right, forward, pickup, drop,
    toggle, done), e.g. 3 for navigation tasks, 6 for DoorKey.

    Args:
        env: A MiniGrid env.
        num_actions: Actions kept, in ``[1, 7]``.
    """

    def __init__(self, env: gym.Env, num_actions: int) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, num_actions=num_actions)
        gym.ActionWrapper.__init__(self, env)
        if not isinstance(num_actions, int) or not 1 <= num_actions <= NUM_MINIGRID_ACTIONS:
            raise ValueError(
                f"max_actions must be an int in [1, {NUM_MINIGRID_ACTIONS}], got {num_actions!r}"
            )
        self.action_space = spaces.Discrete(num_actions)

    def action(self, action: Any) -> int:
        """The kept actions are MiniGrid's first ones: the index passes through."""
        index = int(action)
        if not 0 <= index < self.action_space.n:
            raise ValueError(f"action must be in [0, {self.action_space.n}), got {action!r}")
        return index


def minigrid_ids() -> list[str]:
    """Every registered ``MiniGrid-*`` id, sorted."""
    return sorted(env_id for env_id in gym.registry if env_id.startswith("MiniGrid-"))


def make_minigrid(
    env_id: str,
    fully_observable: bool = False,
    max_actions: int | None = None,
    **kwargs: Any,
) -> gym.Env:
    """Make a ``MiniGrid-*`` env with a symbolic ``[H, W, 4]`` observation and ``info["solved"]``.

    Args:
        env_id: A registered ``MiniGrid-*`` id.
        fully_observable: Observe the whole grid instead of the ``7 x 7`` agent view.
        max_actions: Keep only the first ``max_actions`` actions; ``None`` keeps all 7.
        **kwargs: Passed to ``gymnasium.make`` (``render_mode``, ``max_steps``, ...).

    Returns:
        The wrapped env; ``env.symbol_counts`` is set.
    """
    if env_id not in gym.registry:
        known = minigrid_ids()
        raise ValueError(
            f"unknown MiniGrid id {env_id!r}; {len(known)} are registered, e.g. "
            f"{', '.join(known[:6])}"
        )
    env = MiniGridSolvedInfo(gym.make(env_id, **kwargs))
    if max_actions is not None:
        env = MiniGridActions(env, max_actions)
    return MiniGridSymbolicObs(env, fully_observable=fully_observable)
