"""Running a policy for a fixed number of episodes on fresh envs (greedy or sampled), on one env
or on a list of presets (one table)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from graphrl.envs.boxworld_colors import fit_symbols
from graphrl.envs.vector import make_vector_env
from graphrl.graphs.observations import as_observation
from graphrl.models.distributions import ActionSpec
from graphrl.rl.recurrent import is_recurrent
from graphrl.rl.rollout import EpisodeStats, solved_flags

__all__ = ["evaluate_policy", "evaluate_presets", "markdown_table"]


@torch.no_grad()
def evaluate_policy(
    policy: nn.Module,
    env_id: str,
    episodes: int,
    seed: int = 0,
    greedy: bool = False,
    num_envs: int = 8,
    device: torch.device | str = "cpu",
    env_kwargs: dict[str, Any] | None = None,
    max_steps: int = 1_000_000,
) -> EpisodeStats:
    """Run exactly ``episodes`` episodes of ``policy`` on fresh envs seeded ``seed + i``.

    Each env runs a fixed share of the episodes (later finishers are ignored), so short episodes
    are not over-represented as they would be by keeping the first ``episodes`` to finish.

    Args:
        policy: ``obs [B, *obs_shape] -> (params [B, P], value [B])`` (or a recurrent one).
        env_id: Environment id.
        episodes: Number of episodes.
        seed: Base seed.
        greedy: The distribution's mode (argmax, a Gaussian's mean); by default actions are
            sampled from the policy (the default of ``OnPolicyModule.evaluate`` and
            ``graphrl evaluate`` as well).
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
    spec = ActionSpec.from_space(envs.single_action_space, f"evaluation on {env_id}")
    was_training = policy.training
    policy.eval()
    finished = np.zeros(num_envs, dtype=np.int64)
    ret, length = np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    try:
        obs, _ = envs.reset(seed=seeds)
        recurrent = is_recurrent(policy)  # then the policy carries a state per env
        state = policy.initial_state(num_envs, device) if recurrent else ()
        starts = torch.ones(num_envs, dtype=torch.bool, device=device)
        steps = 0
        while not (finished >= quota).all():
            if steps == max_steps:
                raise RuntimeError(
                    f"evaluation of {env_id} did not finish {episodes} episodes in {max_steps} "
                    "steps; does the env have a time limit?"
                )
            steps += 1
            obs_t = as_observation(obs, envs.single_observation_space, device)
            if recurrent:
                params, _, state = policy(obs_t, state, starts)
            else:
                params, _ = policy(obs_t)
            dist = spec.distribution(params)
            action = dist.mode() if greedy else dist.sample()
            obs, reward, terminated, truncated, info = envs.step(spec.to_env(action))
            ret += reward
            length += 1
            done = terminated | truncated
            starts = torch.as_tensor(done, device=device)
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


def evaluate_presets(
    agent: Any,
    env_ids: Sequence[str | None],
    episodes: int,
    seed: int = 0,
    greedy: bool = False,
    num_envs: int = 8,
    env_kwargs: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    check: Callable[[str, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate one trained agent on several envs: one row per env and overrides.

    Args:
        agent: A trained ``OnPolicyModule`` (its ``evaluate`` and ``observation_space``).
        env_ids: Env ids; None is the training env with its training ``env_kwargs``.
        episodes: Episodes per env.
        seed: Env ``i`` of every env id is seeded ``seed + i``.
        greedy: The distribution's mode (argmax, a Gaussian's mean); by default actions are
            sampled from the policy.
        num_envs: Envs stepped in parallel.
        env_kwargs: Overrides applied to every env (e.g. ``{"goal_length": 4}``), or a list
            of them: every env then runs once with each (e.g. ``[{"goal_length": 4},
            {"goal_length": 5}]``), rows in env-major order.
        check: Called as ``check(env_id, kwargs)`` on every env before its symbols are fitted
            and before any episode runs (the command's one-line input checks).

    Returns:
        ``{"env_id", "env_kwargs", "solve_rate", "mean_return", "mean_length", "episodes"}``
        per env and overrides, in order; ``env_kwargs`` are the ones the env ran with (``color_ids``
        included when :func:`fit_symbols` added it).
    """
    variants = [env_kwargs] if isinstance(env_kwargs, dict) else list(env_kwargs or [{}])
    resolved = []
    for env_id, overrides in itertools.product(env_ids, variants):
        kwargs = dict(overrides)
        if env_id is None:
            env_id = agent.hparams.env_id
            kwargs = {**(agent.hparams.env_kwargs or {}), **kwargs}
        if check is not None:
            check(env_id, kwargs)
        kwargs = fit_symbols(agent.observation_space, env_id, kwargs)
        resolved.append((env_id, kwargs))
    rows = []
    for env_id, kwargs in resolved:
        result = agent.evaluate(
            env_id, episodes=episodes, seed=seed, greedy=greedy, num_envs=num_envs, **kwargs
        )
        rows.append({"env_id": env_id, "env_kwargs": kwargs, **result})
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`evaluate_presets` as a markdown table (solve rate in %)."""
    lines = [
        "| env | env_kwargs | episodes | solve rate (%) | mean return | mean length |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        kwargs = json.dumps(row["env_kwargs"], sort_keys=True) if row["env_kwargs"] else ""
        lines.append(
            f"| {row['env_id']} | {kwargs} | {row['episodes']} | {100 * row['solve_rate']:.1f} "
            f"| {row['mean_return']:.2f} | {row['mean_length']:.1f} |"
        )
    return "\n".join(lines)
