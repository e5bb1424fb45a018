"""Point at the entity nearest to the agent: a set of up to ``N`` entities, ``Discrete(N)``."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class NearestEnv(gym.Env):
    """Entities scattered in the unit square around the agent at the centre; pick the nearest.

    Observation ``Box(N, 3)``: rows ``[presence, x, y]`` relative to the agent, absent rows all
    zero (highway-env's layout). Action: the slot of an entity. Reward 1 if it is the nearest
    present entity; every step shows a new scene; ``length`` steps per episode;
    ``info["solved"]`` when every pick was right. Which entity is nearest depends on all the
    others, so the policy must compare entities (relations), not score each alone.

    Args:
        max_entities: Entity slots ``N``.
        min_entities: Fewest present entities.
        length: Steps per episode.
    """

    def __init__(self, max_entities: int = 8, min_entities: int = 3, length: int = 8) -> None:
        self.max_entities, self.min_entities, self.length = max_entities, min_entities, length
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (max_entities, 3), np.float32)
        self.action_space = gym.spaces.Discrete(max_entities)

    def _scene(self) -> np.ndarray:
        count = int(self.np_random.integers(self.min_entities, self.max_entities + 1))
        slots = self.np_random.choice(self.max_entities, count, replace=False)
        rows = np.zeros((self.max_entities, 3), np.float32)
        rows[slots, 0] = 1.0
        rows[slots, 1:] = self.np_random.uniform(-1.0, 1.0, (count, 2))
        distance = np.where(rows[:, 0] > 0, np.linalg.norm(rows[:, 1:], axis=1), np.inf)
        self.nearest = int(distance.argmin())
        return rows

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.steps, self.hits = 0, 0
        return self._scene(), {}

    def step(self, action: int):
        hit = int(action) == self.nearest
        self.steps, self.hits = self.steps + 1, self.hits + hit
        done = self.steps >= self.length
        info = {"solved": self.hits == self.length} if done else {}
        return self._scene(), float(hit), done, False, info
