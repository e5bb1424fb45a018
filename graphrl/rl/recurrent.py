"""Recurrent policies in on-policy training: rollouts that carry a state, BPTT minibatches.

A recurrent policy declares ``is_recurrent = True`` and gives

* ``initial_state(batch_size, device) -> State`` (a tuple of ``[B, ...]`` tensors);
* ``forward(obs [B, ...], state, starts [B]) -> (logits [B, A], value [B], state)``: one step,
  the state of rows where ``starts`` is set is reset first (``obs`` opens an episode);
* ``unroll(obs [T, B, ...], state, starts [T, B]) -> (logits [T, B, A], values [T, B], state)``.

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
from torch.distributions import Categorical

from graphrl.nn.recurrent import State, select_state
from graphrl.rl.rollout import RolloutBuffer, RolloutCollector, solved_flags

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
    actions: Tensor  # [T, n]
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

    def evaluate(self, policy: nn.Module) -> tuple[Tensor, Tensor, Tensor]:
        """Re-run ``policy`` over the sequences: ``(logprob, entropy, value)``, each ``[T, n]``."""
        logits, value, _ = policy.unroll(self.obs, self.initial_state, self.starts)
        dist = Categorical(logits=logits, validate_args=False)
        return dist.log_prob(self.actions), dist.entropy(), value


@dataclass
class RecurrentRolloutBuffer(RolloutBuffer):
    """A rollout plus what re-running it needs: per-step ``starts`` and the initial state."""

    starts: Tensor | None = None  # [T, N] bool
    initial_state: State = ()

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

    def __init__(self, envs: gym.vector.VectorEnv, num_steps: int, seeds: list[int]) -> None:
        super().__init__(envs, num_steps, seeds)
        self.state: State | None = None  # [N, ...] the state the next step starts from
        self.starts = torch.ones(self.num_envs, dtype=torch.bool)  # next obs opens an episode

    def reset(self) -> np.ndarray:
        obs = super().reset()
        self.state = None
        self.starts = torch.ones(self.num_envs, dtype=torch.bool)
        return obs

    def _buffer_on(self, device: torch.device) -> RecurrentRolloutBuffer:
        buffer = self.buffer
        if not isinstance(buffer, RecurrentRolloutBuffer) or buffer.device != device:
            plain = RolloutBuffer.allocate(
                self.num_steps, self.num_envs, self.obs_shape, self.obs_dtype, device
            )
            values = {f.name: getattr(plain, f.name) for f in fields(RolloutBuffer)}
            starts = torch.zeros(self.num_steps, self.num_envs, dtype=torch.bool, device=device)
            buffer = RecurrentRolloutBuffer(**values, starts=starts)
            self.buffer = buffer
        return buffer

    def recurrent_state_dict(self) -> dict[str, Any]:
        """The carried state and start flags (for checkpoints)."""
        return {"state": self.state, "starts": self.starts}

    def load_recurrent_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`recurrent_state_dict` returned."""
        self.state = state["state"]
        self.starts = state["starts"]

    @torch.no_grad()
    def collect(
        self, policy: nn.Module, device: torch.device | str = "cpu"
    ) -> RecurrentRolloutBuffer:
        """Run ``num_steps`` vector steps of a recurrent ``policy`` (see module docstring)."""
        device = torch.device(device)
        if self._next_obs is None:
            self.reset()
        buffer = self._buffer_on(device)
        if self.state is None:
            self.state = policy.initial_state(self.num_envs, device)
        state = tuple(s.to(device) for s in self.state)
        starts = self.starts.to(device)
        buffer.initial_state = tuple(s.clone() for s in state)
        obs = torch.as_tensor(self._next_obs).to(device)
        for t in range(self.num_steps):
            buffer.obs[t] = obs
            buffer.starts[t] = starts
            logits, value, state = policy(obs, state, starts)
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
            bootstrap = np.flatnonzero(truncated & ~terminated)
            if bootstrap.size:
                # V(final obs) from the state the finished episode reached (not a reset one).
                rows = torch.as_tensor(bootstrap, device=device)
                final_obs = torch.as_tensor(np.stack(info["final_obs"][bootstrap])).to(device)
                no_start = torch.zeros(len(bootstrap), dtype=torch.bool, device=device)
                _, final_value, _ = policy(final_obs, select_state(state, rows), no_start)
                buffer.final_values[t, rows] = final_value

            done = terminated | truncated
            self.episodes.update(reward, done, solved_flags(info, self.num_envs))
            self._next_obs = next_obs
            obs = torch.as_tensor(next_obs).to(device)
            starts = torch.as_tensor(done, device=device)
        buffer.next_value.copy_(policy(obs, state, starts)[1])
        self.state, self.starts = state, starts
        return buffer
