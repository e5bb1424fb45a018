"""A user's env in the user's own module: importing it registers ``UserCoin-v0``.

Tests name it ``user_env:UserCoin-v0`` (gymnasium's ``module:EnvId`` form), so nothing imports
it before ``make_env`` does.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class UserCoin(gym.Env):
    """Observation: one random symbol in a ``(1, 3, 1)`` grid; reward 1 for naming its cell."""

    def __init__(self, max_steps: int = 5) -> None:
        self.max_steps = max_steps
        self.observation_space = gym.spaces.Box(0, 1, (1, 3, 1), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def _obs(self) -> np.ndarray:
        grid = np.zeros((1, 3, 1), np.uint8)
        grid[0, self.coin, 0] = 1
        return grid

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.coin, self.steps = int(self.np_random.integers(3)), 0
        return self._obs(), {}

    def step(self, action: int):
        reward = float(action == self.coin)
        self.coin, self.steps = int(self.np_random.integers(3)), self.steps + 1
        return self._obs(), reward, False, self.steps >= self.max_steps, {}


if "UserCoin-v0" not in gym.registry:
    gym.register("UserCoin-v0", entry_point=UserCoin)
