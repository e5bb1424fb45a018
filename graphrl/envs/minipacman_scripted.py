"""A scripted Mini Pac-Man player: greedy shortest paths to the mode's targets, around the ghosts.

The player reads the whole game state (:class:`~graphrl.envs.minipacman.PacmanState`), not
the observation, so it plays the full and the viewport presets alike; it is a reference for
returns, not an agent under test. Each step it

1. calls a ghost a *threat* unless Pac-Man is powered for more than two more steps, and
   *prey* when he is powered and can reach it by maze distance before the power runs out;
2. marks as dangerous every cell a threat can reach within one move;
3. prefers, among the moves whose cell is not dangerous, those that leave him *room*: at
   least 10 cells he reaches before every threat does (or the most such cells);
4. among those takes the move with the shortest path that avoids dangerous cells to the
   nearest target: prey first, then the mode's objective (food for ``regular``, power pills
   for ``hunt``, ``ambush`` and ``rush``, nothing for ``avoid``); ties and target-less steps
   go to cells at least 4 moves from every threat, then in ``avoid`` to cells without food
   or pills (eating costs reward there), then farthest from the threats;
5. when every move is dangerous, it takes the one with the most room.
"""

from __future__ import annotations

import functools
from collections import deque

import numpy as np

from graphrl.envs.minipacman import (
    ACTION_NAMES,
    CORRIDOR,
    CORRIDOR_CELLS,
    NEXT_CELL,
    REWARD_MODES,
    WIDTH,
    PacmanState,
)

__all__ = ["ScriptedPacman", "maze_distances"]

_FAR = 10_000  # distance of unreachable cells
_ROOM_ENOUGH = 10  # cells Pac-Man reaches before every threat that count as room to escape
_SAFE_ENOUGH = 4  # farther from every threat than this counts as safe when breaking ties
_THREAT_POWER = 2  # a powered Pac-Man still fears ghosts this many steps before power ends


def _flat(cell: tuple[int, int] | np.ndarray) -> int:
    return int(cell[0]) * WIDTH + int(cell[1])


@functools.lru_cache(maxsize=1)
def _neighbours() -> tuple[tuple[int, ...], ...]:
    """For each flat cell id, the flat ids of the corridor cells one move away."""
    table: list[tuple[int, ...]] = [() for _ in range(CORRIDOR.size)]
    for row, col in CORRIDOR_CELLS:
        around = {_flat(NEXT_CELL[row, col, a]) for a in range(1, len(ACTION_NAMES))}
        around.discard(_flat((row, col)))
        table[_flat((row, col))] = tuple(sorted(around))
    return tuple(table)


def _bfs(sources: list[int], blocked: np.ndarray | None = None) -> np.ndarray:
    """``[H * W]`` maze distance from the nearest source (``_FAR`` where unreachable), never
    entering ``blocked`` cells (flat bool mask); blocked sources are dropped."""
    neighbours = _neighbours()
    if blocked is not None:
        sources = [s for s in sources if not blocked[s]]
    dist = np.full(CORRIDOR.size, _FAR, dtype=np.int64)
    queue = deque(sources)
    dist[sources] = 0
    while queue:
        cell = queue.popleft()
        for nxt in neighbours[cell]:
            if dist[nxt] == _FAR and (blocked is None or not blocked[nxt]):
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return dist


@functools.lru_cache(maxsize=1)
def maze_distances() -> np.ndarray:
    """``[H * W, H * W]`` shortest-path lengths between cells by flat id ``row * W + col``
    (``10000`` where either cell is a wall). Built once, read only."""
    table = np.full((CORRIDOR.size, CORRIDOR.size), _FAR, dtype=np.int64)
    for row, col in CORRIDOR_CELLS:
        table[_flat((row, col))] = _bfs([_flat((row, col))])
    table.setflags(write=False)
    return table


class ScriptedPacman:
    """The greedy player described in the module docstring.

    Args:
        mode: The env's reward mode (decides the targets), one of ``REWARD_MODES``.
    """

    def __init__(self, mode: str = "regular") -> None:
        if mode not in REWARD_MODES:
            raise ValueError(f"mode must be one of {', '.join(REWARD_MODES)}, got {mode!r}")
        self.mode = mode

    def act(self, state: PacmanState) -> int:
        """The action (0-4) for ``state``."""
        dist = maze_distances()
        pacman = _flat(state.pacman)
        ghosts = [_flat(g) for g in state.ghosts]
        powered = state.power > _THREAT_POWER
        threats = [] if powered else ghosts
        prey = [g for g in ghosts if state.power and dist[pacman, g] < state.power]
        danger = np.zeros(CORRIDOR.size, dtype=bool)
        for ghost in threats:
            danger |= dist[ghost] <= 1
        targets = prey or self._objective(state)
        to_target = _bfs(targets, blocked=danger) if targets else None
        safety = dist[threats].min(axis=0) if threats else np.full(CORRIDOR.size, _FAR)
        corridor = CORRIDOR.reshape(-1)
        avoid_items = (state.food | state.pills).reshape(-1) if self.mode == "avoid" else None
        best, best_key = 0, None
        for action in range(len(ACTION_NAMES)):
            cell = _flat(NEXT_CELL[state.pacman][action])
            room = int(((dist[cell] < safety) & corridor).sum())  # cells he reaches first
            key = (
                bool(danger[cell]),
                -min(room, _ROOM_ENOUGH),
                int(to_target[cell]) if to_target is not None else 0,
                -int(min(safety[cell], _SAFE_ENOUGH)),
                bool(avoid_items[cell]) if avoid_items is not None else False,
                -int(safety[cell]),
            )
            if best_key is None or key < best_key:
                best, best_key = action, key
        return best

    def _objective(self, state: PacmanState) -> list[int]:
        """Flat ids of the cells the mode wants eaten (besides prey)."""
        if self.mode == "regular":
            grid = state.food
        elif self.mode in ("hunt", "ambush", "rush"):
            grid = state.pills
        else:
            return []
        return [int(i) for i in np.flatnonzero(grid.reshape(-1))]
