"""Rollout collection: shapes, seeding, same-step autoreset, truncation bootstrap, episode stats."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from graphrl.envs.vector import env_seeds, env_spaces, make_vector_env
from graphrl.rl.functional import compute_gae
from graphrl.rl.policies import CNNPolicy, MLPPolicy
from graphrl.rl.rollout import (
    EpisodeTracker,
    RolloutCollector,
)

COUNTDOWN = "toy_envs:Countdown-v0"
CORRIDOR = "toy_envs:Corridor-v0"


class StepCountCritic(nn.Module):
    """Uniform logits over 3 actions; value = steps taken (obs[..., 0]); counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        self.calls.append(obs.shape[0])
        return torch.zeros(obs.shape[0], 3), obs[:, 0, 0, 0].float()


def collector_for(env_id: str, num_envs: int, num_steps: int, **env_kwargs) -> RolloutCollector:
    seeds = env_seeds(0, num_envs)
    return RolloutCollector(make_vector_env(env_id, seeds, env_kwargs=env_kwargs), num_steps, seeds)


def test_env_seeds_are_distinct_per_env_and_rank() -> None:
    assert env_seeds(10, 4, rank=0) == [10, 11, 12, 13]
    assert env_seeds(10, 4, rank=1) == [14, 15, 16, 17]
    all_seeds = [s for rank in range(4) for s in env_seeds(3, 8, rank)]
    assert len(set(all_seeds)) == len(all_seeds)


def test_collector_fills_padded_tensors_and_seeds_each_env() -> None:
    collector = collector_for(CORRIDOR, num_envs=3, num_steps=5)
    space, num_actions = env_spaces(CORRIDOR)
    buffer = collector.collect(MLPPolicy(space, num_actions))
    assert buffer.obs.shape == (5, 3, 1, 6, 1) and buffer.obs.dtype == torch.uint8
    assert buffer.actions.shape == (5, 3) and buffer.actions.dtype == torch.long
    for name in ("logprobs", "values", "rewards", "terminations", "truncations", "final_values"):
        assert getattr(buffer, name).shape == (5, 3), name
        assert getattr(buffer, name).dtype == torch.float32, name
    assert buffer.next_value.shape == (3,)
    assert (buffer.logprobs <= 0).all() and set(buffer.actions.unique().tolist()) <= {0, 1}
    assert list(collector.envs.get_attr("np_random_seed")) == [0, 1, 2]
    # Each row of obs is the observation the action was taken in: one agent cell per env.
    assert ((buffer.obs == 1).sum(dim=(2, 3, 4)) == 1).all()
    flat = buffer.transitions(buffer.rewards, buffer.values)
    assert len(flat) == 15
    torch.testing.assert_close(flat.obs[4], buffer.obs[1, 1])  # flat index = t * N + n
    assert len(flat[torch.tensor([0, 7])]) == 2
    collector.close()


def test_policy_runs_once_per_step_on_all_envs() -> None:
    collector = collector_for(COUNTDOWN, num_envs=4, num_steps=6)
    policy = StepCountCritic()
    collector.collect(policy)
    assert policy.calls == [4] * 7  # 6 steps + the bootstrap value of the last observation
    collector.close()


def test_same_step_autoreset_episode_boundaries() -> None:
    collector = collector_for(COUNTDOWN, num_envs=2, num_steps=7, length=3)
    buffer = collector.collect(StepCountCritic())
    expected_rewards = torch.tensor([1.0, 2, 3, 1, 2, 3, 1])
    torch.testing.assert_close(buffer.rewards, expected_rewards[:, None].expand(7, 2))
    torch.testing.assert_close(buffer.terminations[:, 0], torch.tensor([0.0, 0, 1, 0, 0, 1, 0]))
    assert buffer.truncations.sum() == 0 and buffer.final_values.sum() == 0
    # After the terminal step the next row already holds the next episode's first observation.
    assert buffer.obs[:, 0, 0, 0, 0].tolist() == [0, 1, 2, 0, 1, 2, 0]
    episodes = collector.episodes.pop()
    assert episodes.returns.tolist() == [6.0] * 4 and episodes.lengths.tolist() == [3] * 4
    assert episodes.solved.tolist() == [1.0] * 4
    assert len(collector.episodes.pop()) == 0

    # The next rollout continues the same episodes: steps 8..14 end episodes at steps 9 and 12.
    buffer = collector.collect(StepCountCritic())
    assert buffer.obs[:, 0, 0, 0, 0].tolist() == [1, 2, 0, 1, 2, 0, 1]
    assert collector.episodes.pop().returns.tolist() == [6.0] * 4
    collector.close()


def test_truncation_stores_the_value_of_the_final_observation() -> None:
    collector = collector_for(COUNTDOWN, num_envs=2, num_steps=6, length=3, truncate=True)
    policy = StepCountCritic()
    buffer = collector.collect(policy)
    assert buffer.terminations.sum() == 0
    torch.testing.assert_close(buffer.truncations[:, 1], torch.tensor([0.0, 0, 1, 0, 0, 1]))
    # V(final obs) = 3 steps taken; V(reset obs) in the next row = 0.
    torch.testing.assert_close(buffer.final_values[:, 0], torch.tensor([0.0, 0, 3, 0, 0, 3]))
    assert buffer.values[3].tolist() == [0.0, 0.0]
    # 6 steps, one final-observation call per truncating step (both envs at once), next value.
    assert policy.calls == [2] * (6 + 2 + 1)
    _, returns = compute_gae(
        buffer.rewards,
        buffer.values,
        buffer.terminations,
        buffer.truncations,
        buffer.final_values,
        buffer.next_value,
        gamma=1.0,
        gae_lambda=1.0,
    )
    # Monte-Carlo return from the first step: 1 + 2 + 3 + V(final obs) = 9.
    assert returns[0].tolist() == [9.0, 9.0]
    episodes = collector.episodes.pop()
    assert np.isnan(episodes.solved).all() and episodes.sums()[4] == 0  # no solved reported
    collector.close()


def test_episode_tracker_records_solved_and_failed_episodes() -> None:
    # A corridor too long for its time limit: every episode is truncated and unsolved.
    collector = collector_for(CORRIDOR, num_envs=2, num_steps=4, length=30, max_steps=2)
    collector.collect(MLPPolicy(*env_spaces(CORRIDOR, {"length": 30, "max_steps": 2})))
    episodes = collector.episodes.pop()
    assert episodes.lengths.tolist() == [2, 2, 2, 2]
    assert episodes.solved.tolist() == [0.0] * 4
    assert episodes.sums() == [4.0, 0.0, 8.0, 0.0, 4.0]
    collector.close()

    tracker = EpisodeTracker(3)
    tracker.update(np.array([1.0, 2.0, 3.0]), np.array([False, True, False]))
    tracker.update(np.array([1.0, 2.0, 3.0]), np.array([True, False, False]), np.ones(3))
    episodes = tracker.pop()
    assert episodes.returns.tolist() == [2.0, 2.0]
    assert episodes.lengths.tolist() == [1, 2]
    assert np.isnan(episodes.solved[0]) and episodes.solved[1] == 1.0


def test_async_vector_env_matches_sync() -> None:
    seeds = env_seeds(5, 2)
    results = []
    for mode in ("sync", "async"):
        envs = make_vector_env(CORRIDOR, seeds, vector_mode=mode)
        collector = RolloutCollector(envs, 3, seeds)
        space, num_actions = env_spaces(CORRIDOR)
        torch.manual_seed(0)
        buffer = collector.collect(MLPPolicy(space, num_actions))
        results.append((buffer.obs.clone(), buffer.rewards.clone(), buffer.actions.clone()))
        collector.close()
    for sync, async_ in zip(*results):
        torch.testing.assert_close(sync, async_)


def test_collector_checks_the_policy_output_shapes() -> None:
    class ColumnValue(nn.Module):
        def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
            return torch.zeros(obs.shape[0], 3), torch.zeros(obs.shape[0], 1)

    class TwoLogits(nn.Module):
        def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
            return torch.zeros(obs.shape[0], 2), torch.zeros(obs.shape[0])

    collector = collector_for(COUNTDOWN, num_envs=2, num_steps=2)
    with pytest.raises(ValueError, match=r"value \[2\], got \[2, 1\] \(squeeze"):
        collector.collect(ColumnValue())
    with pytest.raises(ValueError, match=r"parameters \[2, 3\] for Discrete\(3\), got \[2, 2\]"):
        collector.collect(TwoLogits())
    collector.close()


def test_collector_refuses_next_step_autoreset() -> None:
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(COUNTDOWN)])
    with pytest.raises(ValueError, match="autoreset_mode=SAME_STEP"):
        RolloutCollector(envs, 4, [0])
    envs.close()


def test_env_checks_name_the_problem() -> None:
    with pytest.raises(TypeError, match=r"cannot take observation space Tuple.*accepted: Box"):
        env_spaces("Blackjack-v1")
    with pytest.raises(ValueError, match="vector_mode must be"):
        make_vector_env(CORRIDOR, [0], vector_mode="threads")  # type: ignore[arg-type]


@pytest.mark.parametrize("env_id", ["graphrl/BoxWorld-Small-v0", "MiniGrid-Empty-5x5-v0"])
def test_collector_on_project_envs(env_id: str) -> None:
    space, num_actions = env_spaces(env_id)
    counts = space.high.reshape(-1, space.shape[-1]).max(axis=0) + 1
    collector = collector_for(env_id, num_envs=2, num_steps=4)
    buffer = collector.collect(CNNPolicy(space, num_actions))
    assert buffer.obs.shape == (4, 2, *space.shape) and buffer.obs.dtype == torch.uint8
    # Observations stay within the symbol counts the policy sized its embeddings with.
    assert (buffer.obs.flatten(0, -2).max(dim=0).values < torch.as_tensor(counts)).all()
    collector.close()
