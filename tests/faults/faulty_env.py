"""A user's entity-set env that goes wrong on purpose, named ``faulty_env:Faulty-v0``.

The env whose first reset seed is ``bad_seed`` (env index ``bad_seed - seed`` of rank 0) goes
wrong at its env step ``at_step`` in the way ``fault`` says; the others behave.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import gymnasium as gym
import numpy as np

FAULTS = ("raise", "raise_on_reset", "exit", "kill", "nan_obs", "inf_reward")


class Faulty(gym.Env):
    """Observation: 3 entities with 2 features ``Box(3, 2)``; 2 actions; episodes of 4 steps.

    Args:
        fault: One of ``FAULTS``, or None for an env that never goes wrong.
        bad_seed: The first-reset seed of the env that goes wrong.
        at_step: Its env step (counted from 1 over all its episodes) at which it does.
    """

    def __init__(self, fault: str | None = None, bad_seed: int = 1, at_step: int = 5) -> None:
        assert fault is None or fault in FAULTS, fault
        self.fault, self.bad_seed, self.at_step = fault, bad_seed, at_step
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3, 2), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.is_bad = False
        self.steps = 0  # over all episodes
        self.t = 0

    def _obs(self) -> np.ndarray:
        return self.np_random.uniform(-1, 1, (3, 2)).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.is_bad = seed == self.bad_seed
        if self.is_bad and self.fault == "raise_on_reset" and self.steps >= self.at_step:
            raise OSError("camera unplugged")
        self.t = 0
        return self._obs(), {}

    def step(self, action: int):
        self.steps += 1
        self.t += 1
        obs, reward = self._obs(), float(action)
        if self.is_bad and self.steps == self.at_step:
            if self.fault == "raise":
                raise RuntimeError("sensor failure")
            if self.fault == "exit":
                os._exit(3)
            if self.fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.fault == "nan_obs":
                obs[1, 0] = np.nan
            if self.fault == "inf_reward":
                reward = float("inf")
        return obs, reward, self.t >= 4, False, {}


if "Faulty-v0" not in gym.registry:
    gym.register("Faulty-v0", entry_point=Faulty)
