"""Recurrent PPO/A2C: states carried and reset in rollouts, BPTT replays them exactly."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from torch import nn

from graphrl.envs.vector import env_seeds, make_vector_env
from graphrl.models import MottAttentionAgent, RecurrentActorCritic
from graphrl.rl import A2C, PPO
from graphrl.rl.recurrent import RecurrentRolloutCollector

CORRIDOR = "toy_envs:Corridor-v0"
COUNTDOWN = "toy_envs:Countdown-v0"
CUE_RECALL = "toy_envs:CueRecall-v0"

_RMC = functools.partial(
    RecurrentActorCritic,
    channels=16,
    encoder="grid",
    core="rmc",
    core_kwargs={"mem_slots": 2, "head_size": 8, "heads": 2},
)
POLICIES = {
    "lstm": functools.partial(
        RecurrentActorCritic, channels=16, encoder="grid", core_kwargs={"hidden_size": 16}
    ),
    "rmc": functools.partial(_RMC, core_input="entities"),
    "rmc_pooled": functools.partial(_RMC, core_input="pooled"),
    "mott": functools.partial(MottAttentionAgent, channels=16, encoder="grid", hidden_size=16),
}


def _collect(env_id: str, policy: nn.Module, num_envs: int, num_steps: int, **env_kwargs):
    seeds = env_seeds(0, num_envs)
    collector = RecurrentRolloutCollector(
        make_vector_env(env_id, seeds, env_kwargs=env_kwargs), num_steps, seeds
    )
    return collector


def _space(env_id: str, **env_kwargs):
    from graphrl.envs.vector import env_spaces

    return env_spaces(env_id, env_kwargs)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_replay_of_a_rollout_reproduces_its_logprobs_and_resets_at_episode_starts(name) -> None:
    torch.manual_seed(0)
    space, actions = _space(COUNTDOWN, length=3)
    policy = POLICIES[name](space, actions)
    collector = _collect(COUNTDOWN, policy, num_envs=3, num_steps=7, length=3)
    collector.collect(policy)  # the second rollout starts mid-episode, from carried states
    buffer = collector.collect(policy)
    # Countdown episodes last 3 steps: starts at global steps 0, 3, 6, 9, 12 -> t = 2, 5 here.
    expected = torch.zeros(7, 3, dtype=torch.bool)
    expected[[2, 5]] = True
    assert torch.equal(buffer.starts.cpu(), expected)
    data = buffer.transitions(torch.zeros(7, 3), torch.zeros(7, 3))
    logprob, _, value = data.evaluate(policy, collector.action_spec)
    torch.testing.assert_close(logprob, buffer.logprobs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(value, buffer.values, rtol=1e-5, atol=1e-5)
    # each env alone replays to the same numbers: no state of env i reaches env j
    for env in range(3):
        alone, _, _ = data[torch.tensor([env])].evaluate(policy, collector.action_spec)
        torch.testing.assert_close(alone[:, 0], buffer.logprobs[:, env], rtol=1e-5, atol=1e-5)
    collector.close()


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_states_of_one_env_never_leak_into_another(name) -> None:
    torch.manual_seed(0)
    space, actions = _space(CORRIDOR, length=5)
    policy = POLICIES[name](space, actions)
    obs = torch.randint(0, 3, (6, 3, *space.shape), dtype=torch.uint8)
    starts = torch.zeros(6, 3, dtype=torch.bool)
    state = policy.initial_state(3)
    logits, _, _ = policy.unroll(obs, state, starts)
    changed_obs = obs.clone()
    changed_obs[:, 1] = (changed_obs[:, 1] + 1) % 3
    changed_state = tuple(s.clone() for s in state)
    for s in changed_state:
        s[1] += 1.0
    other, _, _ = policy.unroll(changed_obs, changed_state, starts)
    torch.testing.assert_close(other[:, [0, 2]], logits[:, [0, 2]])
    assert not torch.allclose(other[:, 1], logits[:, 1])


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_the_last_step_depends_on_the_first_unless_an_episode_starts_between(name) -> None:
    torch.manual_seed(0)
    space, actions = _space(CORRIDOR, length=5)
    policy = POLICIES[name](space, actions)
    obs = torch.randint(0, 3, (5, 2, *space.shape), dtype=torch.uint8)
    changed = obs.clone()
    changed[0] = (changed[0] + 1) % 3
    starts = torch.zeros(5, 2, dtype=torch.bool)
    starts[2, 1] = True  # env 1 starts an episode at t = 2
    state = policy.initial_state(2)
    _, value, _ = policy.unroll(obs, state, starts)
    _, value_changed, _ = policy.unroll(changed, state, starts)
    assert (value[-1, 0] - value_changed[-1, 0]).abs() > 1e-7  # BPTT path reaches step 0
    torch.testing.assert_close(value[2:, 1], value_changed[2:, 1])  # the reset cuts it
    # and BPTT's gradient of the last step's value reaches the state the first step takes, for
    # env 0; not for env 1, whose episode restarted at t = 2 (a module whose first step does
    # not matter fails the first check)
    state = tuple(s.detach().clone().requires_grad_(True) for s in policy.initial_state(2))
    _, value, _ = policy.unroll(obs, state, starts)
    grads = torch.autograd.grad(value[-1].sum(), state, allow_unused=True)  # envs: rows
    grads = [g for g in grads if g is not None]
    assert sum(float(g[0].abs().sum()) for g in grads) > 0
    assert all(float(g[1].abs().sum()) == 0 for g in grads)


class _FeedForwardView(nn.Module):
    """The recurrent policy run from its initial state every step: a feed-forward policy."""

    def __init__(self, observation_space, num_actions, name: str) -> None:
        super().__init__()
        self.inner = POLICIES[name](observation_space, num_actions)

    def forward(self, obs):
        state = self.inner.initial_state(obs.shape[0], obs.device)
        starts = torch.ones(obs.shape[0], dtype=torch.bool, device=obs.device)
        logits, value, _ = self.inner(obs, state, starts)
        return logits, value


@pytest.mark.parametrize("algo", [PPO, A2C])
@pytest.mark.parametrize("name", ["lstm", "rmc"])
def test_with_a_reset_every_step_the_update_equals_the_feed_forward_one(
    algo, name, make_trainer
) -> None:
    kwargs = {"num_minibatches": 1, "update_epochs": 2} if algo is PPO else {}
    params = []
    for recurrent in (True, False):
        L.seed_everything(0, verbose=False)
        factory = POLICIES[name] if recurrent else functools.partial(_FeedForwardView, name=name)
        model = algo(
            COUNTDOWN,
            policy=factory,
            env_kwargs={"length": 1},  # every episode is one step: a reset before every step
            num_envs=4,
            num_steps=1,
            total_timesteps=12,
            **kwargs,
        )
        make_trainer().fit(model)
        params.append([p.detach().clone() for p in model.policy.parameters()])
    for a, b in zip(*params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_recurrent_ppo_needs_whole_sequences_per_minibatch() -> None:
    with pytest.raises(ValueError, match="num_minibatches=4 > num_envs=2"):
        PPO(CORRIDOR, policy=POLICIES["lstm"], num_envs=2, num_minibatches=4)


def test_checkpoint_keeps_the_envs_states_and_resume_restores_them(make_trainer, tmp_path) -> None:
    L.seed_everything(0, verbose=False)
    model = PPO(
        CORRIDOR, policy=POLICIES["lstm"], num_envs=2, num_steps=4, total_timesteps=16,
        num_minibatches=2,
    )  # fmt: skip
    seen = {}

    class Record(L.Callback):
        def on_train_end(self, trainer, module) -> None:
            seen["state"] = tuple(s.clone() for s in module.collector.state)

    saver = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = make_trainer(enable_checkpointing=True, callbacks=[saver, Record()])
    trainer.fit(model)
    path = tmp_path / "last.ckpt"
    checkpoint = torch.load(path, weights_only=False)
    stored = checkpoint["recurrent_collector"]["state"]
    for a, b in zip(stored, seen["state"]):
        torch.testing.assert_close(a, b)
    assert stored[0].abs().sum() > 0  # a real carried state, not the initial zeros
    fresh = PPO(
        CORRIDOR, policy=POLICIES["lstm"], num_envs=2, num_steps=4, total_timesteps=32,
        num_minibatches=2,
    )  # fmt: skip
    fresh.on_load_checkpoint(checkpoint)
    fresh.setup("fit")
    for a, b in zip(fresh.collector.state, seen["state"]):
        torch.testing.assert_close(a, b)
    fresh.teardown("fit")


@pytest.mark.parametrize("name", ["lstm", "rmc_pooled", "mott"])
def test_recurrent_ppo_learns_to_recall_a_cue_a_feed_forward_policy_cannot(
    make_trainer, name
) -> None:
    """Memory is learned, not just carried: the cue is gone from the frame when it is asked for."""
    env = {"delay": 3}
    budget = {"num_envs": 8, "num_steps": 16, "total_timesteps": 8192, "learning_rate": 3e-3}
    L.seed_everything(0, verbose=False)
    recurrent = PPO(CUE_RECALL, env_kwargs=env, policy=POLICIES[name], num_minibatches=2, **budget)
    L.seed_everything(0, verbose=False)
    feed_forward = PPO(CUE_RECALL, env_kwargs=env, **budget)
    for model in (recurrent, feed_forward):
        make_trainer().fit(model)
    assert recurrent.evaluate(episodes=64, greedy=True)["solve_rate"] >= 0.95
    # at most 1/2 + noise
    assert feed_forward.evaluate(episodes=64, greedy=True)["solve_rate"] <= 0.75


def test_cue_recall_distractors_are_unchanging_walls_beside_the_cue() -> None:
    from toy_envs import CueRecall

    env = CueRecall(delay=2, distractors=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (1, 5, 1)
    frames = [obs]
    for _ in range(2):
        frames.append(env.step(0)[0])
    assert [int(f[0, 0, 0]) for f in frames] == [env.cue, 0, 0]  # the cue: first frame only
    assert [int(f[0, 1, 0]) for f in frames] == [0, 0, 3]  # the question: last frame only
    assert all((f[0, 2:, 0] == 4).all() for f in frames)
    assert CueRecall().observation_space.shape == (1, 2, 1)  # no distractors: as before


def test_cue_recall_sweep_prints_runs_then_solved_seeds_per_agent() -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "tests" / "rl"), "OMP_NUM_THREADS": "1"}
    args = ["--agents", "lstm_max", "mott_pooled", "--distractors", "2", "--seeds", "1"]
    result = subprocess.run(
        [sys.executable, "scripts/cue_recall_sweep.py", *args, "--steps", "256"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(r["agent"], r["distractors"], r["seed"]) for r in rows] == [
        ("lstm_max", 2, 0),
        ("mott_pooled", 2, 0),
    ]
    assert all(0.0 <= r["solve_rate"] <= 1.0 and r["env_steps"] == 256 for r in rows)
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| agent | 2 distractors |" and len(table) == 3
    assert table[1].startswith("| lstm_max | ") and table[1].endswith("/1 |")
    bad = subprocess.run(
        [sys.executable, "scripts/cue_recall_sweep.py", "--seeds", "0"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,  # a hang guard
    )  # fmt: skip
    assert bad.returncode == 2 and "--seeds" in bad.stderr.splitlines()[-1]
