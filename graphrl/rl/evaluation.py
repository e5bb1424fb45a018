"""Running a policy for a fixed number of episodes on fresh envs (greedy or sampled)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from graphrl.rl.observations import as_observation
from graphrl.rl.rollout import EpisodeStats, make_vector_env, solved_flags

__all__ = ["evaluate_policy"]


@torch.no_grad()
def evaluate_policy(
    policy: nn.Module,
    env_id: str,
    episodes: int,
    seed: int = 0,
    greedy: bool = True,
    num_envs: int = 8,
    device: torch.device | str = "cpu",
    env_kwargs: dict[str, Any] | None = None,
    max_steps: int = 1_000_000,
) -> EpisodeStats:
    """Run exactly ``episodes`` episodes of ``policy`` on fresh envs seeded ``seed + i``.

    Each env runs a fixed share of the episodes (later finishers are ignored), so short episodes
    are not over-represented as they would be by keeping the first ``episodes`` to finish.

    Args:
        policy: ``obs [B, *obs_shape] -> (logits [B, A], value [B])``.
        env_id: Environment id.
        episodes: Number of episodes.
        seed: Base seed.
        greedy: Argmax actions instead of sampling.
        num_envs: Parallel envs (capped at ``episodes``).
        device: Device of ``policy``.
        env_kwargs: Env keyword arguments.
        max_steps: Give up after this many vector steps (an env that never ends).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    num_envs = max(1, min(num_envs, episodes))
    quota = np.full(num_envs, episodes // num_envs) + (np.arange(num_envs) < episodes % num_envs)
    seeds = [seed + i for i in range(num_envs)]
    envs = make_vector_env(env_id, seeds, "sync", env_kwargs)
    was_training = policy.training
    policy.eval()
    finished = np.zeros(num_envs, dtype=np.int64)
    ret, length = np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    try:
        obs, _ = envs.reset(seed=seeds)
        steps = 0
        while not (finished >= quota).all():
            if steps == max_steps:
                raise RuntimeError(
                    f"evaluation of {env_id} did not finish {episodes} episodes in {max_steps} "
                    "steps; does the env have a time limit?"
                )
            steps += 1
            logits, _ = policy(as_observation(obs, envs.single_observation_space, device))
            if greedy:
                action = logits.argmax(-1)
            else:
                action = Categorical(logits=logits, validate_args=False).sample()
            obs, reward, terminated, truncated, info = envs.step(action.cpu().numpy())
            ret += reward
            length += 1
            done = terminated | truncated
            keep = done & (finished < quota)
            if keep.any():
                solved = solved_flags(info, num_envs)
                solved = np.full(num_envs, np.nan) if solved is None else solved
                parts.append((ret[keep].copy(), length[keep].copy(), solved[keep]))
            finished += done
            ret[done], length[done] = 0.0, 0
    finally:
        envs.close()
        policy.train(was_training)
    returns, lengths, solved = (np.concatenate(p) for p in zip(*parts))
    return EpisodeStats(returns, lengths, solved)
