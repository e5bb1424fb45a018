"""NaN and inf from the env, found once per rollout on the stored batch (not per step).

:func:`check_rollout_finite` reads a rollout's float observations and its rewards after
collection and, when any value is NaN or infinite, raises :class:`~graphrl.envs.faults.EnvFault`
naming the env id, the env's index and the env step that returned it, before the update could
spread it into the parameters. Integer observations (symbol grids) cannot hold NaN and are not
read. The check is one ``isfinite`` pass over the floats and one host sync per rollout.

A NaN observation usually stops the rollout before it ends: the policy's logits turn NaN and
sampling an action raises. :func:`collect_checked` then checks the part of the rollout stored
so far (the rest holds the previous, already checked, rollout), so that error too is the line
naming the env.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrl.envs.faults import EnvFault
from graphrl.graphs.observations import GraphObs, ObsDict, Observation
from graphrl.rl.rollout import RolloutBuffer, RolloutCollector

__all__ = ["check_rollout_finite", "collect_checked", "float_parts"]


def float_parts(obs: Observation, name: str = "observation") -> list[tuple[str, Tensor]]:
    """The floating-point tensors of a stored observation batch, each ``[T, N, ...]``, named.

    Args:
        obs: A rollout's observations: a tensor, an ``ObsDict`` or a ``GraphObs``.
        name: What to call ``obs`` in a message.
    """
    if isinstance(obs, ObsDict):
        return [
            part for key, value in obs.items() for part in float_parts(value, f"{name}[{key!r}]")
        ]
    if isinstance(obs, GraphObs):
        parts = [(f"{name} node features", obs.nodes)]
        if obs.edges is not None:
            parts.append((f"{name} edge features", obs.edges))
        return [(n, t) for n, t in parts if t.is_floating_point()]
    return [(name, obs)] if isinstance(obs, Tensor) and obs.is_floating_point() else []


def check_rollout_finite(obs: Observation, rewards: Tensor, env_id: str, steps_before: int) -> None:
    """Raise if a rollout holds NaN or inf in its float observations or its rewards.

    Args:
        obs: The stored observations ``[T, N, ...]`` (``obs[t]`` is what step ``t`` acted on).
        rewards: ``[T, N]`` rewards (``rewards[t]`` came from step ``t``).
        env_id: The envs' id (for the message).
        steps_before: Steps each env took before this rollout.

    Raises:
        EnvFault: naming the first bad value's env index, its env step and the value.
    """
    parts = [*float_parts(obs), ("reward", rewards)]
    if bool(torch.stack([part.isfinite().all() for _, part in parts]).all()):  # one host sync
        return
    for what, part in parts:
        num_steps, num_envs = part.shape[:2]
        ok = part.isfinite().reshape(num_steps, num_envs, -1).all(-1)  # [T, N]
        bad = (~ok).nonzero()
        if len(bad) == 0:
            continue
        t, index = (int(v) for v in bad[0])
        values = part[t, index].flatten()
        value = values[~values.isfinite()][0].item()
        if what == "reward":
            step = f"at env step {steps_before + t + 1}"
        elif steps_before + t == 0:
            step = "on its first reset"
        else:
            step = f"at env step {steps_before + t}"
        raise EnvFault(
            f"env {index} of {env_id} returned a non-finite {what} ({value}) {step}: fix the "
            "env (or a wrapper of it) so that its observations and rewards are finite"
        )


def collect_checked(
    collector: RolloutCollector,
    policy: nn.Module,
    device: torch.device | str,
    env_id: str,
    steps_before: int,
) -> RolloutBuffer:
    """``collector.collect(policy, device)``, then :func:`check_rollout_finite` on its buffer.

    Args:
        collector: The rollout collector.
        policy: The policy that acts.
        device: Where the policy and the buffer live.
        env_id: The envs' id (for the message).
        steps_before: Steps each env took before this rollout.

    Raises:
        EnvFault: when the env returned NaN / inf, also when that made the rollout itself fail.
    """
    try:
        buffer = collector.collect(policy, device)
    except Exception as exc:
        if not isinstance(exc, EnvFault) and collector.buffer is not None:
            try:
                check_rollout_finite(
                    collector.buffer.obs, collector.buffer.rewards, env_id, steps_before
                )
            except EnvFault as fault:
                raise fault from exc
        raise
    check_rollout_finite(buffer.obs, buffer.rewards, env_id, steps_before)
    return buffer
