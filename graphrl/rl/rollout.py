"""Vectorised experience collection into preallocated, padded rollout tensors.

The collector steps a ``gymnasium`` vector env ``num_steps`` times, running the policy once per
step on the whole batch of observations under ``torch.no_grad()``, and writes into tensors of
shape ``[T, N, ...]`` (``T = num_steps``, ``N = num_envs``) that stay on the model's device
between rollouts. Nothing here loops over environments in Python. Observations of every kind
the agents accept (arrays, ``Dict`` s of arrays, variable-size ``Graph`` s) are stored by the
containers of :mod:`graphrl.rl.observations`, which index like one ``[T, N, ...]`` tensor.

Autoreset: the vector envs use gymnasium's **same-step** autoreset
(``AutoresetMode.SAME_STEP``). When an episode ends at step ``t``, ``step`` returns that step's
true reward and termination/truncation flags together with the *first observation of the next
episode*; the episode's final observation and info arrive in ``info["final_obs"]`` and
``info["final_info"]``. We chose it over gymnasium's default next-step mode because next-step
mode spends one step per episode on a transition that is not part of the MDP (its action is
ignored, its reward is 0), and every loss would have to mask it out. The price of same-step mode
is one extra critic call on the steps where some episode is truncated, to store
``V(final obs)`` for bootstrapping (see :func:`graphrl.rl.functional.compute_gae`).

Seeding: env ``i`` of rank ``r`` is seeded ``seed + r * num_envs + i`` on its first reset;
later episodes draw from that env's own generator, so no two envs of a run share a stream.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical

from graphrl.rl.observations import (
    GraphObs,
    Observation,
    allocate_observations,
    as_observation,
    check_observation_space,
    stack_observations,
)
from graphrl.rl.policies import static_shapes

_CPU = torch.device("cpu")

__all__ = [
    "EpisodeStats",
    "EpisodeTracker",
    "RolloutBuffer",
    "RolloutCollector",
    "Transitions",
    "env_seeds",
    "env_spaces",
    "make_single_env",
    "make_vector_env",
    "solved_flags",
]

VectorMode = Literal["sync", "async"]


def make_single_env(env_id: str, seed: int | None = None, **env_kwargs: Any) -> gym.Env:
    """Build one environment with :func:`graphrl.envs.make_env` (every id form it takes).

    Args:
        env_id: A graphrl, ``MiniGrid-*``, gymnasium or ``module:EnvId`` id.
        seed: Reset seed (also seeds the action space).
        **env_kwargs: Keyword arguments for the env constructor.
    """
    from graphrl.envs import make_env

    return make_env(env_id, seed=seed, **env_kwargs)


def _check_spaces(env_id: str, observation_space: gym.Space, action_space: gym.Space) -> int:
    check_observation_space(observation_space, f"the on-policy modules (env {env_id})")
    if not isinstance(action_space, gym.spaces.Discrete) or int(action_space.start) != 0:
        raise TypeError(
            f"{env_id} has action space {action_space}; on-policy modules need "
            "Discrete(n) starting at 0"
        )
    return int(action_space.n)


def env_spaces(env_id: str, env_kwargs: dict[str, Any] | None = None) -> tuple[gym.spaces.Box, int]:
    """Read ``(observation_space, num_actions)`` from one throw-away instance of ``env_id``.

    If the env exposes ``symbol_counts`` (one count per channel of an ``(H, W, C)`` symbol
    grid, as ``graphrl.envs`` envs do), the returned space is tightened to
    ``high[..., c] = symbol_counts[c] - 1`` so that policies can size embeddings and scale
    inputs from the space alone.

    Raises:
        TypeError: if the observation space is not a ``Box`` or the actions not ``Discrete``.
    """
    env = make_single_env(env_id, **(env_kwargs or {}))
    try:
        space = env.observation_space
        num_actions = _check_spaces(env_id, space, env.action_space)
        try:
            counts = env.get_wrapper_attr("symbol_counts")
        except AttributeError:
            return space, num_actions
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
            return space, num_actions
        if len(counts) != space.shape[-1]:
            raise ValueError(
                f"{env_id} has symbol_counts {tuple(counts)} but observation shape "
                f"{space.shape}; expected one count per channel of an (H, W, C) grid"
            )
        high = np.broadcast_to(np.asarray(counts, dtype=space.dtype) - 1, space.shape)
        return gym.spaces.Box(0, high.copy(), space.shape, space.dtype), num_actions
    finally:
        env.close()


def env_seeds(seed: int, num_envs: int, rank: int = 0) -> list[int]:
    """Seeds of the ``num_envs`` envs of ``rank``: ``seed + rank * num_envs + i``."""
    return [seed + rank * num_envs + i for i in range(num_envs)]


def make_vector_env(
    env_id: str,
    seeds: list[int],
    vector_mode: VectorMode = "sync",
    env_kwargs: dict[str, Any] | None = None,
) -> gym.vector.VectorEnv:
    """A same-step-autoreset vector env with one sub-env per seed (not reset yet).

    Args:
        env_id: Environment id (see :func:`make_single_env`).
        seeds: One seed per sub-env; also pass them to the first ``reset(seed=seeds)``.
        vector_mode: ``"sync"`` steps envs in this process, ``"async"`` one process each.
        env_kwargs: Keyword arguments for every sub-env.
    """
    if vector_mode not in ("sync", "async"):
        raise ValueError(f"vector_mode must be 'sync' or 'async', got {vector_mode!r}")
    if not seeds:
        raise ValueError("make_vector_env needs at least one env (num_envs >= 1)")
    from graphrl.envs.faults import GuardedAsyncVectorEnv, guard_env_fns

    env_fns = [
        functools.partial(make_single_env, env_id, seed, **(env_kwargs or {})) for seed in seeds
    ]
    env_fns = guard_env_fns(env_fns, env_id)  # a fault names the env id, index and env step
    same_step = gym.vector.AutoresetMode.SAME_STEP
    if vector_mode == "sync":
        envs = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=same_step)
    else:
        probe = env_fns[0]()  # Graph observations cannot live in shared memory: ask the env
        shared_memory = not isinstance(probe.observation_space, gym.spaces.Graph)
        probe.close()
        envs = GuardedAsyncVectorEnv(
            env_id, env_fns, autoreset_mode=same_step, shared_memory=shared_memory
        )
    _check_spaces(env_id, envs.single_observation_space, envs.single_action_space)
    return envs


@dataclass
class EpisodeStats:
    """Finished episodes: returns, lengths and solved flags (NaN where the env did not say)."""

    returns: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    solved: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.returns)

    def sums(self) -> list[float]:
        """``[count, sum return, sum length, solved count, episodes reporting solved]``."""
        known = ~np.isnan(self.solved)
        return [
            float(len(self)),
            float(self.returns.sum()),
            float(self.lengths.sum()),
            float(self.solved[known].sum()),
            float(known.sum()),
        ]


class EpisodeTracker:
    """Running return and length of every env; records each episode when it ends.

    Args:
        num_envs: Number of parallel envs.
    """

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self._return = np.zeros(num_envs)
        self._length = np.zeros(num_envs, dtype=np.int64)
        self._finished: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def update(
        self, rewards: np.ndarray, done: np.ndarray, solved: np.ndarray | None = None
    ) -> None:
        """Add one vector step.

        Args:
            rewards: ``[N]`` rewards of the step.
            done: ``[N]`` bool, episode ended (terminated or truncated) at this step.
            solved: ``[N]`` float, 1/0 where the env reported ``info["solved"]``, NaN elsewhere.
        """
        self._return += rewards
        self._length += 1
        if done.any():
            flags = np.full(self.num_envs, np.nan) if solved is None else solved
            self._finished.append(
                (self._return[done].copy(), self._length[done].copy(), flags[done].copy())
            )
            self._return[done] = 0.0
            self._length[done] = 0

    def pop(self) -> EpisodeStats:
        """Return the episodes finished since the last call and forget them."""
        if not self._finished:
            return EpisodeStats()
        returns, lengths, solved = (np.concatenate(parts) for parts in zip(*self._finished))
        self._finished = []
        return EpisodeStats(returns, lengths, solved)

    def state_dict(self) -> dict[str, Any]:
        """The running returns and lengths (``[N]`` tensors) and the finished, unpopped episodes."""
        stats = self.pop()
        self._finished = [(stats.returns, stats.lengths, stats.solved)] if len(stats) else []
        return {
            "return": torch.from_numpy(self._return.copy()),
            "length": torch.from_numpy(self._length.copy()),
            "finished": [
                torch.from_numpy(a.copy()) for a in (stats.returns, stats.lengths, stats.solved)
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (for the same ``num_envs``)."""
        if tuple(state["return"].shape) != (self.num_envs,):
            raise ValueError(
                f"episode tracker state is for {state['return'].shape[0]} envs, not {self.num_envs}"
            )
        self._return = state["return"].numpy().copy()
        self._length = state["length"].numpy().copy()
        returns, lengths, solved = (t.numpy().copy() for t in state["finished"])
        self._finished = [(returns, lengths, solved)] if len(returns) else []


def solved_flags(info: dict[str, Any], num_envs: int) -> np.ndarray | None:
    """``[N]`` ``final_info["solved"]`` as 1/0, NaN where absent; None if no env reported it."""
    final_info = info.get("final_info")
    if not final_info or "solved" not in final_info:
        return None
    flags = np.full(num_envs, np.nan)
    mask = final_info["_solved"]
    flags[mask] = final_info["solved"][mask].astype(np.float64)
    return flags


def _check_policy_output(logits: Tensor, value: Tensor, batch: int, actions: gym.Space) -> None:
    expected = (batch, int(actions.n))
    if tuple(logits.shape) != expected or tuple(value.shape) != (batch,):
        raise ValueError(
            f"policy must return logits {list(expected)} and value [{batch}], got "
            f"{list(logits.shape)} and {list(value.shape)} (squeeze the value head's last dim)"
        )


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


@dataclass
class Transitions:
    """A flat batch of transitions ``[B, ...]`` for the update (``B = T * N`` or a minibatch)."""

    obs: Observation  # [B, *obs_shape] (a tensor, ObsDict or GraphObs)
    actions: Tensor  # [B] int64
    logprobs: Tensor  # [B] log pi_old(a|s)
    values: Tensor  # [B] V_old(s)
    advantages: Tensor  # [B]
    returns: Tensor  # [B]

    def __len__(self) -> int:
        return self.actions.shape[0]

    def __getitem__(self, index: Tensor) -> Transitions:
        """Select transitions by an index tensor ``[b]`` (one gather per field)."""
        return Transitions(*(getattr(self, f.name)[index] for f in fields(self)))


@dataclass
class RolloutBuffer:
    """Preallocated ``[T, N, ...]`` tensors of one rollout (see ``graphrl.rl.functional``)."""

    obs: Observation  # [T, N, *obs_shape], the env's dtype (uint8 for symbol grids)
    actions: Tensor  # [T, N] int64
    logprobs: Tensor  # [T, N]
    values: Tensor  # [T, N] V(obs[t])
    rewards: Tensor  # [T, N]
    terminations: Tensor  # [T, N] 1.0 where the episode terminated at t
    truncations: Tensor  # [T, N] 1.0 where it was truncated at t
    final_values: Tensor  # [T, N] V(final obs) where truncated, else 0
    next_value: Tensor  # [N] V(obs after the last step)

    @classmethod
    def allocate(
        cls,
        num_steps: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        device: torch.device,
        observation_space: gym.Space | None = None,
    ) -> RolloutBuffer:
        """Zero-filled buffer for ``num_steps`` steps of ``num_envs`` envs on ``device``.

        With ``observation_space`` the observation storage follows that space's kind (see
        :mod:`graphrl.rl.observations`); otherwise it is a ``[T, N, *obs_shape]`` tensor.
        """

        def zeros(dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.zeros((num_steps, num_envs), dtype=dtype, device=device)

        if observation_space is not None:
            obs = allocate_observations(observation_space, (num_steps, num_envs), device)
        else:
            obs = torch.zeros((num_steps, num_envs, *obs_shape), dtype=obs_dtype, device=device)
        return cls(
            obs=obs,
            actions=zeros(torch.long),
            logprobs=zeros(),
            values=zeros(),
            rewards=zeros(),
            terminations=zeros(),
            truncations=zeros(),
            final_values=zeros(),
            next_value=torch.zeros(num_envs, device=device),
        )

    @property
    def device(self) -> torch.device:
        return self.obs.device

    def transitions(self, advantages: Tensor, returns: Tensor) -> Transitions:
        """Flatten the rollout (``[T, N] -> [T * N]``) with its ``[T, N]`` advantages/returns."""
        return Transitions(
            obs=self.obs.flatten(0, 1),
            actions=self.actions.flatten(),
            logprobs=self.logprobs.flatten(),
            values=self.values.flatten(),
            advantages=advantages.flatten(),
            returns=returns.flatten(),
        )


class RolloutCollector:
    """Steps a vector env with a policy and fills a :class:`RolloutBuffer`.

    The collector owns the envs and their current observations, so consecutive rollouts
    continue the same episodes. Call :meth:`close` when done.

    Args:
        envs: A vector env built with same-step autoreset (:func:`make_vector_env`).
        num_steps: Steps per env and rollout (``T``).
        seeds: Seeds for the first reset, one per sub-env.
    """

    buffer_cls: type[RolloutBuffer] = RolloutBuffer  # what :meth:`collect` fills

    def __init__(self, envs: gym.vector.VectorEnv, num_steps: int, seeds: list[int]) -> None:
        if envs.metadata.get("autoreset_mode") != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError(
                "RolloutCollector needs a vector env with autoreset_mode=SAME_STEP; "
                "build it with graphrl.rl.rollout.make_vector_env"
            )
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if len(seeds) != envs.num_envs:
            raise ValueError(f"got {len(seeds)} seeds for {envs.num_envs} envs")
        self.envs = envs
        self.num_envs = envs.num_envs
        self.num_steps = num_steps
        self.seeds = list(seeds)
        space = envs.single_observation_space
        self.observation_space = space
        self.obs_shape: tuple[int, ...] = tuple(space.shape or ())
        self.obs_dtype = _torch_dtype(space.dtype) if space.dtype is not None else torch.float32
        self.episodes = EpisodeTracker(self.num_envs)
        self.buffer: RolloutBuffer | None = None
        self._next_obs: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        """Reset every env with its seed; returns the observations ``[N, *obs_shape]``."""
        self._next_obs, _ = self.envs.reset(seed=self.seeds)
        self.episodes = EpisodeTracker(self.num_envs)
        return self._next_obs

    @property
    def next_obs(self) -> np.ndarray | None:
        """The observations ``[N, *obs_shape]`` the next step will act on (None before reset)."""
        return self._next_obs

    def _buffer_on(self, device: torch.device) -> RolloutBuffer:
        if self.buffer is None or self.buffer.device != device:
            self.buffer = self.buffer_cls.allocate(
                self.num_steps,
                self.num_envs,
                self.obs_shape,
                self.obs_dtype,
                device,
                self.observation_space,
            )
        if isinstance(self.buffer.obs, GraphObs):  # pad to this rollout's largest graph
            self.buffer.obs.reset_padding()
        return self.buffer

    def _as_obs(self, obs: Any, device: torch.device) -> Observation:
        return as_observation(obs, self.observation_space, device)

    @torch.no_grad()
    def collect(self, policy: nn.Module, device: torch.device | str = "cpu") -> RolloutBuffer:
        """Run ``num_steps`` vector steps, sampling actions from ``policy``.

        Args:
            policy: Maps obs ``[N, *obs_shape]`` to ``(logits [N, A], value [N])``.
            device: Where the policy lives and the buffer is kept.

        Returns:
            The collector's buffer, overwritten in place by every call.
        """
        device = torch.device(device)
        if self._next_obs is None:
            self.reset()
        buffer = self._buffer_on(device)
        self._start_rollout(policy, buffer, device)
        obs = self._as_obs(self._next_obs, device)
        for t in range(self.num_steps):
            buffer.obs[t] = obs
            if device.type == "cpu":  # counting entities on the host is no sync here
                logits, value = self._act(policy, obs, t)
            else:  # graph sizes read off the host copy: no device sync per step
                with static_shapes(policy, self._as_obs(self._next_obs, _CPU)):
                    logits, value = self._act(policy, obs, t)
            if t == 0:
                _check_policy_output(logits, value, self.num_envs, self.envs.single_action_space)
            dist = Categorical(logits=logits, validate_args=False)
            action = dist.sample()
            buffer.actions[t] = action
            buffer.logprobs[t] = dist.log_prob(action)
            buffer.values[t] = value

            next_obs, reward, terminated, truncated, info = self.envs.step(action.cpu().numpy())
            buffer.rewards[t] = torch.as_tensor(reward, dtype=torch.float32).to(device)
            buffer.terminations[t] = torch.as_tensor(terminated, dtype=torch.float32).to(device)
            buffer.truncations[t] = torch.as_tensor(truncated, dtype=torch.float32).to(device)
            buffer.final_values[t] = 0.0
            # A truncated episode is bootstrapped from the value of where it stopped: its final
            # observation, which same-step autoreset hands over in info["final_obs"].
            bootstrap = np.flatnonzero(truncated & ~terminated)
            if bootstrap.size:
                final_obs = stack_observations(info["final_obs"][bootstrap], self.observation_space)
                rows = torch.as_tensor(bootstrap, device=device)
                buffer.final_values[t, rows] = self._final_value(
                    policy, self._as_obs(final_obs, device), rows
                ).to(buffer.final_values.dtype)  # bf16 under autocast

            done = terminated | truncated
            self.episodes.update(reward, done, solved_flags(info, self.num_envs))
            self._end_step(done, device)
            self._next_obs = next_obs
            obs = self._as_obs(next_obs, device)
        buffer.next_value.copy_(self._last_value(policy, obs))
        return buffer

    # Hooks of one rollout step; RecurrentRolloutCollector (graphrl/rl/recurrent.py) overrides
    # them to carry each env's policy state, so both share the loop above.

    def _start_rollout(
        self, policy: nn.Module, buffer: RolloutBuffer, device: torch.device
    ) -> None:
        """Called once before the first step of a rollout."""

    def _act(self, policy: nn.Module, obs: Observation, t: int) -> tuple[Tensor, Tensor]:
        """``(logits [N, A], value [N])`` for step ``t``'s observations."""
        return policy(obs)

    def _final_value(self, policy: nn.Module, obs: Observation, rows: Tensor) -> Tensor:
        """``V(final obs) [len(rows)]`` of the envs ``rows`` whose episodes were truncated."""
        return policy(obs)[1]

    def _end_step(self, done: np.ndarray, device: torch.device) -> None:
        """Called after each vector step with ``done [N]`` (episode ended at this step)."""

    def _last_value(self, policy: nn.Module, obs: Observation) -> Tensor:
        """``V(obs after the last step) [N]``; the rollout ends here."""
        return policy(obs)[1]

    @property
    def envs_restorable(self) -> bool:
        """Whether :meth:`state_dict` can hold the envs themselves (a ``SyncVectorEnv``)."""
        return isinstance(self.envs, gym.vector.SyncVectorEnv)

    def state_dict(self) -> dict[str, Any]:
        """What the next rollout continues from: the envs, their current observations, the
        episodes in flight.

        Sync vector envs are pickled whole, one ``bytes`` per sub-env (with their ``np_random``
        and the episode in progress), so a restored collector steps on exactly as this one
        would. Async envs live in other processes: only ``"envs": None`` is stored, and
        :meth:`load_state_dict` leaves the collector to reset them with its seeds.
        """
        envs = None
        if self.envs_restorable and self._next_obs is not None:
            envs = [pickle.dumps(env) for env in self.envs.envs]
        return {
            "envs": envs,
            # Pickled like the envs: observations may be arrays, dicts of arrays or graphs.
            "next_obs": None if self._next_obs is None else pickle.dumps(self._next_obs),
            "episodes": self.episodes.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Unpickles the stored envs: load only checkpoints you trust (as for any pickle). Without
        stored envs (async, or saved before the first rollout) the next :meth:`collect` resets
        every env with its seed and the episode tracker starts empty, as at the start of a run.
        """
        if state["envs"] is None:
            self._next_obs = None
            return
        if len(state["envs"]) != self.num_envs:
            raise ValueError(f"collector state has {len(state['envs'])} envs, not {self.num_envs}")
        for env in self.envs.envs:
            env.close()
        self.envs.envs = [pickle.loads(blob) for blob in state["envs"]]
        self._next_obs = pickle.loads(state["next_obs"])
        self.episodes.load_state_dict(state["episodes"])

    def close(self) -> None:
        """Close the vector env (and its worker processes in async mode)."""
        self.envs.close()
