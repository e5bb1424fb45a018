"""How an env's observations are drawn: the board, where the agent is, a caption.

An env (or one of its wrappers) that wants readable pictures defines any of

- ``draw_observation(obs, cell_px) -> [H * cell_px, W * cell_px, 3]`` uint8, one square of
  ``cell_px`` pixels per observation cell, so attention over cells lines up with the board;
- ``agent_cell(obs) -> (row, col) | None``, the agent's cell in ``obs``;
- ``describe_observation(obs) -> str``, what the board does not show plainly (a held key);
- ``action_names``, one name per discrete action.

:class:`ObservationDrawer` reads them through ``env.get_wrapper_attr`` once, so renderers call
one object whatever the env, and envs without them still get a plain picture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["ObservationDrawer"]


def _wrapper_attr(env: gym.Env, name: str) -> Any:
    try:
        return env.get_wrapper_attr(name)
    except AttributeError:
        return None


class ObservationDrawer:
    """Draws observations of one env with the env's own drawing methods.

    Args:
        env: The env (wrapped or not); only its drawing attributes are read.
    """

    def __init__(self, env: gym.Env) -> None:
        self._draw: Callable[[np.ndarray, int], np.ndarray] | None = _wrapper_attr(
            env, "draw_observation"
        )
        self._agent: Callable[[np.ndarray], tuple[int, int] | None] | None = _wrapper_attr(
            env, "agent_cell"
        )
        self._describe: Callable[[np.ndarray], str] | None = _wrapper_attr(
            env, "describe_observation"
        )
        self.action_names: tuple[str, ...] | None = _wrapper_attr(env, "action_names")

    def draw(self, obs: np.ndarray, cell_px: int) -> np.ndarray:
        """``obs`` -> ``[H * cell_px, W * cell_px, 3]`` uint8.

        Envs without ``draw_observation`` get their frame drawn as it is when it is an RGB
        ``[H, W, 3]`` array, else a grey picture of channel 0.
        """
        if self._draw is not None:
            return self._draw(obs, cell_px)
        obs = np.asarray(obs)
        if obs.ndim == 3 and obs.shape[-1] == 3 and obs.dtype == np.uint8:
            rgb = obs
        else:
            grid = obs.reshape(obs.shape[0], -1) if obs.ndim != 3 else obs[..., 0]
            grid = grid.astype(np.float64)
            span = max(float(grid.max() - grid.min()), 1e-8)
            grey = (40 + 200 * (grid - grid.min()) / span).astype(np.uint8)
            rgb = np.repeat(grey[..., None], 3, axis=-1)
        return np.repeat(np.repeat(rgb, cell_px, axis=0), cell_px, axis=1)

    def agent_cell(self, obs: np.ndarray) -> tuple[int, int] | None:
        """The agent's ``(row, col)`` in ``obs``, or None when the env does not say."""
        return None if self._agent is None else self._agent(obs)

    def describe(self, obs: np.ndarray) -> str:
        """The env's caption of ``obs`` (empty when it has none)."""
        return "" if self._describe is None else self._describe(obs)

    def action_name(self, action: Any) -> str:
        """The action's name, or its index when the env names none; a vector action (``Box``,
        ``MultiDiscrete``) as its values."""
        if not isinstance(action, (int, np.integer)):
            return np.array2string(np.asarray(action), precision=2, separator=", ")
        names = self.action_names
        return names[action] if names is not None and 0 <= action < len(names) else str(action)
