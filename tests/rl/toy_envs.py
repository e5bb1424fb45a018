"""Tiny deterministic gymnasium envs for the RL tests, registered on import.

Use them by id with the module prefix (``"toy_envs:Corridor-v0"``): ``gymnasium.make`` imports
this module first, which also works in spawned DDP / async-vector-env worker processes.
Observations follow the project's convention: uint8 ``(H, W, C)`` grids of integer symbols.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn


class Corridor(gym.Env):
    """A 1 x ``length`` corridor with the goal at a random end and the agent on a random cell.

    Actions: 0 = left, 1 = right, so the best action depends on the observation. Reward 1 on
    reaching the goal (terminated, solved); truncated after ``max_steps`` steps (not solved).
    Optimal length: the distance to the goal. Observation ``(1, length, 1)``: 0 empty,
    1 agent, 2 goal.
    """

    def __init__(self, length: int = 6, max_steps: int = 30) -> None:
        self.length = length
        self.max_steps = max_steps
        self.observation_space = gym.spaces.Box(0, 2, (1, length, 1), np.uint8)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        grid = np.zeros((1, self.length, 1), np.uint8)
        grid[0, self.goal, 0] = 2
        grid[0, self.pos, 0] = 1
        return grid

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.goal = int(self.np_random.choice([0, self.length - 1]))
        self.pos = int(self.np_random.integers(1, self.length - 1))
        self.steps = 0
        return self._obs(), {}

    def step(self, action: int):
        self.steps += 1
        self.pos = int(np.clip(self.pos + (1 if action == 1 else -1), 0, self.length - 1))
        solved = self.pos == self.goal
        truncated = not solved and self.steps >= self.max_steps
        info = {"solved": solved} if solved or truncated else {}
        return self._obs(), float(solved), solved, truncated, info


class Countdown(gym.Env):
    """Episodes of exactly ``length`` steps whose rewards are 1, 2, ..., ``length``.

    Ends by termination, or by truncation when ``truncate`` is set, so the return of every
    episode is ``length * (length + 1) / 2 * reward_scale``. Observation ``(1, 1, 2)``:
    ``[steps taken, length]``. Actions are ignored. ``info["solved"]`` is reported on
    termination only.
    """

    def __init__(self, length: int = 3, truncate: bool = False, reward_scale: float = 1.0):
        self.length = length
        self.truncate = truncate
        self.reward_scale = reward_scale
        self.observation_space = gym.spaces.Box(0, 255, (1, 1, 2), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def _obs(self) -> np.ndarray:
        return np.array([[[self.steps, self.length]]], np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.steps = 0
        return self._obs(), {}

    def step(self, action: int):
        self.steps += 1
        reward = float(self.steps) * self.reward_scale
        end = self.steps >= self.length
        terminated = end and not self.truncate
        truncated = end and self.truncate
        info = {"solved": True} if terminated else {}
        return self._obs(), reward, terminated, truncated, info


class CorridorOracle(nn.Module):
    """The optimal Corridor policy (walks straight to the goal), with a zero critic."""

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        row = obs[:, 0, :, 0]
        right = (row == 2).float().argmax(1) > (row == 1).float().argmax(1)
        return torch.stack([(~right).float(), right.float()], 1), torch.zeros(obs.shape[0])


gym.register("Corridor-v0", entry_point=Corridor)
gym.register("Countdown-v0", entry_point=Countdown)
