"""How an env's observations are drawn: the board or the entities, where the agent is, a
caption.

Observations come in three layouts: a **board** (``[H, W, C]`` symbol grids and RGB frames), a
set of **entities** (``Box(N, F)`` rows, the entity set of a ``Dict``, the nodes of a
``Graph``: drawn as points) and a flat **vector** (``Box(F,)``: drawn as bars). An env (or one
of its wrappers) that wants readable pictures defines any of

- ``draw_observation(obs, cell_px) -> [H * cell_px, W * cell_px, 3]`` uint8, one square of
  ``cell_px`` pixels per observation cell, so attention over cells lines up with the board;
- ``agent_cell(obs) -> (row, col) | None``, the agent's cell in ``obs`` (boards);
- ``entity_positions(obs) -> [N, 2]``, where to draw each entity (default: its first two
  features; a graph's nodes on a circle); ``agent_entity(obs) -> int | None``, the agent's own
  entity (entities); ``entities_key``, the ``Dict`` key of the entity set;
- ``describe_observation(obs) -> str``, what the picture does not show plainly (a held key;
  default for ``Dict`` observations: their global features);
- ``action_names``, one name per discrete action.

:class:`ObservationDrawer` reads them through ``env.get_wrapper_attr`` once, so renderers call
one object whatever the env, and envs without them still get a plain picture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np

__all__ = ["EntityView", "ObservationDrawer"]

Layout = Literal["board", "entities", "vector"]


@dataclass
class EntityView:
    """The entities of one observation, placed for a picture.

    Attributes:
        points: ``[n, 2]`` float, each entity's ``(x, y)``.
        present: ``[n]`` bool, entities that exist (all-zero rows of a set are absent).
        edges: ``[m, 2]`` int ``(source, target)``: a ``Graph`` observation's own edges, else
            None.
        agent: The agent's own entity, if the env says which.
        axes: ``(x label, y label)``.
        kind: ``"entity set"`` or ``"graph"``.
    """

    points: np.ndarray
    present: np.ndarray
    edges: np.ndarray | None
    agent: int | None
    axes: tuple[str, str]
    kind: str


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
        self._positions: Callable[[Any], np.ndarray] | None = _wrapper_attr(env, "entity_positions")
        self._agent_entity: Callable[[Any], int | None] | None = _wrapper_attr(env, "agent_entity")
        self.entities_key: str | None = _wrapper_attr(env, "entities_key")

    def layout(self, obs: Any) -> Layout:
        """How ``obs`` is drawn: ``board`` (``[H, W, C]``), ``entities`` (``[N, F]``, a
        ``Dict`` holding an entity set, a ``Graph``) or ``vector`` (``[F]``)."""
        if isinstance(obs, (dict, gym.spaces.GraphInstance)):
            return "entities"
        ndim = np.ndim(obs)
        return "board" if ndim == 3 else "entities" if ndim == 2 else "vector"

    def _entity_rows(self, obs: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(rows [N, F], globals)`` of a set or ``Dict`` observation."""
        if not isinstance(obs, dict):
            return np.asarray(obs, dtype=np.float64), {}
        key = self.entities_key
        if key is None:
            key = next((k for k, v in obs.items() if np.ndim(v) == 2), None)
        if key is None:
            raise ValueError(f"Dict observation has no entity set [N, F] (keys {list(obs)})")
        rest = {k: np.asarray(v) for k, v in obs.items() if k != key}
        return np.asarray(obs[key], dtype=np.float64), rest

    def entities(self, obs: Any) -> EntityView:
        """The entities of ``obs`` (see :class:`EntityView`); positions as the env declares
        them, else the first two features (a feature against the entity index for one
        feature), a graph's nodes on a circle."""
        agent = None if self._agent_entity is None else self._agent_entity(obs)
        if isinstance(obs, gym.spaces.GraphInstance):
            rows = np.asarray(obs.nodes, dtype=np.float64).reshape(len(obs.nodes), -1)
            edges = np.asarray(obs.edge_links, dtype=np.int64).reshape(-1, 2)
            present, kind = np.ones(len(rows), dtype=bool), "graph"
            angle = 2 * np.pi * np.arange(len(rows)) / max(len(rows), 1)
            points = np.stack([np.cos(angle), np.sin(angle)], 1)
            axes = ("", "")
        else:
            rows, _ = self._entity_rows(obs)
            edges, kind = None, "entity set"
            present = (rows != 0).any(-1)
            if rows.shape[1] >= 2:
                points, axes = rows[:, :2], ("feature 0", "feature 1")
            else:
                points = np.stack([np.arange(len(rows)), rows[:, 0]], 1)
                axes = ("entity", "feature 0")
        if self._positions is not None:
            points, axes = np.asarray(self._positions(obs), dtype=np.float64), ("x", "y")
        return EntityView(points.astype(np.float64), present, edges, agent, axes, kind)

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

    def describe(self, obs: Any) -> str:
        """The env's caption of ``obs``; without one, a ``Dict``'s global features, else
        empty."""
        if self._describe is not None:
            return self._describe(obs)
        if isinstance(obs, dict):
            _, rest = self._entity_rows(obs)
            return "  ".join(
                f"{k} {np.array2string(v, precision=2, separator=' ')}" for k, v in rest.items()
            )
        return ""

    def action_name(self, action: Any) -> str:
        """The action's name, or its index when the env names none; a vector action (``Box``,
        ``MultiDiscrete``) as its values."""
        if not isinstance(action, (int, np.integer)):
            return np.array2string(np.asarray(action), precision=2, separator=", ")
        names = self.action_names
        return names[action] if names is not None and 0 <= action < len(names) else str(action)
