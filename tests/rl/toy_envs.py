"""Tiny deterministic gymnasium envs for the RL tests, registered on import.

Use them by id with the module prefix (``"toy_envs:Corridor-v0"``): ``gymnasium.make`` imports
this module first, which also works in spawned DDP / async-vector-env worker processes.
Most observations are uint8 ``(H, W, C)`` grids of integer symbols; ``SetCueRecall``,
``ReachTarget`` and ``AllKinds`` give entity sets, dicts, graphs and non-discrete actions.
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


class EntityPick(gym.Env):
    """Pick the marked entity of a set: ``Box(N, 3)`` observations, ``Discrete(N)`` actions.

    Each of the ``N`` slots holds an entity with probability ``p_present``; rows are
    ``[presence, is_target, noise]`` (highway-env's convention: absent rows are all zero, the
    presence column 0). One entity is the target; picking its slot gives reward 1. Every step
    draws a new set; episodes last ``length`` steps; ``info["solved"]`` = all picks right.
    ``permutation`` reorders the slots of every observation (and of the actions with them), so
    the same seed gives the same episode with entities listed in another order.
    """

    def __init__(
        self,
        num_slots: int = 6,
        length: int = 4,
        p_present: float = 0.7,
        permutation: list[int] | None = None,
    ) -> None:
        self.num_slots = num_slots
        self.length = length
        self.p_present = p_present
        self.order = np.arange(num_slots) if permutation is None else np.asarray(permutation)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (num_slots, 3), np.float32)
        self.action_space = gym.spaces.Discrete(num_slots)

    def _draw(self) -> np.ndarray:
        present = self.np_random.random(self.num_slots) < self.p_present
        present[self.np_random.integers(self.num_slots)] = True
        rows = np.zeros((self.num_slots, 3), np.float32)
        rows[present, 0] = 1.0
        rows[present, 2] = self.np_random.uniform(-1, 1, int(present.sum()))
        self.target = int(self.np_random.choice(np.flatnonzero(present)))
        rows[self.target, 1] = 1.0
        return rows

    def _obs(self) -> np.ndarray:
        return self.rows[self.order]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.steps, self.hits = 0, 0
        self.rows = self._draw()
        return self._obs(), {}

    def step(self, action: int):
        hit = int(self.order[int(action)]) == self.target
        self.steps += 1
        self.hits += hit
        self.rows = self._draw()
        done = self.steps >= self.length
        info = {"solved": self.hits == self.length} if done else {}
        return self._obs(), float(hit), done, False, info


class EntityGoalPick(EntityPick):
    """``Dict`` observations: ``entities [N, 3]`` (presence, colour, noise) and ``goal [2]``.

    The goal (a one-hot of two colours) names which colour to pick; exactly one present entity
    has it. Without the global goal the task is a coin flip, so globals must reach the policy.
    Truncated after ``length`` steps (bootstraps from ``final_obs``).
    """

    def __init__(self, num_slots: int = 5, length: int = 4) -> None:
        super().__init__(num_slots=num_slots, length=length, p_present=1.0)
        self.observation_space = gym.spaces.Dict(
            {
                "entities": gym.spaces.Box(-1.0, 1.0, (num_slots, 3), np.float32),
                "goal": gym.spaces.Box(0.0, 1.0, (2,), np.float32),
            }
        )

    def _draw(self) -> np.ndarray:
        rows = super()._draw()
        self.colour = int(self.np_random.integers(2))
        rows[:, 1] = -1.0 if self.colour else 1.0  # everyone has the other colour ...
        rows[self.target, 1] = 1.0 if self.colour else -1.0  # ... but the target
        return rows

    def _obs(self) -> dict[str, np.ndarray]:
        goal = np.zeros(2, np.float32)
        goal[self.colour] = 1.0
        return {"entities": self.rows[self.order], "goal": goal}

    def step(self, action: int):
        obs, reward, done, _, info = super().step(action)
        return obs, reward, False, done, info


class GraphPick(gym.Env):
    """``Graph`` observations with a changing node count and typed edges, pointer actions.

    Each step shows a random graph of ``min_nodes..max_nodes`` nodes, features
    ``[is_source, noise]``; ``Discrete(2)`` edge types: a chain of type-0 edges, plus one type-1
    edge from the source to the target. Picking the target (``Discrete(max_nodes)``; ids past
    the graph's nodes miss) gives reward 1. Only the env's typed edge says which node it is.
    """

    def __init__(self, min_nodes: int = 3, max_nodes: int = 7, length: int = 4) -> None:
        self.min_nodes, self.max_nodes, self.length = min_nodes, max_nodes, length
        self.observation_space = gym.spaces.Graph(
            node_space=gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
            edge_space=gym.spaces.Discrete(2),
        )
        self.action_space = gym.spaces.Discrete(max_nodes)

    def _draw(self) -> gym.spaces.GraphInstance:
        n = int(self.np_random.integers(self.min_nodes, self.max_nodes + 1))
        nodes = np.zeros((n, 2), np.float32)
        nodes[:, 1] = self.np_random.uniform(-1, 1, n)
        source, self.target = (int(i) for i in self.np_random.choice(n, 2, replace=False))
        nodes[source, 0] = 1.0
        chain = np.stack([np.arange(n - 1), np.arange(1, n)], 1)
        links = np.concatenate([chain, [[source, self.target]]]).astype(np.int64)
        types = np.concatenate([np.zeros(n - 1, np.int64), [1]])
        return gym.spaces.GraphInstance(nodes, types, links)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.steps, self.hits = 0, 0
        return self._draw(), {}

    def step(self, action: int):
        hit = int(action) == self.target
        self.steps += 1
        self.hits += hit
        done = self.steps >= self.length
        info = {"solved": self.hits == self.length} if done else {}
        return self._draw(), float(hit), done, False, info


class CueRecall(gym.Env):
    """Remember a cue: shown on the first step only, asked for ``delay`` steps later.

    Observation ``(1, 2, 1)``: cell 0 holds the cue (1 or 2) on the first step and 0 after;
    cell 1 is 3 on the question step and 0 before it. Actions 0 / 1 before the question are
    ignored; on the question step action ``cue - 1`` earns 1 (solved), the other 0, and the
    episode ends. A policy without memory sees the same blank question frame for both cues,
    so it solves at most half the episodes; one that remembers the first frame solves all.

    ``distractors`` more cells, always 4 (walls), widen the frame to ``(1, 2 + distractors, 1)``:
    the cue is then one entity among many that never change.
    """

    def __init__(self, delay: int = 3, distractors: int = 0) -> None:
        self.delay = delay
        self.width = 2 + distractors
        high = 4 if distractors else 3
        self.observation_space = gym.spaces.Box(0, high, (1, self.width, 1), np.uint8)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        grid = np.zeros((1, self.width, 1), np.uint8)
        grid[0, 2:, 0] = 4
        if self.steps == 0:
            grid[0, 0, 0] = self.cue
        if self.steps == self.delay:
            grid[0, 1, 0] = 3
        return grid

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.cue = int(self.np_random.integers(1, 3))
        self.steps = 0
        return self._obs(), {}

    def step(self, action: int):
        if self.steps < self.delay:
            self.steps += 1
            return self._obs(), 0.0, False, False, {}
        solved = int(action) == self.cue - 1
        return self._obs(), float(solved), True, False, {"solved": solved}


class SetCueRecall(gym.Env):
    """:class:`CueRecall` as an entity set ``Box(2, 5)``: remember a cue seen on step 0 only.

    Row 0 is the cue entity ``[1, cue == 1, cue == 2, 0, 0]`` on the first step (all zero
    after); row 1 is the question entity ``[1, 0, 0, 1, 0]`` on step ``delay`` (zero before).
    On the question step action ``cue - 1`` earns 1 (solved); a policy without memory solves
    half the episodes at most.
    """

    def __init__(self, delay: int = 3) -> None:
        self.delay = delay
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2, 5), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        rows = np.zeros((2, 5), np.float32)
        if self.steps == 0:
            rows[0, [0, self.cue]] = 1.0
        if self.steps == self.delay:
            rows[1, [0, 3]] = 1.0
        return rows

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.cue = int(self.np_random.integers(1, 3))
        self.steps = 0
        return self._obs(), {}

    def step(self, action: int):
        if self.steps < self.delay:
            self.steps += 1
            return self._obs(), 0.0, False, False, {}
        solved = int(action) == self.cue - 1
        return self._obs(), float(solved), True, False, {"solved": solved}


class ReachTarget(gym.Env):
    """A continuous action: name the target's position. One step per episode.

    Observation ``Box(1, 3)``: one entity ``[1, x, y]``, the target at ``(x, y)`` drawn
    uniformly from ``[-0.8, 0.8]^2``. Action ``Box(-1, 1, (2,))``; reward ``-||a - (x, y)||``
    (0 is best; a random action scores about -1.1); solved when within ``tolerance``.
    """

    def __init__(self, tolerance: float = 0.25) -> None:
        self.tolerance = tolerance
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1, 3), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _draw(self) -> np.ndarray:
        self.target = self.np_random.uniform(-0.8, 0.8, 2).astype(np.float32)
        return np.concatenate([[1.0], self.target]).astype(np.float32)[None]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self._draw(), {}

    def step(self, action: np.ndarray):
        if not self.action_space.contains(np.asarray(action, np.float32)):
            raise ValueError(f"action {action} outside {self.action_space}")
        distance = float(np.linalg.norm(np.asarray(action) - self.target))
        return self._draw(), -distance, True, False, {"solved": distance < self.tolerance}


class AllKinds(gym.Env):
    """Every observation kind x every action kind, for the agent's wiring tests.

    ``obs_kind``: ``grid`` (uint8 ``(3, 4, 1)`` symbols in ``[0, 3)``, ``symbol_counts``),
    ``pixels`` (uint8 RGB ``(8, 8, 3)``), ``set`` (``Box(4, 3)``), ``dict`` (an entity set plus
    a ``goal`` vector) or ``graph`` (3 to 5 nodes, typed edges). ``action_kind``: ``discrete``
    (``Discrete(4)``), ``multi_discrete`` (``MultiDiscrete([2, 3])``) or ``box``
    (``Box(-1, 1, (2,))``). Episodes last ``length`` steps; the reward is 1 for an action whose
    first component is 0 (any kind), so every kind has something to learn.
    """

    def __init__(self, obs_kind: str = "set", action_kind: str = "discrete", length: int = 3):
        self.obs_kind, self.action_kind, self.length = obs_kind, action_kind, length
        entities = gym.spaces.Box(-1.0, 1.0, (4, 3), np.float32)
        self.observation_space = {
            "grid": gym.spaces.Box(0, 2, (3, 4, 1), np.uint8),
            "pixels": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
            "set": entities,
            "dict": gym.spaces.Dict(
                {"entities": entities, "goal": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)}
            ),
            "graph": gym.spaces.Graph(
                node_space=gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
                edge_space=gym.spaces.Discrete(2),
            ),
        }[obs_kind]
        self.action_space = {
            "discrete": gym.spaces.Discrete(4),
            "multi_discrete": gym.spaces.MultiDiscrete([2, 3]),
            "box": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        }[action_kind]
        if obs_kind == "grid":
            self.symbol_counts = (3,)

    def _obs(self) -> Any:
        rng = self.np_random
        if self.obs_kind == "grid":
            return rng.integers(0, 3, (3, 4, 1)).astype(np.uint8)
        if self.obs_kind == "pixels":
            return rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
        entities = rng.uniform(-1, 1, (4, 3)).astype(np.float32)
        if self.obs_kind == "set":
            return entities
        if self.obs_kind == "dict":
            return {"entities": entities, "goal": rng.uniform(-1, 1, 2).astype(np.float32)}
        n = int(rng.integers(3, 6))
        links = np.stack([np.arange(n - 1), np.arange(1, n)], 1).astype(np.int64)
        types = rng.integers(0, 2, n - 1).astype(np.int64)
        nodes = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
        return gym.spaces.GraphInstance(nodes, types, links)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.steps = 0
        return self._obs(), {}

    def step(self, action: Any):
        if not self.action_space.contains(np.asarray(action, self.action_space.dtype)):
            raise ValueError(f"action {action} outside {self.action_space}")
        first = float(np.asarray(action).reshape(-1)[0])
        reward = float(abs(first) < 0.25)
        self.steps += 1
        done = self.steps >= self.length
        return self._obs(), reward, done, False, {}


class TwoLayerLogits(nn.Module):
    """A user's own policy head for ``Discrete`` actions: an MLP instead of one linear map
    (``head(spec, in_channels)``, called as ``head(features, out)``)."""

    def __init__(self, spec: Any, in_channels: int, hidden: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.Tanh(), nn.Linear(hidden, spec.param_size)
        )

    def forward(self, features: Tensor, out: Any = None) -> Tensor:
        return self.net(features)


gym.register("Corridor-v0", entry_point=Corridor)
gym.register("Countdown-v0", entry_point=Countdown)
gym.register("EntityPick-v0", entry_point=EntityPick)
gym.register("EntityGoalPick-v0", entry_point=EntityGoalPick)
gym.register("GraphPick-v0", entry_point=GraphPick)
gym.register("CueRecall-v0", entry_point=CueRecall)
gym.register("SetCueRecall-v0", entry_point=SetCueRecall)
gym.register("ReachTarget-v0", entry_point=ReachTarget)
gym.register("AllKinds-v0", entry_point=AllKinds)
