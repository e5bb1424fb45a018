"""Vector envs for training and evaluation: seeds per env and rank, same-step autoreset, and the
spaces a policy is built from.

Autoreset: the vector envs use gymnasium's **same-step** autoreset (``AutoresetMode.SAME_STEP``).
When an episode ends at step ``t``, ``step`` returns that step's true reward and flags together
with the *first observation of the next episode*; the episode's final observation and info
arrive in ``info["final_obs"]`` and ``info["final_info"]`` (see :mod:`graphrl.rl.rollout`).

Seeding: env ``i`` of rank ``r`` is seeded ``seed + r * num_envs + i`` on its first reset;
later episodes draw from that env's own generator, so no two envs of a run share a stream.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from graphrl.envs import make_env
from graphrl.envs.faults import GuardedAsyncVectorEnv, guard_env_fns
from graphrl.graphs.observations import check_observation_space

__all__ = ["VectorMode", "env_seeds", "env_spaces", "make_vector_env"]

VectorMode = Literal["sync", "async"]


def env_spaces(
    env_id: str, env_kwargs: dict[str, Any] | None = None
) -> tuple[gym.Space, gym.Space]:
    """Read ``(observation_space, action_space)`` from one throw-away instance of ``env_id``.

    If the env exposes ``symbol_counts`` (one count per channel of an ``(H, W, C)`` symbol
    grid, as ``graphrl.envs`` envs do), the returned space is tightened to
    ``high[..., c] = symbol_counts[c] - 1`` so that policies can size embeddings and scale
    inputs from the space alone.

    Raises:
        TypeError: if no graphrl agent can read the observation space.
    """
    env = make_env(env_id, **(env_kwargs or {}))
    try:
        space, actions = env.observation_space, env.action_space
        check_observation_space(space, f"graphrl agents (env {env_id})")
        try:
            counts = env.get_wrapper_attr("symbol_counts")
        except AttributeError:
            return space, actions
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
            return space, actions
        if len(counts) != space.shape[-1]:
            raise ValueError(
                f"{env_id} has symbol_counts {tuple(counts)} but observation shape "
                f"{space.shape}; expected one count per channel of an (H, W, C) grid"
            )
        high = np.broadcast_to(np.asarray(counts, dtype=space.dtype) - 1, space.shape)
        return gym.spaces.Box(0, high.copy(), space.shape, space.dtype), actions
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
        env_id: Environment id (see :func:`graphrl.envs.make_env`).
        seeds: One seed per sub-env; also pass them to the first ``reset(seed=seeds)``.
        vector_mode: ``"sync"`` steps envs in this process, ``"async"`` one process each.
        env_kwargs: Keyword arguments for every sub-env.
    """
    if vector_mode not in ("sync", "async"):
        raise ValueError(f"vector_mode must be 'sync' or 'async', got {vector_mode!r}")
    if not seeds:
        raise ValueError("make_vector_env needs at least one env (num_envs >= 1)")
    env_fns = [functools.partial(make_env, env_id, seed, **(env_kwargs or {})) for seed in seeds]
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
    check_observation_space(envs.single_observation_space, f"graphrl agents (env {env_id})")
    return envs
