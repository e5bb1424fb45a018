"""Recurrent policies in on-policy training: rollouts that carry a state, BPTT minibatches.

A recurrent policy declares ``is_recurrent = True`` and gives

* ``initial_state(batch_size, device) -> State`` (a tuple of ``[B, ...]`` tensors);
* ``forward(obs [B, ...], state, starts [B]) -> (params [B, P], value [B], state)``: one step,
  the state of rows where ``starts`` is set is reset first (``obs`` opens an episode);
* ``unroll(obs [T, B, ...], state, starts [T, B]) -> (params [T, B, P], values [T, B], state)``.

``params`` are the parameters of the action distribution (:mod:`graphrl.models.distributions`).
:class:`graphrl.models.ActorCritic` with a core meets this interface.

The collector stores, per rollout, the state every env had *before* its first step and the
``starts`` flag of every step, as CleanRL's ``ppo_atari_lstm.py`` does; the update re-runs whole
env sequences from that state (truncated BPTT over the rollout), so a minibatch is a set of
envs, never a shuffle of single steps. With same-step autoreset, an episode that ends at step
``t`` makes ``obs[t + 1]`` the first observation of the next one, so ``starts[t + 1]`` is set and
the state is reset there; the truncation bootstrap value is taken from the state the finished
episode reached.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from graphrl.graphs.observations import Observation
from graphrl.models.distributions import ActionSpec
from graphrl.nn.recurrent import State, select_state
from graphrl.rl.rollout import RolloutBuffer, RolloutCollector

__all__ = [
    "RecurrentRolloutBuffer",
    "RecurrentRolloutCollector",
    "SequenceBatch",
    "is_recurrent",
]


def is_recurrent(policy: nn.Module) -> bool:
    """Whether ``policy`` declares the recurrent interface (``is_recurrent = True``)."""
    return bool(getattr(policy, "is_recurrent", False))


@dataclass
class SequenceBatch:
    """Whole env sequences ``[T, n, ...]`` for a BPTT update; ``len`` counts sequences (envs).

    Indexing selects envs (columns), so ``PPO``'s minibatch loop draws sets of envs.
    """

    obs: Tensor  # [T, n, *obs_shape]
    actions: Tensor  # [T, n, *action_shape]
    logprobs: Tensor  # [T, n]
    values: Tensor  # [T, n]
    advantages: Tensor  # [T, n]
    returns: Tensor  # [T, n]
    starts: Tensor  # [T, n] bool: obs[t] opens an episode (reset before step t)
    initial_state: State  # the state before step 0, [n, ...] per tensor

    def __len__(self) -> int:
        return self.actions.shape[1]

    def __getitem__(self, index: Tensor) -> SequenceBatch:
        """Select the env sequences ``index [n]``."""
        values = {
            f.name: getattr(self, f.name)[:, index]
            for f in fields(self)
            if f.name != "initial_state"
        }
        return SequenceBatch(**values, initial_state=select_state(self.initial_state, index))

    def evaluate(self, policy: nn.Module, spec: ActionSpec) -> tuple[Tensor, Tensor, Tensor]:
        """Re-run ``policy`` over the sequences: ``(logprob, entropy, value)``, each ``[T, n]``;
        ``spec`` reads the policy's output as a distribution."""
        params, value, _ = policy.unroll(self.obs, self.initial_state, self.starts)
        t, n = self.starts.shape
        dist = spec.distribution(params.flatten(0, 1))
        logprob = dist.log_prob(self.actions.flatten(0, 1)).unflatten(0, (t, n))
        return logprob, dist.entropy().unflatten(0, (t, n)), value


@dataclass
class RecurrentRolloutBuffer(RolloutBuffer):
    """A rollout plus what re-running it needs: per-step ``starts`` and the initial state."""

    starts: Tensor | None = None  # [T, N] bool
    initial_state: State = ()

    @classmethod
    def allocate(cls, num_steps: int, num_envs: int, *args: Any, **kwargs: Any) -> Any:
        """:meth:`RolloutBuffer.allocate` plus the ``starts [T, N]`` flags."""
        buffer = super().allocate(num_steps, num_envs, *args, **kwargs)
        buffer.starts = torch.zeros(num_steps, num_envs, dtype=torch.bool, device=buffer.device)
        return buffer

    def transitions(self, advantages: Tensor, returns: Tensor) -> SequenceBatch:  # type: ignore[override]
        """The rollout as ``N`` env sequences (nothing flattened: BPTT needs the time axis)."""
        assert self.starts is not None
        return SequenceBatch(
            obs=self.obs,
            actions=self.actions,
            logprobs=self.logprobs,
            values=self.values,
            advantages=advantages,
            returns=returns,
            starts=self.starts,
            initial_state=self.initial_state,
        )


class RecurrentRolloutCollector(RolloutCollector):
    """:class:`RolloutCollector` for recurrent policies: carries each env's state across steps
    and rollouts, resets it where an episode starts, and records what BPTT needs.

    Args:
        envs: A vector env built with same-step autoreset.
        num_steps: Steps per env and rollout.
        seeds: Seeds for the first reset, one per sub-env.
    """

    buffer_cls = RecurrentRolloutBuffer

    def __init__(self, envs: gym.vector.VectorEnv, num_steps: int, seeds: list[int]) -> None:
        super().__init__(envs, num_steps, seeds)
        self.state: State | None = None  # [N, ...] the state the next step starts from
        self.starts = torch.ones(self.num_envs, dtype=torch.bool)  # next obs opens an episode
        self._filling: RecurrentRolloutBuffer | None = None  # the buffer of this rollout

    def reset(self) -> np.ndarray:
        obs = super().reset()
        self.state = None
        self.starts = torch.ones(self.num_envs, dtype=torch.bool)
        return obs

    def recurrent_state_dict(self) -> dict[str, Any]:
        """The carried state and start flags (for checkpoints)."""
        return {"state": self.state, "starts": self.starts}

    def load_recurrent_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`recurrent_state_dict` returned."""
        self.state = state["state"]
        self.starts = state["starts"]

    def _start_rollout(
        self, policy: nn.Module, buffer: RolloutBuffer, device: torch.device
    ) -> None:
        if self.state is None:
            self.state = policy.initial_state(self.num_envs, device)
        self.state = tuple(s.to(device) for s in self.state)
        self.starts = self.starts.to(device)
        assert isinstance(buffer, RecurrentRolloutBuffer)
        buffer.initial_state = tuple(s.clone() for s in self.state)
        self._filling = buffer

    def _act(self, policy: nn.Module, obs: Observation, t: int) -> tuple[Tensor, Tensor]:
        self._filling.starts[t] = self.starts
        logits, value, self.state = policy(obs, self.state, self.starts)
        return logits, value

    def _final_value(self, policy: nn.Module, obs: Observation, rows: Tensor) -> Tensor:
        # V(final obs) from the state the finished episode reached (not a reset one).
        no_start = torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
        return policy(obs, select_state(self.state, rows), no_start)[1]

    def _end_step(self, done: np.ndarray, device: torch.device) -> None:
        self.starts = torch.as_tensor(done, device=device)  # the next obs opens an episode

    def _last_value(self, policy: nn.Module, obs: Observation) -> Tensor:
        return policy(obs, self.state, self.starts)[1]
