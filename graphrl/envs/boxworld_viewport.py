"""Partially observable Box-World: an egocentric ``v x v`` window plus a held-key row.

Santoro et al. (2018) train memory agents on Box-World seen through a 5x5 egocentric viewport.
The agent sits at the centre of the window; cells outside the level read as wall. A row is
appended under the window whose first cell always shows the held key (its colour with the
held-slot role, or the wall colour when no key is held), so what the agent carries is never
out of sight, only the board is.
"""

from __future__ import annotations

import numpy as np

from graphrl.envs.boxworld_levels import HELD_SLOT, ROLE_WALL, WALL

__all__ = ["egocentric_view", "viewport_shape"]


def viewport_shape(size: int) -> tuple[int, int, int]:
    """Observation shape of a ``size`` viewport: ``(size + 1, size, 2)``."""
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"viewport must be an odd int >= 1 (e.g. 5), got {size!r}")
    return size + 1, size, 2


def egocentric_view(obs: np.ndarray, agent: tuple[int, int], size: int) -> np.ndarray:
    """Crop the full observation around the agent and add the held-key row.

    Args:
        obs: ``[H, W, 2]`` full Box-World observation (colour, role).
        agent: ``(row, col)`` of the agent.
        size: Odd window side ``v``.

    Returns:
        ``[v + 1, v, 2]`` uint8: rows ``0 .. v-1`` the window (agent at ``(v // 2, v // 2)``),
        row ``v`` the held-key slot at column 0, wall elsewhere.
    """
    half = size // 2
    view = np.empty(viewport_shape(size), dtype=np.uint8)
    view[..., 0], view[..., 1] = WALL, ROLE_WALL
    h, w = obs.shape[:2]
    row, col = agent
    top, left = row - half, col - half
    r0, r1 = max(top, 0), min(top + size, h)
    c0, c1 = max(left, 0), min(left + size, w)
    view[r0 - top : r1 - top, c0 - left : c1 - left] = obs[r0:r1, c0:c1]
    view[size, 0] = obs[HELD_SLOT]
    return view
