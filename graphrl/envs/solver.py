"""A scripted Box-World solver that plays from the observation alone.

It reads keys and boxes from the observation, finds the chain of boxes from the key it can
get to the gem (depth-first over the colour graph: a box with lock ``a`` and content ``b`` is
an edge ``a -> b``), then walks a shortest path (breadth-first over floor cells) to the next
key or lock. Each subgoal (take the key, open the lock, take what it held) is forced, so
replanning every step gives a shortest solution. Tests use it to prove that generated levels
are solvable; it also gives the optimal episode length of a level.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from graphrl.envs.boxworld import MOVES
from graphrl.envs.boxworld_levels import (
    GEM,
    HELD_SLOT,
    ROLE_AGENT,
    ROLE_CONTENT,
    ROLE_FLOOR,
    ROLE_GEM,
    ROLE_KEY,
    ROLE_LOCK,
    WALL,
)

Cell = tuple[int, int]


class UnsolvableError(ValueError):
    """The observation shows no way to the gem (a distractor was opened, or a bad level)."""


@dataclass(frozen=True)
class SolverResult:
    """Outcome of one scripted episode.

    Args:
        total_reward: Sum of rewards.
        steps: Steps taken.
        solved: Whether the gem was collected.
    """

    total_reward: float
    steps: int
    solved: bool


def _chain_to_gem(key: int, locks: dict[int, list[tuple[Cell, int]]]) -> list[Cell] | None:
    """Lock cells to open, in order, to go from holding ``key`` to the gem; ``None`` if none."""
    for lock_cell, content in locks.get(key, ()):
        if content == GEM:
            return [lock_cell]
        rest = _chain_to_gem(content, locks)
        if rest is not None:
            return [lock_cell, *rest]
    return None


def _first_step(roles: np.ndarray, start: Cell, goal: Cell) -> int:
    """The first action of a shortest walk over floor cells from ``start`` onto ``goal``."""
    first: dict[Cell, int] = {start: -1}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for action, (drow, dcol) in enumerate(MOVES):
            nxt = (cell[0] + drow, cell[1] + dcol)
            if nxt in first:
                continue
            step = action if first[cell] < 0 else first[cell]
            if nxt == goal:
                return step
            if roles[nxt] == ROLE_FLOOR:
                first[nxt] = step
                queue.append(nxt)
    raise UnsolvableError(f"cell {goal} cannot be reached from {start}")


def solver_action(obs: np.ndarray) -> int:
    """The next action of a shortest solution from this observation.

    Args:
        obs: ``[H, W, 2]`` Box-World observation.

    Returns:
        An action in ``[0, 4)``.

    Raises:
        UnsolvableError: No key chain reaches the gem, or a needed cell is walled in.
    """
    colors, roles = obs[..., 0], obs[..., 1]
    agent = np.argwhere(roles == ROLE_AGENT)
    if len(agent) != 1:
        raise UnsolvableError(f"expected one agent cell, found {len(agent)}")
    start = (int(agent[0, 0]), int(agent[0, 1]))
    locks: dict[int, list[tuple[Cell, int]]] = {}
    for row, col in np.argwhere(roles == ROLE_LOCK):
        content_role = roles[row, col - 1]
        if content_role not in (ROLE_CONTENT, ROLE_GEM):
            raise UnsolvableError(f"lock at {(row, col)} has no content on its left")
        content = int(colors[row, col - 1])
        locks.setdefault(int(colors[row, col]), []).append(((int(row), int(col)), content))
    held = int(colors[HELD_SLOT])
    if held != WALL:
        chain = _chain_to_gem(held, locks)
        if chain is not None:
            return _first_step(roles, start, chain[0])
    for row, col in np.argwhere(roles == ROLE_KEY):
        if _chain_to_gem(int(colors[row, col]), locks) is not None:
            return _first_step(roles, start, (int(row), int(col)))
    raise UnsolvableError("no key in reach opens a chain of boxes that ends at the gem")


def run_solver(env: gym.Env, seed: int | None = None) -> SolverResult:
    """Reset ``env`` with ``seed`` and play :func:`solver_action` until the episode ends.

    Args:
        env: A Box-World env (wrappers that keep the observation are fine).
        seed: Seed for ``env.reset``.

    Returns:
        The episode's total reward, length and outcome.
    """
    obs, info = env.reset(seed=seed)
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, info = env.step(solver_action(obs))
        total += float(reward)
        steps += 1
        if terminated or truncated:
            return SolverResult(total_reward=total, steps=steps, solved=bool(info["solved"]))
